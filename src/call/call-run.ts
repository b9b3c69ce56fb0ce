// The life of one call. Over 300 lines on purpose: its attempts share the call's state (their
// count, their errors, the retry verdict and backoff, the circuits' tickets, the endpoint the last
// one failed on), and splitting that state between two files would make each know the other's
// fields. What is not the call's own lives beside it: the attempt's link to its endpoint
// (endpoint-lb.ts), the circuits (call-circuits.ts), the events (call-observer.ts), the errors
// (call-errors.ts), the backoff sleep (backoff.ts) and p-retry (retry-loop.ts).
import { status, type Metadata } from '@grpc/grpc-js';
import { Backoff } from './backoff-sleep.js';
import type { BoundMethod } from './bound-method.js';
import { CallCircuits } from './call-circuits.js';
import { inScope } from '../events/call-events.js';
import { CallObserver } from './call-observer.js';
import { CallErrors, isGrpcStatus, type GrpcStatus } from './call-errors.js';
import { CircuitOpenError, StatusError } from '../core/errors.js';
import type { InFlight } from '../channel/managed-channel.js';
import type { PreparedCall } from './call-options.js';
import { retryLoop } from './retry-loop.js';
import { backoffDelayMs, retryVerdict, type ResolvedRetry, type RetryVerdict } from './retry-policy.js';
import { endAttempt, linkAttempt, type AttemptLink } from '../channel/endpoint-lb.js';
import { attemptOutcome, attemptReach, type AttemptReach } from '../core/status-meaning.js';

/** The grpc-js call options of one attempt: its deadline (always finite). */
export interface AttemptOptions {
  deadline: number;
}

/**
 * A started grpc-js call, as every call shape's call object is: what `close()`, an abort or an
 * early exit cancels, and what tells how far a failed attempt got.
 */
export interface Cancellable {
  cancel(): void;
  /** The peer's address once an HTTP/2 stream exists; the channel's target before. */
  getPeer(): string;
  on(event: 'metadata', listener: (this: Cancellable) => void): unknown;
}

/** Set on an attempt's call object when its response headers arrive: the call is committed. */
const COMMITTED = Symbol('resilient-grpc.committed');

/** The 'metadata' listener of every attempt: one function, so no closure per attempt. */
function markCommitted(this: Cancellable): void {
  (this as Cancellable & { [COMMITTED]?: true })[COMMITTED] = true;
}

/** Reports an attempt's outcome once: `(null, value)` on success, `(error)` on failure. */
export type Done<T = unknown> = (error: unknown, value?: T) => void;

/**
 * Reports how an attempt went, for the breaker and endpoint ejection: `(error)` when it ended
 * (`null` for OK), and for a stream also `(null, false)` at its first message, which is when a
 * stream is judged healthy (a half-open probe must not last a stream's whole life).
 */
export type Outcome = (error: unknown, final?: boolean) => void;

/**
 * Starts one attempt on the wire and returns its call. `done` is called once the attempt has
 * succeeded far enough not to be retried (unary: the response; a server stream: its first
 * message) or has failed; `outcome` as {@link Outcome} says. A unary sender calls both with the
 * same error when the call ends.
 */
export type Sender<T> = (options: AttemptOptions, metadata: Metadata, done: Done<T>, outcome: Outcome) => Cancellable;

/**
 * Why a call was ended from our side, when it was. 'consumer': a stream's reader left early;
 * 'source': a client or bidi stream's request source threw.
 */
type EndedBy = 'signal' | 'parent' | 'close' | 'consumer' | 'source';

const NOT_RETRYABLE: RetryVerdict = Object.freeze({ retry: false, reason: 'not-retryable' });

/**
 * The life of one admitted call, whatever its shape: its place in the channel's in-flight set,
 * the listeners on the caller's signal and on the parent call, the attempts (through the
 * breaker, retried by the policy), and the error the caller finally sees. The first attempt
 * runs directly; when it fails with a status the policy retries, the retry loop drives the
 * remaining attempts, with our own backoff (full jitter, server pushback, the call's deadline).
 */
