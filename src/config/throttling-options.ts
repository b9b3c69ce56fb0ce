import { optionError } from '../core/option-error.js';
import { checkOptionsObject, keysOf, switchableExpected, type Resolved } from './check-helpers.js';

// The `retryThrottling` option: its type, its defaults, and its check, which applies the
// defaults. The token bucket itself is in channel/retry-throttle.ts.

/**
 * Retry throttling per channel, as in gRPC's retry design (gRFC A6). A token bucket starts full
 * at `maxTokens`; every failed attempt with a retryable status takes 1 token, every successful
 * attempt gives back `tokenRatio`. While the bucket holds `maxTokens / 2` tokens or fewer, no
 * call on the channel is retried: under a total outage, calls cost one attempt each.
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
