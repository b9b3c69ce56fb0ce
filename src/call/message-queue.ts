import type { StatusObject } from '@grpc/grpc-js';

/** The part of a grpc-js readable call (server or bidi stream) the queue uses. */
export interface ReadableCall {
  on(event: 'data', listener: (message: unknown) => void): unknown;
  on(event: 'end' | 'close' | 'error', listener: (arg?: unknown) => void): unknown;
  on(event: 'status', listener: (status: StatusObject) => void): unknown;
  pause(): unknown;
  resume(): unknown;
  /** Messages grpc-js holds that have not been emitted yet (an object-mode stream counts objects). */
  readonly readableLength?: number;
}

/** What the attempt that owns a stream hears from its queue. */
export interface QueueListener {
  /** The first message arrived: a stream is healthy, and ready to read, at its first message. */
  firstMessage(): void;
  /** The status arrived (messages may still be buffered, here or in grpc-js). */
  statusArrived(status: StatusObject): void;
  /**
   * The status is in, and either a message arrived or grpc-js has delivered everything: whether
   * the stream had any message is now known. Once, after `statusArrived`.
   */
  streamOver(status: StatusObject): void;
}

/**
 * The responses of one stream, read at the consumer's pace. Up to `highWaterMark` messages
 * are buffered; past that the grpc-js stream is paused, so grpc-js stops reading and HTTP/2 flow
 * control makes the server's writes wait: a slow consumer never makes anybody buffer without
 * bound.
 *
 * The stream's end has two parts. The status arrives first and settles the call at once (its
 * in-flight slot, its listeners, its breaker outcome), even when the consumer has stopped
 * reading: an abandoned stream is ended by its deadline and leaks nothing. Messages still
 * buffered in grpc-js are delivered after it, before the end or the error.
 *
 * One reader (`next()`) at a time; the owner hears of the stream's first message and its end
 * through its listener, never through a second waiter.
 */
export class MessageQueue {
  readonly #call: ReadableCall;
  readonly #listener: QueueListener;
  readonly #buffer: unknown[] = [];
  readonly #highWaterMark: number;
  #paused = false;
  /** grpc-js has delivered every message ('end'). */
  #drained = false;
  #status: StatusObject | undefined;
  #over = false;
  /** The reader waiting for a message or the end; resolved by `#notify` once either is there. */
  #waiter: ((result: IteratorResult<unknown, undefined>) => void) | undefined;
  #arrived = 0;

  constructor(call: ReadableCall, listener: QueueListener, highWaterMark = 16) {
    this.#call = call;
    this.#listener = listener;
    this.#highWaterMark = highWaterMark;
    call.on('data', (message) => {
      this.#buffer.push(message);
      if (this.#buffer.length >= this.#highWaterMark && !this.#paused) {
        this.#paused = true;
        call.pause();
      }
      this.#notify();
      if (this.#arrived++ === 0) {
        listener.firstMessage();
        this.#checkOver();
      }
    });
    // 'close' too: a destroyed stream never emits 'end'.
    const drained = (): void => {
      this.#drained = true;
      this.#notify();
      this.#checkOver();
    };
    call.on('end', drained);
    call.on('close', drained);
    call.on('status', (status) => {
      if (this.#status !== undefined) return;
      this.#status = status;
      // Let what grpc-js still holds reach our buffer: the call is over, the rest is bounded.
      this.#resume();
      this.#notify();
      listener.statusArrived(status);
      this.#checkOver();
    });
    // The status carries every failure; this listener only keeps 'error' from being unhandled.
    call.on('error', () => {});
  }

  #checkOver(): void {
    if (this.#over || this.#status === undefined || (this.#arrived === 0 && !this.#drained)) return;
    this.#over = true;
    this.#listener.streamOver(this.#status);
  }

  /**
   * The next message, or `done` once the stream has ended; the caller then reads `status`. A
   * message already buffered costs one resolved promise; otherwise the reader's waiter takes the
   * next message as it arrives.
   */
  next(): Promise<IteratorResult<unknown, undefined>> {
    if (this.#readable) return Promise.resolve(this.#take());
    // No closure of our own per wait: the build keeps function names (tsup keepNames), which
    // costs every named closure made at run time an Object.defineProperty, per message here.
    return new Promise((resolve) => {
      this.#waiter = resolve;
    });
  }

  /** A message is buffered, or the stream is over (every message delivered, the status in). */
  get #readable(): boolean {
    return this.#buffer.length > 0 || (this.#drained && this.#status !== undefined);
  }

  #take(): IteratorResult<unknown, undefined> {
    if (this.#buffer.length === 0) return { value: undefined, done: true };
    const value = this.#buffer.shift();
    if (this.#paused && this.#buffer.length <= this.#highWaterMark / 2) this.#resume();
    return { value, done: false };
  }

  /**
   * Messages received so far: those grpc-js emitted, and those it still holds. When the status
   * arrives grpc-js has every message of the stream (it delivers the status after the last
   * one), so read then this is the stream's count.
   */
  get received(): number {
    return this.#arrived + (this.#call.readableLength ?? 0);
  }

  /** The final status, once the stream has ended. */
  get status(): StatusObject | undefined {
    return this.#status;
  }

  #resume(): void {
    if (!this.#paused) return;
    this.#paused = false;
    this.#call.resume();
  }

  #notify(): void {
    const waiter = this.#waiter;
    if (waiter === undefined || !this.#readable) return;
    this.#waiter = undefined;
    waiter(this.#take());
  }
}
