import { status, type StatusObject } from '@grpc/grpc-js';
import type { InFlight } from '../channel/in-flight.js';
import type { Attempt } from './attempt.js';
import { Attempts } from './attempts.js';
import { CallObserver } from './call-observer.js';
import type { MessageQueue } from './message-queue.js';

// The life of one admitted call, whatever its shape: its place in the channel's in-flight set
// (so that close() drains it, then cancels it), the listeners on the caller's signal and on the
// parent call, the call events, and the result the caller sees: a response, a stream to read, or
// the error (the abort reason, a cancellation we caused, or the failure itself). The attempts
// and what they share are the base class's (attempts.ts).

/**
 * One call. Unary and client-stream calls settle one promise; a server or bidi stream resolves
 * its queue when it is ready and settles when its status arrives, whether or not anybody reads it.
 */
export class Call extends Attempts implements InFlight {
  /** InFlight: its index in the channel's in-flight list while tracked (in-flight.ts). */
  inFlightSlot: number | undefined = undefined;
  #graceMs = 0;
  #started = false;
  #ended = false;
  #onParentCancelled: (() => void) | undefined;
  #resolve: ((value: unknown) => void) | undefined;
  #reject: ((error: unknown) => void) | undefined;

  // ---- the caller's result ----

  /** Runs a unary or client-stream call: its response, or its error. */
  response(): Promise<unknown> {
    return new Promise((resolve, reject) => {
      this.#resolve = resolve;
      this.#reject = reject;
      this.#begin();
    });
  }

  /**
   * Runs a server or bidi stream: its queue once an attempt is ready (a server stream: its first
   * message, or its clean end; a bidi stream: at once), or the error of its last attempt.
   */
  stream(): Promise<MessageQueue> {
    return this.response() as Promise<MessageQueue>;
  }

  protected succeeded(value: unknown): void {
    // Taken first: finishing may make it the channel's kept call, which lets go of it (keptIdle).
    const resolve = this.#resolve!;
    // A unary or client-stream call is over; a stream settles when its status arrives.
    if (this.bound.method.kind === 'unary' || this.bound.method.kind === 'client-stream') this.finish(true);
    resolve(value);
  }

  protected failed(error: unknown): void {
    const reject = this.#reject!;
    this.finish(false, error);
    reject(error);
  }

  /** AttemptOwner: a ready stream's status arrived. */
  streamEnded(attempt: Attempt, final: StatusObject, received: number): void {
    // Only the attempt that won a hedged call's race speaks for the call.
    if (attempt !== this.current) return;
    this.observer?.received(received);
    this.finish(final.code === status.OK, final);
  }

  // ---- lifecycle ----

  /** Counts the call as started and in flight, listens for its abort and its parent, and starts it. */
  #begin(): void {
    this.#started = true;
    this.bound.channel.track(this);
    const events = this.bound.pool.callEvents;
    if (events.watchingCalls) this.observer = new CallObserver(this.bound, events);
    this.prepared.signal?.addEventListener('abort', this);
    const { parent } = this.prepared;
    if (parent !== undefined) {
      // Made only for calls that have a parent: no closure on the common path.
      this.#onParentCancelled = () => this.#end('parent');
      parent.once('cancelled', this.#onParentCancelled);
    }
    this.startAttempts();
  }

  /**
   * Counts the call's outcome and releases everything `#begin()` took. Idempotent. A stream its
   * reader left early counts as succeeded: ending it was the caller's choice.
   */
  finish(succeeded: boolean, outcome?: unknown): void {
    if (!this.#started || this.#ended) return;
    this.#ended = true;
    this.prepared.signal?.removeEventListener('abort', this);
    if (this.#onParentCancelled !== undefined) this.prepared.parent?.removeListener('cancelled', this.#onParentCancelled);
    this.settleCircuits(succeeded);
    this.bound.channel.settle(this, succeeded || this.endedBy === 'consumer');
    this.observer?.end(succeeded ? undefined : outcome, this.attempts, this.endedBy !== undefined, this.hedges);
  }

  /** AttemptOwner: a request message went out (client and bidi streams; for the call events). */
  messageSent(): void {
    this.observer?.sent();
  }

  /** AttemptOwner: the caller's request source threw: the call is cancelled on the wire. */
  sourceFailed(): void {
    this.#end('source');
  }

  /** What the current attempt's request source threw, if it did: the caller sees it. */
  get sourceError(): { error: unknown } | undefined {
    return this.current?.sourceError;
  }

  /** The abort listener (an EventListener object, so no closure is allocated per call). */
  handleEvent(): void {
    this.#end('signal');
  }

  /** InFlight: close() ran out of grace: the call is cancelled. */
  cancelForClose(graceMs: number): void {
    this.#graceMs = graceMs;
    this.#end('close');
  }

  /**
   * InFlight: the call settled last and its channel keeps it while idle (in-flight.ts), for its
   * classes' sake: it lets go of what would keep its outcome alive (its promise, its attempts'
   * errors, its attempt's grpc-js call and stream queue).
   */
  keptIdle(): void {
    this.#resolve = undefined;
    this.#reject = undefined;
    this.forgetOutcome();
  }

  /** InFlight: the pool began closing. A call waiting to retry settles at once with its last error. */
  poolClosing(): boolean {
    if (this.backoff?.isSleeping !== true) return false;
    this.backoff.wake();
    return true;
  }

  /** A stream's reader left early (`break`, `return`, a throw): the call is cancelled on the wire. */
  leave(): void {
    this.#end('consumer');
  }

  #end(by: NonNullable<typeof this.endedBy>): void {
    this.endedBy ??= by;
    // grpc-js answers cancel() with a CANCELLED status, which settles the attempt (each of a hedged call's).
    this.cancelAttempts();
    this.backoff?.wake();
  }

  // ---- errors ----

  /**
   * The error that ends the call from the caller's side (abort, parent, close), if it was so
   * ended; undefined otherwise (also when a stream's reader left or its source failed).
   */
  stoppedError(): unknown {
    const by = this.endedBy;
    return by === 'signal' || by === 'parent' || by === 'close' ? this.finalError(undefined) : undefined;
  }

  /** The error the caller sees: the abort reason, a cancellation we caused, or the failure itself. */
  finalError(error: unknown): unknown {
    switch (this.endedBy) {
      case 'signal':
        return this.prepared.signal!.reason;
      case 'close':
        return this.cancelledError(`cancelled by ChannelPool.close(): still running after graceMs ${this.#graceMs} ms`, error);
      case 'parent':
        return this.cancelledError('cancelled because its parent call was cancelled', error);
      default:
        return error;
    }
  }
}
