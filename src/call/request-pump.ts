import type { ClientDuplexStream, ClientWritableStream } from '@grpc/grpc-js';
import { optionError } from '../core/option-error.js';

/** A message from the source that cannot be sent: the call fails with its INVALID_ARGUMENT error. */
class BadRequest {
  constructor(readonly error: Error) {}
}

/** A client or bidi stream's request source: an iterable or an async iterable of messages. */
export type Requests = AsyncIterable<unknown> | Iterable<unknown>;

/** What the pump tells the call about: its source failed. */
export interface PumpOwner {
  sourceFailed(): void;
  /** A message was written to the stream (counted for the call events). */
  messageSent(): void;
}

/**
 * Sends a request source into a grpc-js writable stream at the pace the stream accepts:
 * `write()` returning false waits for 'drain'. Stops (and closes the source) when the call ends
 * first. An error thrown by the source cancels the call and is kept in `sourceError`: it is
 * what the caller sees, and the cancellation says nothing about the server's health.
 */
export class RequestPump {
  #stopped = false;
  #wake: (() => void) | undefined;
  /** What the source threw, if it did. */
  sourceError: { error: unknown } | undefined;

  constructor(
    requests: Requests,
    readonly call: ClientWritableStream<unknown> | ClientDuplexStream<unknown, unknown>,
    readonly owner: PumpOwner,
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
        if (typeof next.value !== 'object' || next.value === null) {
          // grpc-js would throw ERR_STREAM_NULL_VALUES (a string code) or fail to serialize.
          throw new BadRequest(optionError('type', 'request', 'a request message object (from the requests source)', next.value));
        }
        const accepted = this.call.write(next.value);
        this.owner.messageSent();
        if (!accepted) await this.#drain();
      }
      if (!this.#stopped) this.call.end();
    } catch (thrown) {
      // The source threw (it is done), or it yielded what cannot be sent (it is not).
      const bad = thrown instanceof BadRequest;
      const error = bad ? thrown.error : thrown;
      finished = !bad;
      if (!this.#stopped) {
        this.sourceError = { error };
        this.owner.sourceFailed();
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
