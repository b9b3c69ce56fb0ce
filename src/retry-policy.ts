import { status, type Metadata } from '@grpc/grpc-js';
import type { Resolved } from './with-defined.js';
import { checkDurationMs, MAX_TIMER_MS } from './deadline.js';
import { checkOptionsObject, describeValue, optionError, statusName } from './errors.js';
import { isLocalMessageFailure } from './local-failures.js';
import { withDefined } from './with-defined.js';

/**
 * How failed calls are retried. Set on the pool, a client, `methods[name]` or a call; `false`
 * turns retries off at that level. Fields cascade one by one like the other policy options.
 */
export interface RetryOptions {
  /**
   * Attempts in all, the first one included: 1 means no retry. Integer from 1 to 10.
   * Default: 3.
   */
  maxAttempts?: number | undefined;
  /**
   * Upper bound of the first backoff, in ms. The n-th retry waits a random time between 0 and
   * `min(maxDelayMs, initialDelayMs * 2^(n-1))` ("full jitter"). Default: 100.
   */
  initialDelayMs?: number | undefined;
  /** Cap on any backoff, in ms. Default: 2000. */
  maxDelayMs?: number | undefined;
  /**
   * Status codes retried for every method. Default: `[status.UNAVAILABLE]`. Idempotent methods
   * also retry ABORTED, INTERNAL, UNKNOWN and (with `perAttemptTimeoutMs`) DEADLINE_EXCEEDED.
   * Allowed: UNKNOWN, DEADLINE_EXCEEDED, ABORTED, INTERNAL, UNAVAILABLE, DATA_LOSS. Codes that
   * mean the request itself is wrong (INVALID_ARGUMENT, NOT_FOUND, ...) or that the caller
   * cancelled (CANCELLED) are never retried and are refused here. RESOURCE_EXHAUSTED is not
   * listed: it is retried when, and only when, the server sends `grpc-retry-pushback-ms`.
   */
  retryableCodes?: readonly number[] | undefined;
  /**
   * Time limit of each attempt, in ms; the call's deadline still bounds them all. Each attempt
   * sends `min(perAttemptTimeoutMs, time left)` as its deadline. Default: none (each attempt may
   * use all the time left).
   */
  perAttemptTimeoutMs?: number | undefined;
}

/** Retry options with every level applied; `maxAttempts` 1 means retries are off. */
export interface ResolvedRetry {
  maxAttempts: number;
  initialDelayMs: number;
  maxDelayMs: number;
  retryableCodes: ReadonlySet<number>;
  perAttemptTimeoutMs: number | undefined;
}

export const RETRY_DEFAULTS = {
  maxAttempts: 3,
  initialDelayMs: 100,
  maxDelayMs: 2_000,
  retryableCodes: [status.UNAVAILABLE],
} as const satisfies Resolved<Omit<RetryOptions, 'perAttemptTimeoutMs'>>;

export const MAX_ATTEMPTS_LIMIT = 10;

/** Codes a server may send for a transient condition: the only ones a user may list. */
const RETRYABLE_CANDIDATES: ReadonlySet<number> = new Set([
  status.UNKNOWN,
  status.DEADLINE_EXCEEDED,
  status.ABORTED,
  status.INTERNAL,
  status.UNAVAILABLE,
  status.DATA_LOSS,
]);

/** Added for idempotent methods: the request may or may not have run, and running it again is safe. */
const IDEMPOTENT_EXTRA = [status.ABORTED, status.INTERNAL, status.UNKNOWN, status.DEADLINE_EXCEEDED] as const;

const RETRY_KEYS: readonly string[] = ['maxAttempts', 'initialDelayMs', 'maxDelayMs', 'retryableCodes', 'perAttemptTimeoutMs'];

export const NO_RETRY: ResolvedRetry = Object.freeze({
  maxAttempts: 1,
  initialDelayMs: 0,
  maxDelayMs: 0,
  retryableCodes: new Set<number>(),
  perAttemptTimeoutMs: undefined,
});

/** Validates one level's `retry` option; returns it unchanged (an object or `false`). */
export function checkRetryOptions(option: string, value: unknown): RetryOptions | false | undefined {
  if (value === undefined || value === false) return value;
  checkOptionsObject(option, value, RETRY_KEYS, `false or an object { ${RETRY_KEYS.join(', ')} }`);
  const retry = value as RetryOptions;
  if (retry.maxAttempts !== undefined) {
    const n = retry.maxAttempts;
    if (typeof n !== 'number' || !Number.isInteger(n) || n < 1 || n > MAX_ATTEMPTS_LIMIT) {
      throw optionError(typeof n === 'number' ? 'range' : 'type', `${option}.maxAttempts`, `an integer from 1 to ${MAX_ATTEMPTS_LIMIT} (attempts in all, the first included)`, n);
    }
  }
  for (const key of ['initialDelayMs', 'maxDelayMs'] as const) {
    const v = retry[key];
    if (v === undefined) continue;
    if (typeof v !== 'number' || Number.isNaN(v)) throw optionError('type', `${option}.${key}`, 'a number of milliseconds', v);
    if (v < 0 || v > MAX_TIMER_MS) throw optionError('range', `${option}.${key}`, `a finite number of milliseconds >= 0 and <= ${MAX_TIMER_MS}`, v);
  }
  if (retry.perAttemptTimeoutMs !== undefined) checkDurationMs(`${option}.perAttemptTimeoutMs`, retry.perAttemptTimeoutMs);
  if (retry.retryableCodes !== undefined) {
    if (!Array.isArray(retry.retryableCodes)) {
      throw optionError('type', `${option}.retryableCodes`, 'an array of numeric gRPC status codes', retry.retryableCodes);
    }
    for (const code of retry.retryableCodes) {
      if (!RETRYABLE_CANDIDATES.has(code as number)) {
        const allowed = [...RETRYABLE_CANDIDATES].map((c) => `${statusName(c)} (${c})`).join(', ');
        throw optionError('range', `${option}.retryableCodes`, `made of codes a server sends for transient failures: ${allowed}`, code, typeof code === 'number' ? `${statusName(code)} (${code})` : describeValue(code));
      }
    }
  }
  return retry;
}

