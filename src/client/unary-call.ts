import { admitCall } from '../call/admission.js';
import type { BoundMethod } from '../call/bound-method.js';
import { Call } from '../call/call.js';
import type { CallOptions } from '../config/call-options.js';

/**
 * `client.Method(request, options?)` of a unary method. Never throws: every outcome is a settled
 * promise, with a response or an error carrying a gRPC code (a caller's abort rejects with
 * `signal.reason`).
 */
export function callUnary(bound: BoundMethod, request: unknown, options: CallOptions | undefined): Promise<unknown> {
  const call = admitCall(bound, 'message', request, options);
  return call instanceof Call ? call.response() : Promise.reject(call.error);
}

/**
 * `client.Method(requests, options?)` of a client-streaming method: sends `requests` (an
 * iterable or async iterable), pulling the next one only when the HTTP/2 stream accepts more;
 * resolves with the response. An error thrown by the source cancels the call and rejects with it.
 */
export function clientStream(bound: BoundMethod, requests: unknown, options: CallOptions | undefined): Promise<unknown> {
  const call = admitCall(bound, 'requests', requests, options);
  return call instanceof Call ? call.response() : Promise.reject(call.error);
}
