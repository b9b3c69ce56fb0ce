import { optionError } from '../core/option-error.js';
import { checkMs, keysOf, mergeSwitchable } from './check-helpers.js';
import { checkRetryOptions, type RetryOptions } from './retry-options.js';

// The cascading policy (pool, client, `methods[name]`, call): its type, its defaults, its check,
// and one level applied over the level above it.

/**
 * Policy options that cascade: pool defaults, then client options, then `methods[name]`, then
 * the call. The most specific level that sets a field wins.
 */
export interface PolicyOptions {
  /**
   * Time budget of a call in milliseconds, from the moment the method is called. Sent to the
   * server as the gRPC deadline (`grpc-timeout`), so every call has a finite deadline on the
   * wire. Finite, > 0, at most 2147483647. Default: 10000 (10 s).
   */
  deadlineMs?: number | undefined;
  /**
   * The method is safe to run more than once (a read, or a write keyed by an idempotency key).
   * Retries of idempotent methods cover more status codes (ABORTED, INTERNAL, UNKNOWN, and
   * DEADLINE_EXCEEDED of an attempt that hit `perAttemptTimeoutMs`). Default: false.
   */
  idempotent?: boolean | undefined;
  /**
   * How failed calls are retried, or `false` for never. Default: 3 attempts in all, for
   * UNAVAILABLE only (more codes for idempotent methods), full-jitter exponential backoff from
   * 100 ms up to 2 s, all within the call's deadline. See {@link RetryOptions}. Not applied on a
   * channel where grpc-js owns retries (an `xds:` target, whose mesh routes carry retry policies,
   * or a service config with a retry policy) unless its channel options set
   * `'grpc.enable_retries': 0`: never two retry layers.
   */
  retry?: RetryOptions | false | undefined;
}

/** What {@link PolicyOptions} resolve to once every level is applied. */
export interface ResolvedPolicy {
  deadlineMs: number;
  idempotent: boolean;
  retry: RetryOptions | false;
}

/** Defaults of the cascading policy (pool, client, method, call). */
export const POLICY_DEFAULTS = {
  deadlineMs: 10_000,
  idempotent: false,
  retry: {},
} as const satisfies ResolvedPolicy;

/** The keys of the cascading policy, known at every level. */
export const POLICY_KEYS = keysOf(POLICY_DEFAULTS);

/** Validates the cascading fields of one level and returns only those that are set. */
export function checkPolicy(prefix: string, options: PolicyOptions | undefined): PolicyOptions {
  const out: PolicyOptions = {};
  if (options === undefined) return out;
  if (options.deadlineMs !== undefined) out.deadlineMs = checkMs(`${prefix}deadlineMs`, options.deadlineMs);
  if (options.idempotent !== undefined) {
    if (typeof options.idempotent !== 'boolean') throw optionError('type', `${prefix}idempotent`, 'a boolean', options.idempotent);
    out.idempotent = options.idempotent;
  }
  const retry = checkRetryOptions(`${prefix}retry`, options.retry);
  if (retry !== undefined) out.retry = retry;
  return out;
}

/**
 * Applies one level of the cascading policy (pool, client, method, call) over the resolved one
 * above it, field by field: an unset field keeps the level above.
 */
export function mergePolicy(base: ResolvedPolicy, over: PolicyOptions): ResolvedPolicy {
  return {
    deadlineMs: over.deadlineMs ?? base.deadlineMs,
    idempotent: over.idempotent ?? base.idempotent,
    retry: mergeSwitchable(base.retry, over.retry),
  };
}
