import type { StatusObject } from '@grpc/grpc-js';
import { CircuitOpenError, StatusError } from '../core/errors.js';
import { isOwnFailure, type AttemptOutcome, type AttemptReach } from '../core/status-meaning.js';
import { Attempt, type AttemptOwner, type AttemptPlan } from './attempt.js';
import { BackoffSleep } from './backoff-sleep.js';
import type { BoundMethod } from './bound-method.js';
import { CallCircuits } from './call-circuits.js';
import { CallErrors, isGrpcStatus, throttledError, type GrpcStatus } from './call-errors.js';
import type { CallObserver } from './call-observer.js';
import { retryMetadata, type PreparedCall } from './call-options.js';
import { decideRetry, resendsAfterReplacement, retryVerdict, type ResolvedRetry, type RetryVerdict } from './retry-decision.js';
import { retryLoop } from './retry-loop.js';

// The attempts of one call, one after another: the first goes out directly; when it fails with a
// status the retry decision (retry-decision.ts) allows, p-retry (retry-loop.ts) drives the rest,
// with our own backoff (gRFC A6 full jitter, server pushback, the call's deadline). Each attempt
// passes the call's circuits first (call-circuits.ts) and is an `Attempt` (attempt.ts), which
// hears grpc-js and tells this layer once it is ready or failed. The call's lifecycle is the
// subclass's (call.ts). Hedging (hedging.ts for the delay and the budget): while the first attempt
// of an idempotent unary or server-stream call runs, a hedge may race it; the first response (a
// stream's first message) wins and the other is cancelled on the wire; a failure while the other
// still runs does not end the call.
//
// Over 300 lines on purpose: the decisions are pure functions elsewhere (retry-decision.ts,
// hedging.ts), and what is left here is the state the attempts of one call share (their errors,
// the verdict on the last failure, the retry tokens, the circuits' tickets, the endpoint to avoid,
// the race of a hedged call); a second file would have to reach into it.

/** Why a call was ended from our side: see `Call`. */
export type EndedBy = 'signal' | 'parent' | 'close' | 'consumer' | 'source';

const NOT_RETRYABLE: RetryVerdict = Object.freeze({ retry: false, reason: 'not-retryable' });

/**
 * The attempts of one call, and the call's state that they share: their count, their errors,
 * the verdict on the last failure, the retry tokens taken, the circuits' tickets, and the endpoint
 * the last attempt failed on. Subclassed by `Call`, which owns the lifecycle.
 */
export abstract class Attempts implements AttemptOwner {
  /** Why the call was ended from our side, if it was. */
  protected endedBy: EndedBy | undefined;
  /** The call's events, when somebody listens as it begins (call-observer.ts). */
  observer: CallObserver | undefined;
  /** The attempt on the wire, while one runs. */
  protected current: Attempt | undefined;
  /** Attempts started so far. */
  protected attempts = 0;
  /** Errors of the attempts so far; made on the first failure only (healthy calls have none). */
  #errors: CallErrors | undefined;
  /** Whether the last failed attempt may be retried, by its status alone. */
  #verdict: RetryVerdict = NOT_RETRYABLE;
  /** Retry tokens this call's failed attempts took: given back if the call succeeds. */
  #tokensTaken = 0;
  /** The attempt on the wire (or about to start) is a retry the channel's retry budget paid for. */
  #paidByBudget = false;
  /** The endpoint of the last failed attempt, when the channel tracks endpoints: retries avoid it. */
  #avoid: string | undefined;
  #lastAttemptMs = 0;
  /** The circuits this call passes; made at its first attempt when the method has a breaker. */
  #circuits: CallCircuits | undefined;
  /** The retry backoff, made at the first retry: a healthy call never needs one. */
  protected backoff: BackoffSleep | undefined;
  /** An attempt failed by a channel replacement was sent again (once per call). */
  #resent = false;
  /** Resolves or rejects the attempt the retry loop waits for. */
  #waiter: { resolve(value: unknown): void; reject(error: unknown): void } | undefined;
  /** The attempts out at once while a hedge races the first one; undefined when none races. */
  #race: Attempt[] | undefined;
  /** The timer that sends the hedge. */
  #hedgeTimer: NodeJS.Timeout | undefined;
  /** Hedges sent (at most one per call). */
  protected hedges = 0;

