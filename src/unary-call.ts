import { status, type ClientUnaryCall, type Metadata, type ServiceError } from '@grpc/grpc-js';
import pRetry from 'p-retry';
import { prepareCall, type PreparedCall } from './call-options.js';
import { CircuitOpenError, optionError, PoolClosedError, StatusError } from './errors.js';
import { markInconclusive, type Breaker, type BreakerOptions } from './circuit-breaker.js';
import type { Resolved } from './with-defined.js';
import type { CallOptions, ResolvedPolicy } from './options.js';
import type { PoolCore } from './pool-core.js';
import type { InFlight, PooledChannel } from './pooled-channel.js';
import { backoffDelayMs, resolveRetry, retryVerdict, type ResolvedRetry, type RetryVerdict } from './retry-policy.js';
import type { MethodInfo } from './service-methods.js';

/** One method of one client, bound to its channel, with its policy resolved down to the method level. */
export interface BoundMethod {
  readonly core: PoolCore;
  readonly channel: PooledChannel;
  readonly method: MethodInfo;
  readonly policy: ResolvedPolicy;
  /** `policy.retry` resolved for the method's idempotency and its channel's retry owner. */
  readonly retry: ResolvedRetry;
  /** Breaker options for this method, or `false` for none. */
  readonly breakerOptions: Resolved<BreakerOptions> | false;
  /** The method's breaker (its channel's, or its own with `scope: 'method'`), made on first use. */
  breaker?: Breaker;
}

/** The circuit breaker every attempt of this method passes, if any. */
function breakerOf(bound: BoundMethod): Breaker | undefined {
  if (bound.breakerOptions === false) return undefined;
  return (bound.breaker ??= bound.channel.breakerFor(bound.method.path, bound.breakerOptions));
}

/** The retry policy of a call: the method's, unless the call changes retry or idempotency. */
export function retryFor(channel: PooledChannel, policy: ResolvedPolicy): ResolvedRetry {
  // One retry owner: a channel whose service config gives grpc-js a retry policy keeps ours off.
  return resolveRetry(channel.grpcOwnsRetries ? false : policy.retry, policy.idempotent);
}

/** Why a call was ended from our side, when it was. */
type EndedBy = 'signal' | 'parent' | 'close';

/**
 * One unary call: its attempts, the listeners on the caller's signal and on the parent call,
 * and its place in the channel's in-flight set. The first attempt runs directly; when it fails
 * with a status the policy retries, p-retry drives the remaining attempts, with our own backoff
 * (full jitter, server pushback, the call's deadline) run from its `shouldRetry` hook.
 */
class UnaryCall implements InFlight {
  #grpcCall: ClientUnaryCall | undefined;
  #endedBy: EndedBy | undefined;
  #graceMs = 0;
  /** Ends the current backoff sleep early. */
  #wake: (() => void) | undefined;
  #attempts = 0;
  readonly #errors: StatusError[] = [];
  /** How long the last attempt took, in ms: the estimate of what another one needs. */
  #lastAttemptMs = 0;
  /** Whether the last failed attempt may be retried, by its status alone. */
  #verdict: RetryVerdict = { retry: false, reason: 'not-retryable' };

  constructor(
    readonly bound: BoundMethod,
    readonly prepared: PreparedCall,
    readonly retry: ResolvedRetry,
    readonly request: unknown,
  ) {}

