import { status, type Metadata } from '@grpc/grpc-js';
import pRetry from 'p-retry';
import { breakerOf, type BoundMethod } from './bound-method.js';
import type { PreparedCall } from './call-options.js';
import { markInconclusive } from './circuit-breaker.js';
import { CircuitOpenError, StatusError } from './errors.js';
import type { InFlight } from './pooled-channel.js';
import { backoffDelayMs, retryVerdict, type ResolvedRetry, type RetryVerdict } from './retry-policy.js';

/** The grpc-js call options of one attempt: its deadline (always finite). */
export interface AttemptOptions {
  deadline: number;
}

/** A started grpc-js call: what `close()`, an abort or an early exit cancels. */
export interface Cancellable {
  cancel(): void;
}

/** Reports an attempt's outcome once: `(null, value)` on success, `(error)` on failure. */
export type Done<T = unknown> = (error: unknown, value?: T) => void;

/**
 * Starts one attempt on the wire and returns its cancel function. `done` is called once the
 * attempt has succeeded far enough not to be retried (unary: the response; a server stream: its
 * first message) or has failed; `outcome` once its final outcome is known (a stream: when it
 * ends), for the breaker. A unary sender calls both with the same arguments.
 */
export type Sender<T> = (options: AttemptOptions, metadata: Metadata, done: Done<T>, outcome: Done) => Cancellable;

/** A grpc-js status, as the status event and ServiceError carry it. */
export interface GrpcStatus {
  code: number;
  details: string;
  metadata?: Metadata | undefined;
}

/**
 * Why a call was ended from our side, when it was. 'consumer': a stream's reader left early;
 * 'source': a client or bidi stream's request source threw.
 */
type EndedBy = 'signal' | 'parent' | 'close' | 'consumer' | 'source';

/**
 * The life of one call, whatever its shape: admission, its place in the channel's in-flight
 * set, the listeners on the caller's signal and on the parent call, the attempts (through the
 * breaker, retried by the policy), and the error the caller finally sees. The first attempt
 * runs directly; when it fails with a status the policy retries, p-retry drives the remaining
 * attempts, with our own backoff (full jitter, server pushback, the call's deadline) run from its
 * `shouldRetry` hook.
 */
export class CallRun implements InFlight {
  /** The attempt on the wire, while one runs. */
  #running: Cancellable | undefined;
  #endedBy: EndedBy | undefined;
  #graceMs = 0;
  /** Ends the current backoff sleep early. */
  #wake: (() => void) | undefined;
  #attempts = 0;
  /** Errors of the attempts so far; allocated on the first failure only (healthy calls have none). */
  #errors: StatusError[] | undefined;
  /** How long the last attempt took, in ms: the estimate of what another one needs. */
  #lastAttemptMs = 0;
  /** Whether the last failed attempt may be retried, by its status alone. */
  #verdict: RetryVerdict = NOT_RETRYABLE;
  #started = false;
  #ended = false;
  #onParentCancelled: (() => void) | undefined;

  constructor(
    readonly bound: BoundMethod,
    readonly prepared: PreparedCall,
    readonly retry: ResolvedRetry,
  ) {}

  /** Whether the call was ended from our side (abort, parent, close, a stream's reader or source). */
  get isEnded(): boolean {
    return this.#endedBy !== undefined;
  }