  constructor(
    readonly bound: BoundMethod,
    readonly prepared: PreparedCall,
    readonly retry: ResolvedRetry,
    /** The request message (unary, server stream) or the request source (client and bidi streams). */
    readonly request: unknown,
  ) {}

  /** Whether the call was ended from our side (abort, parent, close, a stream's reader or source). */
  get isEnded(): boolean {
    return this.endedBy !== undefined;
  }

  // ---- what the subclass hears ----

  /** The call succeeded far enough: a response, or a stream that may be read. */
  protected abstract succeeded(value: unknown): void;
  /** The call failed: `error` is what the caller sees. */
  protected abstract failed(error: unknown): void;
  /** The error the caller sees for a failure, given how the call was ended. */
  abstract finalError(error: unknown): unknown;
  abstract streamEnded(attempt: Attempt, final: StatusObject, received: number): void;
  abstract messageSent(): void;
  abstract sourceFailed(): void;

  /** The call is over and kept by its idle channel (in-flight.ts): it lets go of its attempts' errors and wire. */
  protected forgetOutcome(): void {
    this.#errors = undefined;
    this.current?.letGoOfWire();
  }

  // ---- attempts ----

  /** Starts the call's first attempt. */
  protected startAttempts(): void {
    this.#circuits = CallCircuits.of(this.bound);
    this.#next();
  }

