import { status, type ClientDuplexStream, type ClientReadableStream, type ClientWritableStream, type ServiceError, type StatusObject } from '@grpc/grpc-js';
import type { BoundMethod } from '../call/bound-method.js';
import { admitCall } from '../call/admission.js';
import { watchMetadata } from './call-hooks.js';
import { CallRun, type Outcome, type Sender } from '../call/call-run.js';
import { MessageQueue } from './message-queue.js';
import type { CallOptions } from '../config/options.js';
import { RequestPump, type Requests } from './request-pump.js';
import { watchStream } from '../channel/stall-detector.js';

// The three streaming shapes. Each gets what a unary call gets: admission, a finite deadline
// on the wire, signal and parent, breaker admission before the stream starts and one outcome
// when it ends, in-flight tracking (so close() drains and then cancels streams), StatusError on
// failure. Retries: a server stream is retried under the method's policy only while no message
// has arrived (after that a retry would replay messages the caller has seen); client and bidi
// streams are never retried (their requests are consumed as they are sent).

/**
 * `client.Method(request, options?)` of a server-streaming method: its responses, read with for
 * await. As with every call shape, the call is validated, admitted and started when the method
 * is called, and its deadline runs from then; an admission error is thrown by the first `next()`.
 */
export function serverStream(bound: BoundMethod, request: unknown, options: CallOptions | undefined): AsyncIterable<unknown> {
  const run = admitCall(bound, 'message', request, options);
  if (!(run instanceof CallRun)) return failedStream(run.error);
  run.begin();
  return readStream(run, settleOnStatus(run, run.attempts(sendServerStream(run, request, options))));
}

function sendServerStream(run: CallRun, request: unknown, options: CallOptions | undefined): Sender<MessageQueue> {
  const { channel, method } = run.bound;
  return (callOptions, metadata, done, outcome) => {
    const call: ClientReadableStream<unknown> = channel.client.makeServerStreamRequest(method.path, method.serialize, method.deserialize, request, metadata, callOptions);
    watchStream(channel.liveness, call);
    const queue = startedStream(call, options, outcome);
    // Ready at the first message: until then a failure may still be retried.
    queue.first().then((q) => done(null, q), done);
    return call;
  };
}

/**
 * `client.Method(requests, options?)` of a client-streaming method: sends `requests` (an
 * iterable or async iterable), pulling the next one only when the HTTP/2 stream accepts more;
 * resolves with the response. An error thrown by the source cancels the call and rejects with it.
 */
export function clientStream(bound: BoundMethod, requests: unknown, options: CallOptions | undefined): Promise<unknown> {
  const run = admitCall(bound, 'requests', requests, options);
  if (!(run instanceof CallRun)) return Promise.reject(run.error);
  run.begin();
  return run.attempts(sendClientStream(run, requests as Requests, options)).then(
    (response) => {
      run.finish(true);
      return response;
    },
    (error: unknown) => {
      run.finish(false, error);
      throw error;
    },
  );
}

function sendClientStream(run: CallRun, requests: Requests, options: CallOptions | undefined): Sender<unknown> {
  const { channel, method } = run.bound;
  return (callOptions, metadata, done, outcome) => {
    const call: ClientWritableStream<unknown> = channel.client.makeClientStreamRequest(
      method.path,
      method.serialize,
      method.deserialize,
      metadata,
      callOptions,
      (error: ServiceError | null, response?: unknown) => {
        pump.stop();
        // The caller's own source failed: its error is what the caller sees.
        const failure = pump.sourceError !== undefined ? pump.sourceError.error : error;
        outcome(failure);
        done(failure, response);
      },
    );
    watchStream(channel.liveness, call);
    watchMetadata(call, options);
    const pump = new RequestPump(requests, call, run);
    return call;
  };
}

/**
 * `client.Method(requests, options?)` of a bidi method: sends `requests` while its responses
 * are read with for await; both directions run at once, each with backpressure.
 */
