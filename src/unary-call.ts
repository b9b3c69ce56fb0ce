import type { ClientUnaryCall, Metadata, ServiceError, StatusObject } from '@grpc/grpc-js';
import { admitCall, type BoundMethod } from './bound-method.js';
import { CallRun } from './call-run.js';
import { requestError } from './call-options.js';
import type { CallOptions } from './options.js';

/**
 * Runs one unary call. Never throws: every outcome is a settled promise, with a response or an
 * error carrying a gRPC code (a caller's abort rejects with `signal.reason`).
 */
export function callUnary(bound: BoundMethod, request: unknown, options: CallOptions | undefined): Promise<unknown> {
  const invalid = requestError(request);
  if (invalid !== undefined) return Promise.reject(invalid);
  const run = admitCall(bound, options, true);
  if (!(run instanceof CallRun)) return Promise.reject(run.error);
  return runUnary(run, request, options);
}

function runUnary(run: CallRun, request: unknown, options: CallOptions | undefined): Promise<unknown> {
  const { channel, method } = run.bound;
  return run.unary<unknown>((callOptions, metadata, done, outcome) => {
    const call: ClientUnaryCall = channel.client.makeUnaryRequest(
      method.path,
      method.serialize,
      method.deserialize,
      request,
      metadata,
      callOptions,
      (error: ServiceError | null, response?: unknown) => {
        outcome(error, response);
        done(error, response);
      },
    );
    watchMetadata(call, options);
    return call;
  });
}

/** Hands the call's headers and trailers to the caller's hooks. */
export function watchMetadata(
  call: { on(event: 'metadata', listener: (metadata: Metadata) => void): unknown; on(event: 'status', listener: (status: StatusObject) => void): unknown },
  options: CallOptions | undefined,
): void {
  if (options === undefined) return;
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