  /**
   * Starts the next attempt through the circuits, unless the call was ended (or the pool began
   * closing) since the last one failed: then it settles with its last error, and nothing new
   * goes on the wire.
   */
  #next(): void {
    const { channel, method, pool } = this.bound;
    if (this.attempts > 0 && (this.endedBy !== undefined || !pool.isOpen)) {
      this.#verdict = NOT_RETRYABLE;
      this.#settleAttempt(
        this.#errors?.last ??
          this.#callErrors().cancelled('not retried: the call ended before its retry started', undefined, this.attempts),
      );
      return;
    }
    // Adaptive throttling (adaptive-throttle.ts) judges first attempts only, before the circuits:
    // a call it rejects takes no circuit ticket, is never retried, and counts for nothing else.
    if (this.attempts === 0 && !channel.admitsFirstAttempt()) {
      this.#settleAttempt(throttledError(method.path, channel.target));
      return;
    }
    const open = this.#circuits?.admit();
    if (open !== undefined) {
      // Never retried, never on the network; the last real failure, if any, is its cause.
      this.#settleAttempt(
        new CircuitOpenError({ method: method.path, target: channel.target, nextProbeAt: open.nextProbeAt, cause: this.#errors?.last }),
      );
      return;
    }
    const number = ++this.attempts;
    const attempt = new Attempt(this, this.#plan(number, this.#avoid, false));
    this.current = attempt;
    attempt.start();
    if (number === 1 && this.bound.hedger !== undefined) this.#armHedge(attempt);
  }

  /** How attempt `number` is made: its deadlines, its metadata, the endpoint it avoids. */
  #plan(number: number, avoid: string | undefined, hedge: boolean): AttemptPlan {
    const { deadline, metadata, callerMetadata } = this.prepared;
    const perAttempt = this.retry.perAttemptTimeoutMs;
    const startedAt = number === 1 ? this.prepared.admittedAt : Date.now();
    const limited = perAttempt !== undefined && startedAt + perAttempt < deadline;
    // A unary attempt's own limit goes on the wire; a stream's is kept by a timer that runs only
    // until it is ready (its first message): after that it cannot be retried, and only the
    // call's deadline applies.
    const onWire = this.bound.method.kind === 'unary';
    return {
      number,
      wireDeadline: limited && onWire ? startedAt + perAttempt : deadline,
      readyWithinMs: limited && !onWire ? perAttempt : undefined,
      perAttemptTimeoutMs: perAttempt,
      ownDeadline: limited,
      startedAt,
      metadata: number === 1 ? metadata : retryMetadata(metadata, number - 1),
      // The first attempt's metadata is the caller's own object when they passed a Metadata: a
      // copy is made before anything is written to it.
      ownMetadata: number > 1 || !callerMetadata,
      avoid,
      hedge,
    };
  }

  // ---- hedging ----

  /**
   * After the first attempt started: the call earns its share of the hedge budget, and when the
   * method's hedge delay allows one (hedging.ts), a timer sends the hedge. Only for a call that is
   * still idempotent after its own options.
   */
  #armHedge(first: Attempt): void {
    const hedger = this.bound.hedger!;
    if (!this.prepared.policy.idempotent || first.isDone) return;
    hedger.callStarted();
    const plan = hedger.delay(this.prepared.deadline - Date.now(), this.retry.perAttemptTimeoutMs);
    if (!plan.hedge) return;
    this.#hedgeTimer = setTimeout(() => this.#sendHedge(first), plan.delayMs);
  }

  /**
   * The hedge delay passed with the first attempt still out: a hedge races it, on another
   * endpoint, if the call still wants an answer, the first attempt is not committed, every circuit
   * is closed (never beside a half-open probe), the adaptive throttle is not shedding, and the hedge budget and the channel's retry
   * budget (shared with retries, gRFC A6's bucket first) both pay for it.
   */
  #sendHedge(first: Attempt): void {
    this.#hedgeTimer = undefined;
    const { channel, pool } = this.bound;
    if (this.endedBy !== undefined || !pool.isOpen || first.isDone || first.committed || this.current !== first) return;
    if (this.#circuits !== undefined && !this.#circuits.allClosed) return;
    // The channel's adaptive throttle is shedding load: a hedge would add to it.
    if (channel.isShedding) return;
    if (!channel.allowsRetry || !this.bound.hedger!.takeHedge()) return;
    this.#paidByBudget = channel.retryAdmitted();
    this.hedges++;
    channel.hedgeSent();
    first.raced();
    const hedge = new Attempt(this, this.#plan(++this.attempts, first.endpoint, true));
    hedge.raced();
    this.#race = [first, hedge];
    hedge.start();
  }

  /**
   * An attempt of a race is ready or failed. The first ready one wins: the others are cancelled
   * on the wire, and the call goes on with the winner. A failure while another attempt still runs
   * is recorded (its retry verdict, its token) and does not end the call; pushback in it stops any
   * further hedging. Returns whether the call is done with this report.
   */
  #raceDone(attempt: Attempt, error: unknown): boolean {
    const race = this.#race!;
    const others = race.filter((other) => other !== attempt && !other.isDone);
    if (error === null) {
      this.#race = undefined;
      this.current = attempt;
      if (attempt.hedge) this.bound.channel.hedgeWon();
      // A hedge that lost gets no token back: it was the extra load the budget allowed.
      else this.#paidByBudget = false;
      for (const other of others) other.abandon();
      return false;
    }
    if (others.length === 0) {
      this.#race = undefined;
      return false;
    }
    this.#race = others;
    this.current = others[0];
    this.#lastAttemptMs = attempt.durationMs;
    this.#avoid = attempt.failedAt ?? this.#avoid;
    this.#attemptFailed(attempt, error);
    return true;
  }

  /** Cancels every attempt of the call on the wire (the race's too) and any hedge not yet sent. */
  protected cancelAttempts(): void {
    this.#stopHedging();
    if (this.#race !== undefined) for (const attempt of this.#race) attempt.cancel();
    else this.current?.cancel();
  }

  #stopHedging(): void {
    if (this.#hedgeTimer === undefined) return;
    clearTimeout(this.#hedgeTimer);
    this.#hedgeTimer = undefined;
  }

  /** AttemptOwner: how an attempt counts for health, once. */
  attemptJudged(_attempt: Attempt, outcome: AttemptOutcome, reach: AttemptReach, code?: number): void {
    if (outcome === 'success') this.#circuits?.settle(true);
    else this.#circuits?.attemptFailed(outcome, reach, code);
  }

  /** AttemptOwner: an attempt is ready or failed. */
  attemptDone(attempt: Attempt, error: unknown, value: unknown): void {
    // The loser of a race: the call is no longer interested.
    if (attempt.abandoned) return;
    // The first attempt ended before its hedge went out: no hedge (a failure goes to the retry
    // decision, which honours pushback, gRFC A6).
    this.#stopHedging();
    if (this.#race !== undefined && this.#raceDone(attempt, error)) return;
    // The call committed: its latency is the method's (from admission, whichever attempt won).
    if (error === null && this.bound.hedger !== undefined) this.bound.hedger.record(Date.now() - this.prepared.admittedAt);
    if (error === null) {
      this.bound.channel.attemptSucceeded(this.#tokensTaken, this.#paidByBudget);
    } else {
      this.#lastAttemptMs = attempt.durationMs;
      this.#avoid = attempt.failedAt ?? this.#avoid;
      error = this.#attemptFailed(attempt, error);
      // A resend after a replacement is the same retry, paid once; anything else decides anew.
      if (!attempt.channelReplaced) this.#paidByBudget = false;
      if (this.#resendAfterReplacement(attempt, error)) return;
    }
    this.#settleAttempt(error, value);
  }

  /** A never-sent attempt failed by our channel replacement goes once more (resendsAfterReplacement). */
  #resendAfterReplacement(attempt: Attempt, error: unknown): boolean {
    if (!(error instanceof StatusError) || attempt.threw || !attempt.channelReplaced) return false;
    const state = {
      resent: this.#resent,
      ended: this.endedBy !== undefined || !this.bound.pool.isOpen,
      msLeft: this.prepared.deadline - Date.now(),
    };
    if (!resendsAfterReplacement(this.#verdict, error.code, attempt.reachOf(error), this.bound.method.kind, state)) return false;
    this.#resent = true;
    this.#next();
    return true;
  }

  /** Hands an attempt's result to the retry loop waiting for it, or settles the first attempt. */
  #settleAttempt(error: unknown, value?: unknown): void {
    const waiter = this.#waiter;
    if (waiter !== undefined) {
      this.#waiter = undefined;
      if (error === null) waiter.resolve(value);
      else waiter.reject(error);
      return;
    }
    if (error === null) {
      this.succeeded(value);
      return;
    }
    this.#retryAfter(error).then(
      (retried) => this.succeeded(retried),
      (final: unknown) => this.failed(final),
    );
  }

  /**
   * Turns an attempt's failure into a StatusError and records what it means for retries: by its
   * status, and by how far its request got.
   */
  #attemptFailed(attempt: Attempt, error: unknown): unknown {
    if (!isGrpcStatus(error)) return error;
    const failure = error instanceof StatusError ? error : this.#failure(error, attempt.threw ? attempt.thrown : error);
    if (attempt.threw || attempt.stoppedByInterceptor) {
      // grpc-js threw when the call was made (its channel was closed, or an interceptor threw),
      // or an interceptor ended the attempt with a status of its own before it reached the
      // channel: never retried. The interceptor decided; another attempt would ask it again.
      this.#verdict = NOT_RETRYABLE;
      return failure;
    }
    // The channel's adaptive throttle hears how the servers answered.
    this.bound.channel.attemptFailed(
      failure.code,
      this.endedBy !== undefined || attempt.channelReplaced || isOwnFailure(failure.code, failure.details),
    );
    const reach = attempt.reachOf(failure);
    // A DEADLINE_EXCEEDED may be retried only when the attempt's own timeout was the earlier one.
    this.#verdict = retryVerdict(
      this.retry,
      failure.code,
      failure.metadata,
      attempt.ownDeadline,
      failure.details,
      reach,
      this.prepared.policy.idempotent,
    );
    // gRFC A6: every failed attempt whose status could be retried takes a token, the last one
    // too. Not one that failed because the watchdog closed its stuck channel: it never reached
    // a server, and the calls queued there retry on the new channel. A retry the channel's retry
    // budget paid for that fails so counts against the budget paying for more.
    if (this.#verdict.retry && !attempt.channelReplaced) {
      this.bound.channel.attemptFailedRetryably(this.#paidByBudget);
      this.#tokensTaken++;
    }
    return failure;
  }

  /** After a failed first attempt: the retries; rejects with the caller's error. */
  async #retryAfter(error: unknown): Promise<unknown> {
    try {
      if (!(await this.#shouldRetry(error))) throw error;
      // The first attempt ran before, so `maxAttempts - 2` retries are left after this one.
      return await retryLoop(
        this.retry.maxAttempts - 2,
        () => this.#attempt(),
        (attemptError) => this.#shouldRetry(attemptError),
      );
    } catch (final) {
      throw this.finalError(final);
    }
  }

  /** One more attempt as a promise, for the retry loop. */
  #attempt(): Promise<unknown> {
    return new Promise((resolve, reject) => {
      this.#waiter = { resolve, reject };
      this.#next();
    });
  }

  /**
   * After a failed attempt: whether to try again (see `decideRetry`), after sleeping the
   * backoff. A refusal by retry throttling is counted; a retry is counted and reported, and a
   * retry the channel's retry budget paid for is noted: its token comes back if it succeeds.
   */
  async #shouldRetry(error: unknown): Promise<boolean> {
    if (!(error instanceof StatusError)) return false;
    const { channel, pool, method } = this.bound;
    const decision = decideRetry(this.retry, this.#verdict, {
      attempts: this.attempts,
      ended: this.endedBy !== undefined,
      poolOpen: pool.isOpen,
      budgetAllows: channel.allowsRetry,
      msLeft: this.prepared.deadline - Date.now(),
      lastAttemptMs: this.#lastAttemptMs,
      random: Math.random,
    });
    if (!decision.retry) {
      if (decision.reason === 'throttled') channel.retryThrottled();
      return false;
    }
    this.#paidByBudget = channel.retryAdmitted();
    channel.retryStarted();
    if (pool.onRetry.hasListeners) {
      pool.onRetry.emit({
        target: channel.target,
        method: method.path,
        attempt: this.attempts,
        code: error.code,
        details: error.details,
        delayMs: decision.delayMs,
        pushback: decision.pushback,
        callId: this.observer?.callId ?? 0,
      });
    }
    if (decision.delayMs > 0) {
      const sleptFrom = performance.now();
      await (this.backoff ??= new BackoffSleep()).sleep(decision.delayMs);
      this.observer?.slept(performance.now() - sleptFrom);
      // A sleep that ran late (a busy event loop) may leave no time for the attempt: the call
      // then ends with its last real failure rather than a DEADLINE_EXCEEDED of its own making.
      if (Date.now() >= this.prepared.deadline) return false;
    }
    return this.endedBy === undefined && pool.isOpen;
  }

  /** The call ended: its circuits hear its outcome (once). */
  protected settleCircuits(succeeded: boolean): void {
    this.#circuits?.settle(succeeded);
  }

  // ---- errors ----

  /** A StatusError for this call from a status, recorded as the current attempt's error. */
  failureOf(grpcStatus: GrpcStatus, cause: unknown): StatusError {
    return this.#failure(grpcStatus, cause);
  }

  #failure(grpcStatus: GrpcStatus, cause: unknown): StatusError {
    return this.#callErrors().fromStatus(grpcStatus, cause, this.attempts);
  }

  /** The CANCELLED error of a call we ended, replacing the attempt's own CANCELLED (`cause`). */
  protected cancelledError(details: string, cause: unknown): StatusError {
    return this.#callErrors().cancelled(details, cause, this.attempts);
  }

  #callErrors(): CallErrors {
    return (this.#errors ??= new CallErrors(this.bound.method.path, this.bound.channel.target));
  }
}
