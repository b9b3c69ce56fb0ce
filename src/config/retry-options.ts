import { status } from '@grpc/grpc-js';
import { statusName } from '../core/errors.js';
import { describeValue, optionError } from '../core/option-error.js';
import { RETRYABLE_CANDIDATES } from '../core/status-meaning.js';
import { checkMs, checkOptionsObject, keysOf, switchableExpected, type Resolved } from './check-helpers.js';

// The `retry` option: its type, its defaults, its check and the defaults applied. Which codes an
// idempotent method adds, and who owns retries on a channel, are the retry decision's
// (call/retry-decision.ts).

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

/** Defaults of `retry` (`perAttemptTimeoutMs` has none: an attempt may use all the time left). */
export const RETRY_DEFAULTS = {
  maxAttempts: 3,
  initialDelayMs: 100,
  maxDelayMs: 2_000,
  retryableCodes: [status.UNAVAILABLE],
} as const satisfies Resolved<Omit<RetryOptions, 'perAttemptTimeoutMs'>>;

/** Most attempts a `retry` policy may make, the first included. */
export const MAX_ATTEMPTS_LIMIT = 10;

/** The known keys of `retry`: those with a default, then the one without. */
export const RETRY_KEYS: ReadonlyArray<keyof RetryOptions> = [...keysOf(RETRY_DEFAULTS), 'perAttemptTimeoutMs'];

/** `retry` with the defaults applied: every field set but `perAttemptTimeoutMs`, which has none. */
export interface RetryWithDefaults extends Resolved<Omit<RetryOptions, 'perAttemptTimeoutMs'>> {
  perAttemptTimeoutMs: number | undefined;
}

/** Validates one level's `retry` option; returns it unchanged (an object or `false`). */
export function checkRetryOptions(option: string, value: unknown): RetryOptions | false | undefined {
  if (value === undefined || value === false) return value;
  checkOptionsObject(option, value, RETRY_KEYS, switchableExpected(RETRY_KEYS));
  const retry = value as RetryOptions;
  if (retry.maxAttempts !== undefined) {
    const n = retry.maxAttempts;
    if (typeof n !== 'number' || !Number.isInteger(n) || n < 1 || n > MAX_ATTEMPTS_LIMIT) {
      throw optionError(
        typeof n === 'number' ? 'range' : 'type',
        `${option}.maxAttempts`,
        `an integer from 1 to ${MAX_ATTEMPTS_LIMIT} (attempts in all, the first included)`,
        n,
      );
    }
  }
  for (const key of ['initialDelayMs', 'maxDelayMs'] as const) {
    if (retry[key] !== undefined) checkMs(`${option}.${key}`, retry[key], true);
  }
  if (retry.perAttemptTimeoutMs !== undefined) checkMs(`${option}.perAttemptTimeoutMs`, retry.perAttemptTimeoutMs);
  if (retry.retryableCodes !== undefined) {
    if (!Array.isArray(retry.retryableCodes)) {
      throw optionError('type', `${option}.retryableCodes`, 'an array of numeric gRPC status codes', retry.retryableCodes);
    }
    for (const code of retry.retryableCodes) {
      if (!RETRYABLE_CANDIDATES.has(code as number)) {
        const allowed = [...RETRYABLE_CANDIDATES].map((c) => `${statusName(c)} (${c})`).join(', ');
        throw optionError(
          'range',
          `${option}.retryableCodes`,
          `made of codes a server sends for transient failures: ${allowed}`,
          code,
          typeof code === 'number' ? `${statusName(code)} (${code})` : describeValue(code),
        );
      }
    }
  }
  return retry;
}

/** The cascaded `retry` option with the defaults applied to every field it leaves unset. */
export function retryWithDefaults(retry: RetryOptions): RetryWithDefaults {
  return {
    maxAttempts: retry.maxAttempts ?? RETRY_DEFAULTS.maxAttempts,
    initialDelayMs: retry.initialDelayMs ?? RETRY_DEFAULTS.initialDelayMs,
    maxDelayMs: retry.maxDelayMs ?? RETRY_DEFAULTS.maxDelayMs,
    retryableCodes: retry.retryableCodes ?? RETRY_DEFAULTS.retryableCodes,
    perAttemptTimeoutMs: retry.perAttemptTimeoutMs,
  };
}
