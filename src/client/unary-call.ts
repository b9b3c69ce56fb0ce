import type { ClientUnaryCall, ServiceError } from '@grpc/grpc-js';
import { admitCall } from '../call/admission.js';
import { watchMetadata } from './call-hooks.js';
import type { BoundMethod } from '../call/bound-method.js';
import { CallRun } from '../call/call-run.js';
import type { CallOptions } from '../config/options.js';
import { watchUnary } from '../channel/stall-detector.js';

/**
 * Runs one unary call. Never throws: every outcome is a settled promise, with a response or an
 * error carrying a gRPC code (a caller's abort rejects with `signal.reason`).
 */
export function callUnary(bound: BoundMethod, request: unknown, options: CallOptions | undefined): Promise<unknown> {
  const run = admitCall(bound, 'message', request, options);
  if (!(run instanceof CallRun)) return Promise.reject(run.error);
  const { channel, method } = bound;
  run.begin();
  return run.unary<unknown>((callOptions, metadata, done, outcome) => {
    // The stall detector (when on) follows what each attempt hears from the server.
    const watch = watchUnary(channel.liveness);
    const call: ClientUnaryCall = channel.client.makeUnaryRequest(
      method.path,
      method.serialize,
      method.deserialize,
      request,
      metadata,
      callOptions,
      (error: ServiceError | null, response?: unknown) => {
        watch?.ended(error);
        outcome(error);
        done(error, response);
      },
    );
    if (watch !== undefined) call.on('metadata', watch.heard);
    watchMetadata(call, options);
    return call;
  });
}
