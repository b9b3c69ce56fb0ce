import { status } from '@grpc/grpc-js';
import type { BoundMethod } from './bound-method.js';
import type { CallRefusal } from '../events/call-events.js';
import { Call } from './call.js';
import { PoolClosedError, StatusError } from '../core/errors.js';
import type { CallOptions } from '../config/call-options.js';
import { prepareCall } from './call-options.js';
import { NO_RETRY } from './retry-decision.js';
import { optionError } from '../core/option-error.js';

/** A call's first argument: one request message, or a source of them (client and bidi streams). */
export type CallInput = 'message' | 'requests';

/**
 * Admission, common to every call shape: checks the request (or request source), refuses calls
 * on a closing pool, validates the options, resolves the deadline, checks the signal and the
 * parent, and resolves the retry policy. Returns the call, not yet begun, or the error to
 * reject with; nothing has touched the network yet. Client and bidi streams are never retried
 * (their requests are consumed as they are sent).
 */
export function admitCall(
  bound: BoundMethod,
  input: CallInput,
  request: unknown,
  options: CallOptions | undefined,
): Call | { error: unknown } {
  const invalid = input === 'message' ? requestError(request) : requestsError(request);
  if (invalid !== undefined) return { error: invalid };
  if (!bound.pool.isOpen) return notStarted(bound, new PoolClosedError(bound.method.path), 'pool');
  let prepared;
  try {
    prepared = prepareCall(bound.policy, options, Date.now(), bound.method);
  } catch (error) {
    return { error };
  }
  if (prepared.signal?.aborted) {
    if (bound.pool.callEvents.watchingCalls)
      notStarted(bound, { code: status.CANCELLED, message: 'not started: its signal was already aborted' }, undefined);
    return { error: prepared.signal.reason };
  }
  if (prepared.parent?.cancelled) {
    return notStarted(
      bound,
      new StatusError({
        code: status.CANCELLED,
        details: 'not started: its parent call was already cancelled',
        method: bound.method.path,
        target: bound.channel.target,
      }),
      undefined,
    );
  }
  const retry = input === 'requests' ? NO_RETRY : prepared.policy === bound.policy ? bound.retry : bound.retryFor(prepared.policy);
  return new Call(bound, prepared, retry, request);
}

/** A call that ends before it starts: reported to the call events (call-events.ts), then refused. */
function notStarted<E extends { code: number; message: string }>(
  bound: BoundMethod,
  error: E,
  refused: CallRefusal | undefined,
): { error: E } {
  bound.pool.callEvents.notStarted(bound.channel.target, bound.method, error, refused);
  return { error };
}

/** The error for a request that is not a message object (null, a string ...), else undefined. */
function requestError(request: unknown): Error | undefined {
  return typeof request === 'object' && request !== null ? undefined : optionError('type', 'request', 'a request message object', request);
}

/** The error for a request source that is not an iterable or async iterable, else undefined. */
function requestsError(requests: unknown): Error | undefined {
  if (typeof requests === 'object' && requests !== null && (Symbol.asyncIterator in requests || Symbol.iterator in requests))
    return undefined;
  return optionError('type', 'requests', 'an iterable or async iterable of request messages (an array, a generator, a stream)', requests);
}
