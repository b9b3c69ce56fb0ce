import { optionError } from '../core/option-error.js';
import { checkOptionsObject, keysOf, switchableExpected, type Resolved } from './check-helpers.js';

// The `retryThrottling` and `retryBudget` options: their types, their defaults, and their checks,
// which apply the defaults. The token bucket itself is in channel/retry-throttle.ts, the budget in
// channel/retry-budget.ts.

/**
 * Retry throttling per channel, as in gRPC's retry design (gRFC A6). A token bucket starts full
 * at `maxTokens`; every failed attempt with a retryable status takes 1 token, every successful
 * attempt gives back `tokenRatio` (and the tokens its call's earlier failed attempts took). While
 * the bucket holds `maxTokens / 2` tokens or fewer, a retry goes only if the channel's
 * `retryBudget` pays for it: under a total outage, calls cost one attempt each.
 */
export interface RetryThrottlingOptions {
  /** Bucket size, > 0 and <= 1000. Default: 10. */
  maxTokens?: number | undefined;
  /** Tokens returned per successful attempt, > 0 and <= 1. Default: 0.1. */
  tokenRatio?: number | undefined;
}

/** Defaults of `retryThrottling` (gRFC A6's example values). */
export const THROTTLE_DEFAULTS = {
  maxTokens: 10,
  tokenRatio: 0.1,
} as const satisfies Resolved<RetryThrottlingOptions>;

/** The known keys of `retryThrottling`. */
export const THROTTLE_KEYS = keysOf(THROTTLE_DEFAULTS);

/** Validates `retryThrottling` and applies its defaults; `false` turns throttling off. */
export function checkThrottlingOptions(option: string, value: unknown): Resolved<RetryThrottlingOptions> | false {
  if (value === false) return false;
  if (value === undefined) return THROTTLE_DEFAULTS;
  checkOptionsObject(option, value, THROTTLE_KEYS, switchableExpected(THROTTLE_KEYS));
  const { maxTokens = THROTTLE_DEFAULTS.maxTokens, tokenRatio = THROTTLE_DEFAULTS.tokenRatio } = value as RetryThrottlingOptions;
  if (typeof maxTokens !== 'number' || !(maxTokens > 0 && maxTokens <= 1000)) {
    throw optionError(typeof maxTokens === 'number' ? 'range' : 'type', `${option}.maxTokens`, 'a number > 0 and <= 1000', maxTokens);
  }
  if (typeof tokenRatio !== 'number' || !(tokenRatio > 0 && tokenRatio <= 1)) {
    throw optionError(typeof tokenRatio === 'number' ? 'range' : 'type', `${option}.tokenRatio`, 'a number > 0 and <= 1', tokenRatio);
  }
  return { maxTokens, tokenRatio };
}

// The `retryBudget` option: its type, its defaults, and its check. The budget itself is in
// channel/retry-budget.ts; how it sits beside the `retryThrottling` bucket, in
// channel/managed-channel.ts.

/**
 * A retry budget per channel, beside `retryThrottling`: a retry that the token bucket refuses
 * still goes when the budget holds a token, which it then takes. The budget is a share of the
 * traffic that succeeds, over a sliding window (the retry budgets of Finagle, linkerd and tower):
 * every call that succeeds deposits `retryPercent / 100` of a token, every retry the budget pays
 * for takes one, and a retry whose call then succeeds gives its token back; both count for
 * `ttlMs`. On top of that share, `minRetriesPerSec` retries per second (a reserve of
 * `minRetriesPerSec * ttlMs / 1000` tokens), counted only while a call succeeded within `ttlMs`.
 * And it pays only while its retries work: not while more of the retries it paid for failed
 * within `ttlMs` than succeeded in the last `ttlMs / 5`.
 *
 * So one sick endpoint among healthy ones cannot stop retries (they land on the healthy ones,
 * succeed, and cost nothing), while in a total outage the first retry the budget pays for fails
 * and it stops, leaving the bucket's few retries; after `ttlMs` without a success it is empty. With
 * `retryThrottling: false` retries are not limited at all, and this option has no effect.
 */
export interface RetryBudgetOptions {
  /** How long a deposit or a withdrawal counts, in ms: an integer from 1000 to 60000. Default: 10000 (10 s). */
  ttlMs?: number | undefined;
  /** Retries allowed per 100 successful calls within `ttlMs`, in percent: from 0 to 100. Default: 20. */
  retryPercent?: number | undefined;
  /**
   * Retries per second allowed on top of `retryPercent`, while a call succeeded within `ttlMs`
   * (for channels with little traffic): an integer from 0 to 1000. Default: 10.
   */
  minRetriesPerSec?: number | undefined;
}

/** Defaults of `retryBudget` (those of Finagle's and tower's retry budgets). */
export const BUDGET_DEFAULTS = {
  ttlMs: 10_000,
  retryPercent: 20,
  minRetriesPerSec: 10,
} as const satisfies Resolved<RetryBudgetOptions>;

/** The known keys of `retryBudget`. */
export const BUDGET_KEYS = keysOf(BUDGET_DEFAULTS);

/** Validates `retryBudget` and applies its defaults; `false` turns the budget off. */
export function checkBudgetOptions(option: string, value: unknown): Resolved<RetryBudgetOptions> | false {
  if (value === false) return false;
  if (value === undefined) return BUDGET_DEFAULTS;
  checkOptionsObject(option, value, BUDGET_KEYS, switchableExpected(BUDGET_KEYS));
  const {
    ttlMs = BUDGET_DEFAULTS.ttlMs,
    retryPercent = BUDGET_DEFAULTS.retryPercent,
    minRetriesPerSec = BUDGET_DEFAULTS.minRetriesPerSec,
  } = value as RetryBudgetOptions;
  if (typeof ttlMs !== 'number' || !(Number.isInteger(ttlMs) && ttlMs >= 1_000 && ttlMs <= 60_000)) {
    throw optionError(
      typeof ttlMs === 'number' ? 'range' : 'type',
      `${option}.ttlMs`,
      'an integer number of milliseconds from 1000 to 60000',
      ttlMs,
    );
  }
  if (typeof retryPercent !== 'number' || !(retryPercent >= 0 && retryPercent <= 100)) {
    throw optionError(
      typeof retryPercent === 'number' ? 'range' : 'type',
      `${option}.retryPercent`,
      'a number from 0 to 100 (percent)',
      retryPercent,
    );
  }
  if (typeof minRetriesPerSec !== 'number' || !(Number.isInteger(minRetriesPerSec) && minRetriesPerSec >= 0 && minRetriesPerSec <= 1000)) {
    throw optionError(
      typeof minRetriesPerSec === 'number' ? 'range' : 'type',
      `${option}.minRetriesPerSec`,
      'an integer from 0 to 1000 (retries per second)',
      minRetriesPerSec,
    );
  }
  return { ttlMs, retryPercent, minRetriesPerSec };
}