export function bidiStream(bound: BoundMethod, requests: unknown, options: CallOptions | undefined): AsyncIterable<unknown> {
  const run = admitCall(bound, 'requests', requests, options);
  if (!(run instanceof CallRun)) return failedStream(run.error);
  run.begin();
  let pump: RequestPump | undefined;
  const queue = run.attempts<MessageQueue>((callOptions, metadata, done, outcome) => {
    const { channel, method } = run.bound;
    const call: ClientDuplexStream<unknown, unknown> = channel.client.makeBidiStreamRequest(method.path, method.serialize, method.deserialize, metadata, callOptions);
    watchStream(channel.liveness, call);
    pump = new RequestPump(requests as Requests, call, run);
    // The server may wait for requests before it answers: the stream is ready at once.
    done(null, startedStream(call, options, outcome));
    return call;
  });
  void queue.then((q) => q.onStatus(() => pump?.stop()), () => {});
  // The caller's own source failed: its error is what the caller sees.
  return readStream(run, settleOnStatus(run, queue), () => pump?.sourceError);
}

/**
 * Settles the run when its stream's status arrives (or its attempts fail), whether or not
 * anybody reads the stream: an abandoned stream is ended by its deadline and holds nothing.
 */
function settleOnStatus(run: CallRun, queue: Promise<MessageQueue>): Promise<MessageQueue> {
  queue.then(
    (q) =>
      q.onStatus((final) => {
        run.messagesReceived(q.received);
        run.finish(final.code === status.OK, final);
      }),
    (error: unknown) => run.finish(false, error),
  );
  return queue;
}

/** A stream that was never started: its first `next()` throws why. */
async function* failedStream(error: unknown): AsyncGenerator<unknown, void, undefined> {
  throw error;
}

/**
 * The caller's view of a started stream: waits for it to be ready (a server stream: its first
 * message, or its last failure), then reads it. `sourceError` gives a bidi stream's request
 * source failure, which wins over the call's own error.
 */
async function* readStream(
  run: CallRun,
  queue: Promise<MessageQueue>,
  sourceError: () => { error: unknown } | undefined = () => undefined,
): AsyncGenerator<unknown, void, undefined> {
  try {
    yield* readAll(run, await queue);
  } catch (error) {
    const source = sourceError();
    throw source !== undefined ? source.error : error;
  }
}

/**
 * Wires a started grpc-js stream to its queue, its outcome (judged healthy at its first
 * message, else by its status) and the caller's hooks.
 */
function startedStream(
  call: ClientReadableStream<unknown> | ClientDuplexStream<unknown, unknown>,
  options: CallOptions | undefined,
  outcome: Outcome,
): MessageQueue {
  const queue = new MessageQueue(call);
  watchMetadata(call, options);
  queue.first().then(
    () => outcome(null, false),
    () => {},
  );
  queue.onStatus((final) => outcome(final.code === status.OK ? null : { code: final.code, details: final.details, metadata: final.metadata }));
  return queue;
}

/**
 * Yields a stream's messages, then ends or throws its failure. The call settles (stats, in-flight
 * slot, listeners) when its status arrives, whether or not anybody is still reading. Leaving the
 * loop early cancels the call on the wire.
 */
async function* readAll(run: CallRun, queue: MessageQueue): AsyncGenerator<unknown, void, undefined> {
  let complete = false;
  try {
    for (;;) {
      const next = await queue.next();
      if (next.done) break;
      // Once the caller aborted (or the parent or close() ended the call), buffered messages
      // are not delivered: the loop throws at once.
      const stopped = run.stoppedError();
      if (stopped !== undefined) throw stopped;
      yield next.value;
    }
    complete = true;
  } finally {
    if (!complete && queue.status === undefined) run.leave();
  }
  const final = queue.status as StatusObject;
  if (final.code !== status.OK) throw run.finalError(run.failureOf(final, final));
}