export class CallRun implements InFlight {
  /** The attempt on the wire, while one runs. */
  #running: Cancellable | undefined;
  #endedBy: EndedBy | undefined;
  #graceMs = 0;
  /** The retry backoff, made at the first retry: a healthy call never needs one. */
  #backoff: Backoff | undefined;
  #attempts = 0;
  /** Errors of the attempts so far; made on the first failure only (healthy calls have none). */
  #errors: CallErrors | undefined;
  /** How long the last attempt took, in ms: the estimate of what another one needs. */
  #lastAttemptMs = 0;
  /** Whether the last failed attempt may be retried, by its status alone. */
  #verdict: RetryVerdict = NOT_RETRYABLE;
  /** Retry tokens this call's failed attempts took: given back if the call succeeds. */
  #tokensTaken = 0;
  /** The endpoint of the last failed attempt, when the channel tracks endpoints: retries avoid it. */
  #lastAddress: string | undefined;
  #started = false;
  #ended = false;
  #onParentCancelled: (() => void) | undefined;
  /** The circuits this call passes; made at its first attempt when the method has a breaker. */
  #circuits: CallCircuits | undefined;
  /**
   * Whether `perAttemptTimeoutMs` goes on the wire as each attempt's deadline (unary calls), or
   * is kept by a timer that only runs until the attempt is ready (a server stream: its first
   * message; after that the stream cannot be retried and only the call's deadline applies).
   */
  #attemptLimitOnWire = true;
  /** The call's events, when somebody listens as it begins (call-observer.ts). */
  #observer: CallObserver | undefined;

  constructor(
    readonly bound: BoundMethod,
    readonly prepared: PreparedCall,
    readonly retry: ResolvedRetry,
  ) {}

  // ---- lifecycle ----