/**
 * Applies one level's `retry` over the resolved one above it. `false` turns retries off; an
 * object turns them on (from the defaults if an upper level had turned them off) and overrides
 * the fields it sets.
 */
export function mergeRetry(base: RetryOptions | false, over: RetryOptions | false | undefined): RetryOptions | false {
  if (over === undefined) return base;
  if (over === false) return false;
  return withDefined(base === false ? {} : base, over);
}

/** Turns the cascaded retry options into what the call loop reads, for an idempotent method or not. */
export function resolveRetry(retry: RetryOptions | false, idempotent: boolean): ResolvedRetry {
  if (retry === false) return NO_RETRY;
  const codes = new Set<number>(retry.retryableCodes ?? RETRY_DEFAULTS.retryableCodes);
  if (idempotent) for (const code of IDEMPOTENT_EXTRA) codes.add(code);
  const maxAttempts = retry.maxAttempts ?? RETRY_DEFAULTS.maxAttempts;
  return {
    maxAttempts,
    initialDelayMs: retry.initialDelayMs ?? RETRY_DEFAULTS.initialDelayMs,
    maxDelayMs: retry.maxDelayMs ?? RETRY_DEFAULTS.maxDelayMs,
    retryableCodes: codes,
    perAttemptTimeoutMs: retry.perAttemptTimeoutMs,
  };
}

/** `grpc-retry-pushback-ms` from trailers: ms to wait, `'stop'` (negative or malformed), or undefined. */
export function readPushback(metadata: Metadata | undefined): number | 'stop' | undefined {
  const values = metadata?.get('grpc-retry-pushback-ms');
  if (values === undefined || values.length === 0) return undefined;
  const raw = values[0];
  // gRFC A6: a negative or unparseable value means "do not retry".
  if (typeof raw !== 'string' || !/^\d{1,10}$/.test(raw.trim())) return 'stop';
  return Math.min(Number(raw.trim()), MAX_TIMER_MS);
}

/** What the retry loop does after a failed attempt. */
export type RetryVerdict =
  | { retry: false; reason: 'not-retryable' | 'pushback-stop' }
  | { retry: true; pushbackMs: number | undefined };

/**
 * Whether a failed attempt's status may be retried under `policy`. `attemptTimedOut` says the
 * attempt ended on its own per-attempt deadline, earlier than the call's.
 */
export function retryVerdict(
  policy: ResolvedRetry,
  code: number,
  trailers: Metadata | undefined,
  attemptTimedOut: boolean,
  details = '',
): RetryVerdict {
  // Retries off: nothing is retryable, so nothing takes a throttling token either. A message
  // grpc-js itself could not send or read would fail the same way again.
  if (policy.maxAttempts <= 1 || isLocalMessageFailure(code, details)) return { retry: false, reason: 'not-retryable' };
  const pushback = readPushback(trailers);
  if (pushback === 'stop') return { retry: false, reason: 'pushback-stop' };
  let retryable = policy.retryableCodes.has(code);
  // RESOURCE_EXHAUSTED is retried only when the server says when: otherwise it is as likely to
  // be a local limit (a message over the size limit) as an overload that retries would worsen.
  if (code === status.RESOURCE_EXHAUSTED) retryable = pushback !== undefined;
  // DEADLINE_EXCEEDED is retried only for an attempt that hit its own per-attempt timeout.
  if (code === status.DEADLINE_EXCEEDED) retryable &&= attemptTimedOut;
  return retryable ? { retry: true, pushbackMs: pushback } : { retry: false, reason: 'not-retryable' };
}

/**
 * The backoff before retry number `retry` (1 for the first retry): a random time between 0 and
 * `min(maxDelayMs, initialDelayMs * 2^(retry-1))`. `random` returns [0, 1).
 */
export function backoffDelayMs(policy: ResolvedRetry, retry: number, random: () => number): number {
  const ceiling = Math.min(policy.maxDelayMs, policy.initialDelayMs * 2 ** (retry - 1));
  return Math.floor(random() * ceiling);
}

/**
 * Whether a `grpc.service_config` channel option gives grpc-js a retry or hedging policy. Then
 * grpc-js owns retries on that channel and ours stay off: two layers would multiply attempts.
 */
export function serviceConfigHasRetries(serviceConfig: unknown): boolean {
  if (typeof serviceConfig !== 'string') return false;
  try {
    const parsed = JSON.parse(serviceConfig) as { methodConfig?: Array<Record<string, unknown>> };
    return (parsed.methodConfig ?? []).some((m) => m.retryPolicy !== undefined || m.hedgingPolicy !== undefined);
  } catch {
    // grpc-js rejects a malformed service config itself when it builds the channel.
    return false;
  }
}
