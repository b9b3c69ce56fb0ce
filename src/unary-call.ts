import type { ClientUnaryCall, Metadata, ServiceError, StatusObject } from '@grpc/grpc-js';
import { admitCall, CallRun, type Attempt, type AttemptContext, type BoundMethod } from './call-run.js';
import { markInconclusive } from './circuit-breaker.js';
import { optionError } from './errors.js';
import type { CallOptions } from './options.js';

/**
 * Runs one unary call. Never throws: every outcome is a settled promise, with a response or an
 * error carrying a gRPC code (a caller's abort rejects with `signal.reason`).
 */
export function callUnary(bound: BoundMethod, request: unknown, options: CallOptions | undefined): Promise<unknown> {
  if (typeof request !== 'object' || request === null) {
    return Promise.reject(optionError('type', 'request', 'a request message object', request));
  }
  const run = admitCall(bound, options, true);
  if (!(run instanceof CallRun)) return Promise.reject(run.error);
  return runUnary(run, request, options);
}

async function runUnary(run: CallRun, request: unknown, options: CallOptions | undefined): Promise<unknown> {
  run.begin();
  try {
    const response = await run.attempts((context) => sendUnary(run, request, context, options));
    run.finish(true);
    return response;
  } catch (error) {
    run.finish(false);
    throw error;
  }
}

function sendUnary(run: CallRun, request: unknown, context: AttemptContext, options: CallOptions | undefined): Attempt<unknown> {
  const { channel, method } = run.bound;
  let call: ClientUnaryCall | undefined;
  const result = new Promise<unknown>((resolve, reject) => {
    call = channel.client.makeUnaryRequest(
      method.path,
      method.serialize,
      method.deserialize,
      request,
      context.metadata,
      { deadline: context.deadline },
      (error: ServiceError | null, response?: unknown) => {
        if (error === null) return resolve(response);
        // Ended from our side (abort, parent, close): says nothing about the backend's health.
        if (run.isEnded) markInconclusive(error);
        reject(error);
      },
    );
  });
  if (options?.onHeader !== undefined || options?.onTrailer !== undefined) watchMetadata(call!, options);
  return { result, outcome: result, cancel: () => call!.cancel() };
}

/** Hands the call's headers and trailers to the caller's hooks. */
export function watchMetadata(
  call: { on(event: 'metadata', listener: (metadata: Metadata) => void): unknown; on(event: 'status', listener: (status: StatusObject) => void): unknown },
  options: CallOptions,
): void {
  const { onHeader, onTrailer } = options;
  if (onHeader !== undefined) call.on('metadata', (metadata: Metadata) => safely('onHeader', onHeader, metadata));
  if (onTrailer !== undefined) call.on('status', (status: StatusObject) => safely('onTrailer', onTrailer, status.metadata));
}

/** Runs a caller's hook; one that throws must not break grpc-js's event dispatch or the call. */
function safely(name: string, hook: (metadata: Metadata) => void, metadata: Metadata): void {
  try {
    hook(metadata);
  } catch (error) {
    process.emitWarning(`a ${name} hook threw: ${String(error)}`, { code: 'RESILIENT_GRPC_HOOK_ERROR', type: 'ResilientGrpcWarning' });
  }
}