  /** Counts the call as started and in flight, and listens for its abort and its parent. */
  begin(): void {
    this.#started = true;
    this.bound.channel.track(this);
    const events = this.bound.pool.callEvents;
    if (events.watchingCalls) this.#observer = new CallObserver(this.bound, events);
    this.prepared.signal?.addEventListener('abort', this);
    const { parent } = this.prepared;
    if (parent !== undefined) {
      // Made only for calls that have a parent: no closure on the common path.
      this.#onParentCancelled = () => this.#end('parent');
      parent.once('cancelled', this.#onParentCancelled);
    }
  }

  /**
   * Counts the call's outcome and releases everything `begin()` took. Idempotent. A stream its
   * reader left early counts as succeeded: ending it was the caller's choice.
   */
  finish(succeeded: boolean, outcome?: unknown): void {
    if (!this.#started || this.#ended) return;
    this.#ended = true;
    this.prepared.signal?.removeEventListener('abort', this);
    if (this.#onParentCancelled !== undefined) this.prepared.parent?.removeListener('cancelled', this.#onParentCancelled);
    this.#circuits?.settle(succeeded);
    this.bound.channel.settle(this, succeeded || this.#endedBy === 'consumer');
    this.#observer?.end(succeeded ? undefined : outcome, this.#attempts, this.#endedBy !== undefined);
  }

  /** A request message went out (client and bidi streams; counted for the call events). */
  messageSent(): void {
    this.#observer?.sent();
  }

  /** A stream's response messages, counted when its status arrives (for the call events). */
  messagesReceived(count: number): void {
    this.#observer?.received(count);
  }

  /** Whether the call was ended from our side (abort, parent, close, a stream's reader or source). */
  get isEnded(): boolean {
    return this.#endedBy !== undefined;
  }

  /** The abort listener (an EventListener object, so no closure is allocated per call). */
  handleEvent(): void {
    this.#end('signal');
  }

  cancelForClose(graceMs: number): void {
    this.#graceMs = graceMs;
    this.#end('close');
  }

  poolClosing(): boolean {
    // A call waiting to retry settles at once with its last error: no new attempt can start.
    if (this.#backoff?.isSleeping !== true) return false;
    this.#backoff.wake();
    return true;
  }

  /** A stream's reader left early (`break`, `return`, a throw): the call is cancelled on the wire. */
  leave(): void {
    this.#end('consumer');
  }

  /** The caller's request source threw: the call is cancelled on the wire. */
  sourceFailed(): void {
    this.#end('source');
  }

  #end(by: EndedBy): void {
    this.#endedBy ??= by;
    // grpc-js answers cancel() with a CANCELLED status, which settles the attempt.
    this.#running?.cancel();
    this.#backoff?.wake();
  }

  // ---- attempts ----

  /**
   * A unary call's attempts, settled into one promise. The healthy path allocates as little as it
   * can: no async frame and no promise per attempt; the retry path below is taken on failure only.
   */
  unary<T>(send: Sender<T>): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this.#startAttempt(send, (error, value) => {
        if (error === null) {
          this.finish(true);
          resolve(value as T);
          return;
        }
        this.#retryAfter(error, send).then(
          (retried) => {
            this.finish(true);
            resolve(retried);
          },
          (final: unknown) => {
            this.finish(false, final);
            reject(final);
          },
        );
      });
    });
  }

  /**
   * Runs the attempts until one succeeds far enough (for a stream: its first message, see
   * `Sender`) or the policy stops; rejects with the error the caller should see.
   */
  async attempts<T>(send: Sender<T>): Promise<T> {
    this.#attemptLimitOnWire = false;
    try {
      return await this.#attempt(send);
    } catch (error) {
      return this.#retryAfter(error, send);
    }
  }

  /** After a failed first attempt: the retries; rejects with the caller's error. */
  async #retryAfter<T>(error: unknown, send: Sender<T>): Promise<T> {
    try {
      if (!(await this.#shouldRetry(error))) throw error;
      // The first attempt ran before, so `maxAttempts - 2` retries are left after this one.
      return await retryLoop(this.retry.maxAttempts - 2, () => this.#attempt(send), (attemptError) => this.#shouldRetry(attemptError));
    } catch (final) {
      throw this.finalError(final);
    }
  }

  /** One attempt as a promise, for the retry loop and for streams. */
  #attempt<T>(send: Sender<T>): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this.#startAttempt(send, (error, value) => (error === null ? resolve(value as T) : reject(error)));
    });
  }

  /**
   * Starts one attempt, through the breaker when there is one, with this attempt's deadline and
   * metadata. `done` gets the value, or the failure already turned into a StatusError and
   * judged for retries.
   */
  #startAttempt<T>(send: Sender<T>, done: Done<T>): void {
    const { channel, method, pool } = this.bound;
    if (this.#attempts > 0 && (this.#endedBy !== undefined || !pool.isOpen)) {
      // Ended (or the pool began closing) between a failed attempt and this retry: nothing new
      // goes on the wire; the call settles with its last error.
      this.#verdict = NOT_RETRYABLE;
      done(this.#errors?.last ?? this.#callErrors().cancelled('not retried: the call ended before its retry started', undefined, this.#attempts));
      return;
    }
    // The method's circuit (or the channel's, with scope 'channel') and the target's.
    if (this.#attempts === 0) this.#circuits = CallCircuits.of(this.bound);
    const open = this.#circuits?.admit();
    if (open !== undefined) {
      // Never retried, never on the network; the last real failure, if any, is its cause.
      done(new CircuitOpenError({ method: method.path, target: channel.target, nextProbeAt: open.nextProbeAt, cause: this.#errors?.last }));
      return;
    }
    const attempt = ++this.#attempts;
    const { deadline } = this.prepared;
    const perAttempt = this.retry.perAttemptTimeoutMs;
    const startedAt = Date.now();
    const limited = perAttempt !== undefined && startedAt + perAttempt < deadline;
    const attemptDeadline = limited && this.#attemptLimitOnWire ? startedAt + perAttempt : deadline;
    let metadata = attempt === 1 ? this.prepared.metadata : retryMetadata(this.prepared.metadata, attempt - 1);
    // The first attempt's metadata is the caller's own object when they passed a Metadata: a
    // copy is made before anything is written to it.
    let ownMetadata = attempt > 1 || !this.prepared.callerMetadata;
    // Call events: the attempt's start time, and its start event (listeners may add headers).
    const observer = this.#observer;
    const attemptAt = observer === undefined ? 0 : performance.now();
    let scope: ((start: () => void) => void) | undefined;
    if (observer !== undefined && observer.events.onAttemptStart.hasListeners) {
      if (!ownMetadata) metadata = metadata.clone();
      ownMetadata = true;
      scope = observer.attemptStart(attempt, metadata);
    }
    // On a channel that tracks its endpoints, the picker tells the attempt where it went.
    let link: AttemptLink | undefined;
    if (channel.endpoints !== undefined) {
      if (!ownMetadata) metadata = metadata.clone();
      link = linkAttempt(metadata, this.#lastAddress);
    }
    // The connect watchdog may replace the channel's grpc-js channel while this attempt runs.
    const generation = channel.generation;
    let running: Cancellable | undefined;
    // A stream's per-attempt limit, kept off the wire: it ends the attempt if it is not ready in time.
    let limitTimer: NodeJS.Timeout | undefined;
    let timedOut = false;
    if (limited && !this.#attemptLimitOnWire) {
      limitTimer = setTimeout(() => {
        timedOut = true;
        running?.cancel();
      }, perAttempt);
      limitTimer.unref();
    }
    // grpc-js reports the cancel() of a timed-out attempt as CANCELLED: it is our own deadline.
    const onDone: Done<T> = (error, value) => {
      clearTimeout(limitTimer);
      if (error === null) {
        channel.attemptSucceeded(this.#tokensTaken);
        done(null, value);
        return;
      }
      this.#lastAttemptMs = Date.now() - startedAt;
      done(this.#attemptFailed(timedOut ? asTimeout(error, perAttempt, this.#endedBy !== undefined) : error, limited, channel.generation !== generation, running));
    };
    let judged = false;
    const onOutcome: Outcome = (rawError, final = true) => {
      const error = timedOut ? asTimeout(rawError, perAttempt, this.#endedBy !== undefined) : rawError;
      if (final) {
        // The attempt is over: nothing left to cancel.
        if (this.#running === running) this.#running = undefined;
        observer?.attemptEnd(attempt, error, attemptAt, running);
      }
      // A stream is judged at its first message or its end, whichever comes first.
      if (judged) return;
      judged = true;
      // Ended from our side (abort, parent, close, the reader left), or failed because the
      // connect watchdog replaced its channel under it: says nothing about the backend's
      // health, so the breaker counts it neither way. (A burst of calls queued on a stuck
      // channel would otherwise open the circuit just as the new channel could serve them.)
      const outcome = attemptOutcome(error, this.#endedBy !== undefined || channel.generation !== generation);
      if (outcome === 'success') this.#circuits?.settle(true);
      else this.#circuits?.attemptFailed(outcome, outcome === 'failure' ? this.#reachOf(running, (error as GrpcStatus).metadata) : 'answered');
      if (link !== undefined) {
        endAttempt(link, outcome);
        if (outcome !== 'success') this.#lastAddress = link.address;
      }
    };
    try {
      running = scope === undefined ? send({ deadline: attemptDeadline }, metadata, onDone, onOutcome) : inScope(scope, () => send({ deadline: attemptDeadline }, metadata, onDone, onOutcome));
      running.on('metadata', markCommitted);
      this.#running = running;
    } catch (error) {
      clearTimeout(limitTimer);
      // grpc-js throws synchronously when its channel is already closed: never retried.
      onOutcome(error);
      this.#verdict = NOT_RETRYABLE;
      done(this.#failure({ code: status.UNAVAILABLE, details: error instanceof Error ? error.message : String(error) }, error));
    }
  }

  /**
   * Turns an attempt's failure into a StatusError and records what it means for retries: by its
   * status, and by how far its request got.
   */
  #attemptFailed(error: unknown, hadOwnDeadline: boolean, channelReplaced: boolean, call: Cancellable | undefined): unknown {
    if (!isGrpcStatus(error)) return error;
    const failure = error instanceof StatusError ? error : this.#failure(error, error);
    const reach = this.#reachOf(call, failure.metadata);
    // A DEADLINE_EXCEEDED may be retried only when the attempt's own timeout was the earlier one.
    this.#verdict = retryVerdict(this.retry, failure.code, failure.metadata, hadOwnDeadline, failure.details, reach, this.prepared.policy.idempotent);
    // gRFC A6: every failed attempt whose status could be retried takes a token, the last one
    // too. Not one that failed because the watchdog closed its stuck channel: it never reached
    // a server, and the calls queued there retry on the new channel.
    // gRFC A6: every failed attempt whose status could be retried takes a token, the last one
    // too. Not one that failed because the watchdog closed its stuck channel: it never reached
    // a server, and the calls queued there retry on the new channel.
    if (this.#verdict.retry && !channelReplaced) {
      this.bound.channel.attemptFailedRetryably();
      this.#tokensTaken++;
    }
    return failure;
  }

  /** How far a failed attempt got (see `attemptReach`); an attempt that never started was not sent. */
  #reachOf(call: Cancellable | undefined, trailers: Metadata | undefined): AttemptReach {
    return attemptReach(
      (call as { [COMMITTED]?: true } | undefined)?.[COMMITTED] === true,
      call !== undefined && call.getPeer() !== this.bound.channel.grpcTarget,
      trailers !== undefined && Object.keys(trailers.getMap()).length > 0,
    );
  }

  /**
   * After a failed attempt: whether to try again, after sleeping the backoff. No when the status
   * is not retryable, attempts are used up, the channel's retry budget is spent, the pool is
   * closing, the call was ended, or the call's deadline cannot fit the backoff plus another
   * attempt as long as the last one.
   */
  async #shouldRetry(error: unknown): Promise<boolean> {
    if (!(error instanceof StatusError) || this.#endedBy !== undefined) return false;
    const { channel, pool, method } = this.bound;
    const verdict = this.#verdict;
    if (!verdict.retry) return false;
    if (this.#attempts >= this.retry.maxAttempts || !pool.isOpen) return false;
    if (channel.retryThrottled()) return false;
    const delayMs = verdict.pushbackMs ?? backoffDelayMs(this.retry, this.#attempts, Math.random);
    const nextAttemptMs = Math.min(this.#lastAttemptMs, this.retry.perAttemptTimeoutMs ?? Number.POSITIVE_INFINITY);
    if (Date.now() + delayMs + nextAttemptMs >= this.prepared.deadline) return false;
    channel.retryStarted();
    if (pool.onRetry.hasListeners) {
      pool.onRetry.emit({
        target: channel.target,
        method: method.path,
        attempt: this.#attempts,
        code: error.code,
        details: error.details,
        delayMs,
        pushback: verdict.pushbackMs !== undefined,
        callId: this.#observer?.callId ?? 0,
      });
    }
    if (delayMs > 0) {
      const sleptFrom = performance.now();
      await (this.#backoff ??= new Backoff()).sleep(delayMs);
      this.#observer?.slept(performance.now() - sleptFrom);
    }
    return this.#endedBy === undefined && pool.isOpen;
  }

  // ---- errors ----

  /** A StatusError for this call from a status, recorded as this attempt's error. */
  failureOf(grpcStatus: GrpcStatus, cause: unknown): StatusError {
    return this.#failure(grpcStatus, cause);
  }

  #failure(grpcStatus: GrpcStatus, cause: unknown): StatusError {
    return this.#callErrors().fromStatus(grpcStatus, cause, this.#attempts);
  }

  #callErrors(): CallErrors {
    return (this.#errors ??= new CallErrors(this.bound.method.path, this.bound.channel.target));
  }

  /**
   * The error that ends the call from the caller's side (abort, parent, close), if it was so
   * ended; undefined otherwise (also when a stream's reader left or its source failed).
   */
  stoppedError(): unknown {
    const by = this.#endedBy;
    return by === 'signal' || by === 'parent' || by === 'close' ? this.finalError(undefined) : undefined;
  }

  /** The error the caller sees: the abort reason, a cancellation we caused, or the failure itself. */
  finalError(error: unknown): unknown {
    switch (this.#endedBy) {
      case 'signal':
        return this.prepared.signal!.reason;
      case 'close':
        return this.#callErrors().cancelled(`cancelled by ChannelPool.close(): still running after graceMs ${this.#graceMs} ms`, error, this.#attempts);
      case 'parent':
        return this.#callErrors().cancelled('cancelled because its parent call was cancelled', error, this.#attempts);
      default:
        return error;
    }
  }
}

/** Request metadata for a retry: grpc's `grpc-previous-rpc-attempts` header added to a copy. */
function retryMetadata(metadata: Metadata, previousAttempts: number): Metadata {
  const copy = metadata.clone();
  copy.set('grpc-previous-rpc-attempts', String(previousAttempts));
  return copy;
}

/** The failure of an attempt its own per-attempt timer ended: grpc-js says CANCELLED, we say DEADLINE_EXCEEDED. */
function asTimeout(error: unknown, perAttemptMs: number | undefined, endedByUs: boolean): unknown {
  if (endedByUs || !isGrpcStatus(error) || error.code !== status.CANCELLED) return error;
  return { code: status.DEADLINE_EXCEEDED, details: `per-attempt timeout: not ready within perAttemptTimeoutMs ${perAttemptMs} ms`, metadata: error.metadata };
}
