import { status, type ClientDuplexStream, type ClientReadableStream, type ClientWritableStream, type ServiceError, type StatusObject } from '@grpc/grpc-js';
import { admitCall, type BoundMethod } from './bound-method.js';
import { CallRun, type Done, type Sender } from './call-run.js';
import { requestError } from './call-options.js';
import { optionError } from './errors.js';
import { MessageQueue } from './message-queue.js';
import type { CallOptions } from './options.js';
import { watchMetadata } from './unary-call.js';

// The three streaming shapes. Each gets what a unary call gets: admission, a finite deadline
// on the wire, signal and parent, breaker admission before the stream starts and one outcome
// when it ends, in-flight tracking (so close() drains and then cancels streams), StatusError on
// failure. Retries: a server stream is retried under the method's policy only while no message
// has arrived (after that a retry would replay messages the caller has seen); client and bidi
// streams are never retried (their requests are consumed as they are sent).

type Requests = AsyncIterable<unknown> | Iterable<unknown>;

/** `client.Method(request, options?)` of a server-streaming method: its responses, read with for await. */
export async function* serverStream(bound: BoundMethod, request: unknown, options: CallOptions | undefined): AsyncGenerator<unknown, void, undefined> {
  const invalid = requestError(request);
  if (invalid !== undefined) throw invalid;
  const run = admitCall(bound, options, true);
  if (!(run instanceof CallRun)) throw run.error;
  run.begin();
  let queue: MessageQueue;
  try {
    queue = await run.attempts(sendServerStream(run, request, options));
  } catch (error) {
    run.finish(false);
    throw error;
  }
  yield* readAll(run, queue);
}

function sendServerStream(run: CallRun, request: unknown, options: CallOptions | undefined): Sender<MessageQueue> {
  const { channel, method } = run.bound;
  return (callOptions, metadata, done, outcome) => {
    const call: ClientReadableStream<unknown> = channel.client.makeServerStreamRequest(method.path, method.serialize, method.deserialize, request, metadata, callOptions);
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
  if (!isRequests(requests)) return Promise.reject(requestsError(requests));
  const run = admitCall(bound, options, false);
  if (!(run instanceof CallRun)) return Promise.reject(run.error);
  return runClientStream(run, requests, options);
}

async function runClientStream(run: CallRun, requests: Requests, options: CallOptions | undefined): Promise<unknown> {
  run.begin();
  try {
    const response = await run.attempts(sendClientStream(run, requests, options));
    run.finish(true);
    return response;
  } catch (error) {
    run.finish(false);
    throw error;
  }
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
        outcome(failure, response);
        done(failure, response);
      },
    );
    watchMetadata(call, options);
    const pump = new RequestPump(requests, call, run);
    return call;
  };
}

/**
 * `client.Method(requests, options?)` of a bidi method: sends `requests` while its responses
 * are read with for await; both directions run at once, each with backpressure.
 */
export async function* bidiStream(bound: BoundMethod, requests: unknown, options: CallOptions | undefined): AsyncGenerator<unknown, void, undefined> {
  if (!isRequests(requests)) throw requestsError(requests);
  const run = admitCall(bound, options, false);
  if (!(run instanceof CallRun)) throw run.error;
  run.begin();
  let queue: MessageQueue;
  let pump: RequestPump | undefined;
  try {
    queue = await run.attempts<MessageQueue>((callOptions, metadata, done, outcome) => {
      const { channel, method } = run.bound;
      const call: ClientDuplexStream<unknown, unknown> = channel.client.makeBidiStreamRequest(method.path, method.serialize, method.deserialize, metadata, callOptions);
      pump = new RequestPump(requests, call, run);
      // The server may wait for requests before it answers: the stream is ready at once.
      done(null, startedStream(call, options, outcome));
      return call;
    });
  } catch (error) {
    run.finish(false);
    throw error;
  }
  queue.onStatus(() => pump?.stop());
  try {
    yield* readAll(run, queue);
  } catch (error) {
    throw pump?.sourceError !== undefined ? pump.sourceError.error : error;
  }
}

/** Wires a started grpc-js stream to its queue, its breaker outcome and the caller's hooks. */
function startedStream(
  call: ClientReadableStream<unknown> | ClientDuplexStream<unknown, unknown>,
  options: CallOptions | undefined,
  outcome: Done,
): MessageQueue {
  const queue = new MessageQueue(call);
  watchMetadata(call, options);
  queue.onStatus((final) => outcome(final.code === status.OK ? null : { code: final.code, details: final.details, metadata: final.metadata }));
  return queue;
}

/**
 * Yields a stream's messages, then ends or throws its failure. The call settles (stats, in-flight
 * slot, listeners) when its status arrives, whether or not anybody is still reading. Leaving the
 * loop early cancels the call on the wire.
 */
async function* readAll(run: CallRun, queue: MessageQueue): AsyncGenerator<unknown, void, undefined> {
  queue.onStatus((final) => run.finish(final.code === status.OK));
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

/**
 * Sends a request source into a grpc-js writable stream at the pace the stream accepts:
 * `write()` returning false waits for 'drain'. Stops (and closes the source) when the call ends
 * first. An error thrown by the source cancels the call and is kept in `sourceError`: it is
 * what the caller sees, and the cancellation says nothing about the server's health.
 */
class RequestPump {
  #stopped = false;
  #wake: (() => void) | undefined;
  /** What the source threw, if it did. */
  sourceError: { error: unknown } | undefined;

  constructor(
    requests: Requests,
    readonly call: ClientWritableStream<unknown> | ClientDuplexStream<unknown, unknown>,
    readonly run: CallRun,
  ) {
    void this.#run(requests);
  }

  /** The call has ended: stop pulling from the source. */
  stop(): void {
    this.#stopped = true;
    this.#wakeUp();
  }

  async #run(requests: Requests): Promise<void> {
    let iterator: Iterator<unknown> | AsyncIterator<unknown> | undefined;
    let finished = false;
    try {
      iterator = Symbol.asyncIterator in requests ? requests[Symbol.asyncIterator]() : (requests as Iterable<unknown>)[Symbol.iterator]();
      while (!this.#stopped) {
        const next = await iterator.next();
        if (next.done) {
          finished = true;
          break;
        }
        if (this.#stopped) break;
        if (!this.call.write(next.value)) await this.#drain();
      }
      if (!this.#stopped) this.call.end();
    } catch (error) {
      finished = true;
      if (!this.#stopped) {
        this.sourceError = { error };
        this.run.sourceFailed();
        // Directly too: a source can fail before its attempt is registered with the run.
        this.call.cancel();
      }
    } finally {
      // The call ended before the source did: let the source release what it holds.
      if (!finished) await Promise.resolve(iterator?.return?.()).catch(() => {});
    }
  }

  #drain(): Promise<void> {
    return new Promise((resolve) => {
      const done = (): void => {
        this.call.removeListener('drain', done);
        this.#wake = undefined;
        resolve();
      };
      this.#wake = done;
      this.call.once('drain', done);
    });
  }

  #wakeUp(): void {
    this.#wake?.();
  }
}

function isRequests(value: unknown): value is Requests {
  return typeof value === 'object' && value !== null && (Symbol.asyncIterator in value || Symbol.iterator in value);
}

function requestsError(value: unknown): Error {
  return optionError('type', 'requests', 'an iterable or async iterable of request messages (an array, a generator, a stream)', value);
}
