import { status, type StatusObject } from '@grpc/grpc-js';
import { admitCall } from '../call/admission.js';
import type { BoundMethod } from '../call/bound-method.js';
import { Call } from '../call/call.js';
import type { MessageQueue } from '../call/message-queue.js';
import type { CallOptions } from '../config/call-options.js';

// The two shapes whose responses are a stream, read with for await. Each gets what a unary call
// gets: admission, a finite deadline on the wire, signal and parent, the circuits, in-flight
// tracking (so close() drains and then cancels streams), StatusError on failure. A server stream
// is retried under the method's policy only while no message has arrived (after that a retry
// would replay messages the caller has seen); a bidi stream is never retried (its requests are
// consumed as they are sent). The call is validated, admitted and started when the method is
// called, and its deadline runs from then; an admission error is thrown by the first `next()`.

/** `client.Method(request, options?)` of a server-streaming method: its responses. */
export function serverStream(bound: BoundMethod, request: unknown, options: CallOptions | undefined): AsyncIterable<unknown> {
  const call = admitCall(bound, 'message', request, options);
  return call instanceof Call ? readStream(call) : failedStream(call.error);
}

/**
 * `client.Method(requests, options?)` of a bidi method: sends `requests` while its responses
 * are read with for await; both directions run at once, each with backpressure.
 */
export function bidiStream(bound: BoundMethod, requests: unknown, options: CallOptions | undefined): AsyncIterable<unknown> {
  const call = admitCall(bound, 'requests', requests, options);
  return call instanceof Call ? readStream(call) : failedStream(call.error);
}

/** A stream that was never started: its first `next()` throws why. */
async function* failedStream(error: unknown): AsyncGenerator<unknown, void, undefined> {
  throw error;
}

/**
 * The caller's view of a started stream: waits for it to be ready (a server stream: its first
 * message, or its last failure), then reads it. A bidi stream's request source failure wins over
 * the call's own error.
 */
function readStream(call: Call): AsyncGenerator<unknown, void, undefined> {
  // Started now, whether or not anybody reads: an abandoned stream is ended by its deadline.
  const ready = call.stream();
  ready.catch(() => {});
  return read(call, ready);
}

/**
 * Yields a stream's messages once it is ready, then ends or throws its failure (a bidi stream's
 * request source failure wins over the call's own error). The call settles (stats, in-flight
 * slot, listeners) when its status arrives, whether or not anybody is still reading. Leaving the
 * loop early cancels the call on the wire. One generator, not two: every level of generators
 * costs each message its own promises.
 */
async function* read(call: Call, ready: Promise<MessageQueue>): AsyncGenerator<unknown, void, undefined> {
  let queue: MessageQueue;
  try {
    queue = await ready;
  } catch (error) {
    throw sourceOr(call, error);
  }
  let complete = false;
  try {
    for (;;) {
      const next = await queue.next();
      if (next.done) break;
      // Once the caller aborted (or the parent or close() ended the call), buffered messages
      // are not delivered: the loop throws at once.
      const stopped = call.stoppedError();
      if (stopped !== undefined) throw stopped;
      yield next.value;
    }
    complete = true;
  } catch (error) {
    throw sourceOr(call, error);
  } finally {
    if (!complete && queue.status === undefined) call.leave();
  }
  const final = queue.status as StatusObject;
  if (final.code !== status.OK) throw sourceOr(call, call.finalError(call.failureOf(final, final)));
}

/** What the caller sees for `error`: what a bidi stream's request source threw, if it did. */
function sourceOr(call: Call, error: unknown): unknown {
  const source = call.sourceError;
  return source !== undefined ? source.error : error;
}