  /** Counts the call as started and in flight, and listens for its abort and its parent. */
  begin(): void {
    const { channel, core } = this.bound;
    this.#started = true;
    channel.started++;
    core.track(channel, this);
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
  finish(succeeded: boolean): void {
    if (!this.#started || this.#ended) return;
    this.#ended = true;
    const { channel, core } = this.bound;
    if (succeeded || this.#endedBy === 'consumer') channel.succeeded++;
    else channel.failed++;
    this.prepared.signal?.removeEventListener('abort', this);
    if (this.#onParentCancelled !== undefined) this.prepared.parent?.removeListener('cancelled', this.#onParentCancelled);
    core.untrack(channel, this);
  }

  /**
   * A unary call's attempts, settled into one promise. The healthy path allocates as little as it
   * can: no async frame and no promise per attempt; the retry path below is taken on failure only.
   */
  unary<T>(send: Sender<T>): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this.begin();
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
            this.finish(false);
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
    try {
      return await this.#attempt(send);
    } catch (error) {
      return this.#retryAfter(error, send);
    }
  }

  /** After a failed first attempt: the retries, driven by p-retry; rejects with the caller's error. */
  async #retryAfter<T>(error: unknown, send: Sender<T>): Promise<T> {
    try {
      if (!(await this.#shouldRetry(error))) throw error;
      return await pRetry(() => this.#attempt(send), {
        // p-retry's own defaults (10 retries, 1 s doubling delay without jitter, every error
        // retried) are wrong for gRPC: it only counts and loops here. The first attempt ran
        // before, so it has `maxAttempts - 2` retries left; `shouldRetry` decides and sleeps.
        retries: this.retry.maxAttempts - 2,
        minTimeout: 0,
        factor: 1,
        randomize: false,
        shouldRetry: ({ error: attemptError }) => this.#shouldRetry(attemptError),
      });
    } catch (final) {
      throw this.finalError(final);
    }
  }

  /** The abort listener (an EventListener object, so no closure is allocated per call). */
  handleEvent(): void {
    this.#end('signal');
  }

  cancelForClose(graceMs: number): void {
    this.#graceMs = graceMs;
    this.#end('close');
  }

  poolClosing(): void {
    // A call waiting to retry settles at once with its last error: no new attempt can start.
    this.#wake?.();
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
    this.#wake?.();
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
    const breaker = breakerOf(this.bound);
    const ticket = breaker === undefined ? true : breaker.begin();
    if (ticket === false) {
      // Never retried, never on the network; the last real failure, if any, is its cause.
      const { method, channel } = this.bound;
      done(new CircuitOpenError({ method: method.path, target: channel.target, nextProbeAt: breaker!.nextProbeAt, cause: this.#errors?.at(-1) }));
      return;
    }
    const attempt = ++this.#attempts;
    const { deadline } = this.prepared;
    const perAttempt = this.retry.perAttemptTimeoutMs;
    const startedAt = Date.now();
    const attemptDeadline = perAttempt !== undefined && startedAt + perAttempt < deadline ? startedAt + perAttempt : deadline;
    const metadata = attempt === 1 ? this.prepared.metadata : retryMetadata(this.prepared.metadata, attempt - 1);
    // The grpc-js channel this attempt runs on: the connect watchdog may replace it meanwhile.
    const { channel } = this.bound;
    const grpcChannel = channel.channel;
    const onDone: Done<T> = (error, value) => {
      if (error === null) {
        this.bound.channel.throttle?.onSuccess();
        done(null, value);
        return;
      }
      this.#lastAttemptMs = Date.now() - startedAt;
      done(this.#attemptFailed(error, attemptDeadline < deadline, channel.channel !== grpcChannel));
    };
    let running: Cancellable | undefined;
    const onOutcome: Done = (error) => {
      // The attempt is over (a stream's ends after its first message): nothing left to cancel.
      if (this.#running === running) this.#running = undefined;
      // Ended from our side (abort, parent, close, the reader left), or failed because the
      // connect watchdog replaced its channel under it: says nothing about the backend's
      // health, so the breaker counts it neither way. (A burst of calls queued on a stuck
      // channel would otherwise open the circuit just as the new channel could serve them.)
      if (error !== null && typeof error === 'object' && (this.#endedBy !== undefined || channel.channel !== grpcChannel)) {
        markInconclusive(error as object);
      }
      if (ticket !== true) ticket(error);
      else breaker?.record(error, Date.now() - startedAt);
    };
    try {
      running = send({ deadline: attemptDeadline }, metadata, onDone, onOutcome);
      this.#running = running;
    } catch (error) {
      // grpc-js throws synchronously when its channel is already closed: never retried.
      onOutcome(error);
      this.#verdict = NOT_RETRYABLE;
      done(this.#statusError({ code: status.UNAVAILABLE, details: error instanceof Error ? error.message : String(error) }, error));
    }
  }

  /**
   * Turns an attempt's failure into a StatusError and records what it means for retries (and,
   * marked inconclusive, for the breaker when we ended it ourselves).
   */
  #attemptFailed(error: unknown, hadOwnDeadline: boolean, channelReplaced: boolean): unknown {
    if (!isGrpcStatus(error)) return error;
    const failure = error instanceof StatusError ? error : this.#statusError(error, error);
    // A DEADLINE_EXCEEDED may be retried only when the attempt's own timeout was the earlier one.
    this.#verdict = retryVerdict(this.retry, failure.code, failure.metadata, hadOwnDeadline, failure.details);
    // gRFC A6: every failed attempt whose status could be retried takes a token, the last one
    // too. Not one that failed because the watchdog closed its stuck channel: it never reached
    // a server, and the calls queued there retry on the new channel.
    if (this.#verdict.retry && !channelReplaced) this.bound.channel.throttle?.onRetryableFailure();
    return failure;
  }

  /** A StatusError for this call from a status, recorded as this attempt's error. */
  failureOf(grpcStatus: GrpcStatus, cause: unknown): StatusError {
    return this.#statusError(grpcStatus, cause);
  }

  #statusError(grpcStatus: GrpcStatus, cause: unknown): StatusError {
    const errors = (this.#errors ??= []);
    const error = new StatusError({
      code: grpcStatus.code,
      details: grpcStatus.details,
      metadata: grpcStatus.metadata,
      method: this.bound.method.path,
      target: this.bound.channel.target,
      attempts: this.#attempts,
      previousAttempts: errors.slice(),
      cause,
    });
    errors.push(error);
    return error;
  }

  /**
   * After a failed attempt: whether to try again, after sleeping the backoff. No when the status
   * is not retryable, attempts are used up, the channel's retry budget is spent, the pool is
   * closing, the call was ended, or the call's deadline cannot fit the backoff plus another
   * attempt as long as the last one.
   */
  async #shouldRetry(error: unknown): Promise<boolean> {
    if (!(error instanceof StatusError) || this.#endedBy !== undefined) return false;
    const { channel, core, method } = this.bound;
    const verdict = this.#verdict;
    if (!verdict.retry) return false;
    if (this.#attempts >= this.retry.maxAttempts || !core.isOpen) return false;
    if (channel.throttle !== undefined && !channel.throttle.allowsRetry) {
      channel.throttledRetries++;
      return false;
    }
    const delayMs = verdict.pushbackMs ?? backoffDelayMs(this.retry, this.#attempts, Math.random);
    const nextAttemptMs = Math.min(this.#lastAttemptMs, this.retry.perAttemptTimeoutMs ?? Number.POSITIVE_INFINITY);
    if (Date.now() + delayMs + nextAttemptMs >= this.prepared.deadline) return false;
    channel.retries++;
    if (core.onRetry.hasListeners) {
      core.onRetry.emit({
        target: channel.target,
        method: method.path,
        attempt: this.#attempts,
        code: error.code,
        details: error.details,
        delayMs,
        pushback: verdict.pushbackMs !== undefined,
      });
    }
    if (delayMs > 0) await this.#sleep(delayMs);
    return this.#endedBy === undefined && core.isOpen;
  }

  /**
   * The backoff. Its timer is cleared the moment the call is aborted, its parent cancelled or
   * the pool closed; until then it keeps the process alive, as a grpc-js call in flight does:
   * an unref()ed backoff would let a process whose only work is this call exit in mid-call.
   */
  #sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(wake, ms);
      const self = this;
      function wake(): void {
        clearTimeout(timer);
        self.#wake = undefined;
        resolve();
      }
      this.#wake = wake;
    });
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
        return this.#cancelled(`cancelled by ChannelPool.close(): still running after graceMs ${this.#graceMs} ms`, error);
      case 'parent':
        return this.#cancelled('cancelled because its parent call was cancelled', error);
      default:
        return error;
    }
  }

  #cancelled(details: string, cause: unknown): StatusError {
    // The attempt we cancelled failed with grpc-js's own CANCELLED: this error replaces it.
    const errors = this.#errors ?? [];
    const previous = errors.at(-1) === cause ? errors.slice(0, -1) : errors.slice();
    const { method, channel } = this.bound;
    return new StatusError({ code: status.CANCELLED, details, method: method.path, target: channel.target, attempts: this.#attempts, previousAttempts: previous, cause });
  }
}

const NOT_RETRYABLE: RetryVerdict = Object.freeze({ retry: false, reason: 'not-retryable' });


function isGrpcStatus(value: unknown): value is GrpcStatus & object {
  return typeof value === 'object' && value !== null && typeof (value as GrpcStatus).code === 'number';
}

/** Request metadata for a retry: grpc's `grpc-previous-rpc-attempts` header added to a copy. */
function retryMetadata(metadata: Metadata, previousAttempts: number): Metadata {
  const copy = metadata.clone();
  copy.set('grpc-previous-rpc-attempts', String(previousAttempts));
  return copy;
}