  async run(): Promise<unknown> {
    const { channel, core } = this.bound;
    const { signal, parent } = this.prepared;
    channel.started++;
    core.track(channel, this);
    signal?.addEventListener('abort', this);
    parent?.once('cancelled', this.#onParentCancelled);
    try {
      let response: unknown;
      try {
        response = await this.#attempt();
      } catch (error) {
        if (!(await this.#shouldRetry(error))) throw error;
        response = await pRetry(() => this.#attempt(), {
          // p-retry's own defaults (10 retries, 1 s doubling delay without jitter, every error
          // retried) are wrong for gRPC: it only counts and loops here. The first attempt ran
          // above, so it has `maxAttempts - 2` retries left; `shouldRetry` decides and sleeps.
          retries: this.retry.maxAttempts - 2,
          minTimeout: 0,
          factor: 1,
          randomize: false,
          shouldRetry: ({ error: attemptError }) => this.#shouldRetry(attemptError),
        });
      }
      channel.succeeded++;
      return response;
    } catch (error) {
      channel.failed++;
      throw this.#finalError(error);
    } finally {
      signal?.removeEventListener('abort', this);
      parent?.removeListener('cancelled', this.#onParentCancelled);
      core.untrack(channel, this);
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

  #onParentCancelled = (): void => {
    this.#end('parent');
  };

  #end(by: EndedBy): void {
    this.#endedBy ??= by;
    // grpc-js answers cancel() by calling the attempt's callback with CANCELLED.
    this.#grpcCall?.cancel();
    this.#wake?.();
  }

  /** One attempt, through the breaker when there is one. */
  #attempt(): Promise<unknown> {
    const breaker = breakerOf(this.bound);
    if (breaker === undefined) return this.#send();
    if (!breaker.admits()) {
      // Never retried, never on the network; the last real failure, if any, is its cause.
      const { method, channel } = this.bound;
      return Promise.reject(new CircuitOpenError({ method: method.path, target: channel.target, nextProbeAt: breaker.nextProbeAt, cause: this.#errors.at(-1) }));
    }
    return breaker.run(() => this.#send());
  }

  #send(): Promise<unknown> {
    const { channel, method } = this.bound;
    const attempt = ++this.#attempts;
    const { deadline } = this.prepared;
    const perAttempt = this.retry.perAttemptTimeoutMs;
    const now = Date.now();
    const attemptDeadline = perAttempt !== undefined && now + perAttempt < deadline ? now + perAttempt : deadline;
    const metadata = attempt === 1 ? this.prepared.metadata : retryMetadata(this.prepared.metadata, attempt - 1);
    const startedAt = performance.now();
    return new Promise((resolve, reject) => {
      const onComplete = (error: ServiceError | null, response?: unknown): void => {
        this.#grpcCall = undefined;
        this.#lastAttemptMs = performance.now() - startedAt;
        if (error === null) {
          channel.throttle?.onSuccess();
          resolve(response);
        } else {
          const failure = this.#statusError(error.code, error.details ?? error.message, error.metadata, error);
          // Ended from our side (abort, parent, close): says nothing about the backend's health.
          if (this.#endedBy !== undefined) markInconclusive(failure);
          // A DEADLINE_EXCEEDED may be retried only when the attempt's own timeout was the earlier one.
          this.#verdict = retryVerdict(this.retry, failure.code, failure.metadata, attemptDeadline < deadline);
          // gRFC A6: every failed attempt whose status could be retried takes a token, the last one too.
          if (this.#verdict.retry) channel.throttle?.onRetryableFailure();
          reject(failure);
        }
      };
      try {
        this.#grpcCall = channel.client.makeUnaryRequest(
          method.path,
          method.serialize,
          method.deserialize,
          this.request,
          metadata,
          { deadline: attemptDeadline },
          onComplete,
        );
      } catch (error) {
        // grpc-js throws synchronously when its channel is already closed: never retried.
        this.#verdict = { retry: false, reason: 'not-retryable' };
        reject(this.#statusError(status.UNAVAILABLE, error instanceof Error ? error.message : String(error), undefined, error));
      }
    });
  }

  #statusError(code: number | undefined, details: string, metadata: Metadata | undefined, cause: unknown): StatusError {
    const error = new StatusError({
      code: typeof code === 'number' ? code : status.UNKNOWN,
      details,
      metadata,
      method: this.bound.method.path,
      target: this.bound.channel.target,
      attempts: this.#attempts,
      previousAttempts: this.#errors.slice(),
      cause,
    });
    this.#errors.push(error);
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

  #finalError(error: unknown): unknown {
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
    const previous = this.#errors.at(-1) === cause ? this.#errors.slice(0, -1) : this.#errors.slice();
    const { method, channel } = this.bound;
    return new StatusError({ code: status.CANCELLED, details, method: method.path, target: channel.target, attempts: this.#attempts, previousAttempts: previous, cause });
  }
}

/** Request metadata for a retry: grpc's `grpc-previous-rpc-attempts` header added to a copy. */
function retryMetadata(metadata: Metadata, previousAttempts: number): Metadata {
  const copy = metadata.clone();
  copy.set('grpc-previous-rpc-attempts', String(previousAttempts));
  return copy;
}

/**
 * Runs one unary call: admission, validation, deadline, then the attempts. Never throws: every
 * outcome is a settled promise, with a response or an error carrying a gRPC code (a caller's
 * abort rejects with `signal.reason`).
 */
export function callUnary(bound: BoundMethod, request: unknown, options: CallOptions | undefined): Promise<unknown> {
  if (!bound.core.isOpen) return Promise.reject(new PoolClosedError(bound.method.path));
  let prepared: PreparedCall;
  try {
    checkRequest(request);
    prepared = prepareCall(bound.policy, options, Date.now());
  } catch (error) {
    return Promise.reject(error);
  }
  if (prepared.signal?.aborted) return Promise.reject(prepared.signal.reason);
  if (prepared.parent?.cancelled) {
    return Promise.reject(
      new StatusError({
        code: status.CANCELLED,
        details: 'not started: its parent call was already cancelled',
        method: bound.method.path,
        target: bound.channel.target,
      }),
    );
  }
  const retry = prepared.policy === bound.policy ? bound.retry : retryFor(bound.channel, prepared.policy);
  return new UnaryCall(bound, prepared, retry, request).run();
}

function checkRequest(request: unknown): void {
  if (typeof request !== 'object' || request === null) {
    throw optionError('type', 'request', 'a request message object', request);
  }
}
