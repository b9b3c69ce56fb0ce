import { checkOptionsObject, optionError } from './errors.js';

const THROTTLE_KEYS: readonly string[] = ['maxTokens', 'tokenRatio'];
import type { Resolved } from './with-defined.js';

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

export const THROTTLE_DEFAULTS = {
  maxTokens: 10,
  tokenRatio: 0.1,
} as const satisfies Resolved<RetryThrottlingOptions>;

export function checkThrottlingOptions(option: string, value: unknown): Resolved<RetryThrottlingOptions> | false {
  if (value === false) return false;
  if (value === undefined) return THROTTLE_DEFAULTS;
  checkOptionsObject(option, value, THROTTLE_KEYS, 'false or an object { maxTokens, tokenRatio }');
  const { maxTokens = THROTTLE_DEFAULTS.maxTokens, tokenRatio = THROTTLE_DEFAULTS.tokenRatio } = value as RetryThrottlingOptions;
  if (typeof maxTokens !== 'number' || !(maxTokens > 0 && maxTokens <= 1000)) {
    throw optionError(typeof maxTokens === 'number' ? 'range' : 'type', `${option}.maxTokens`, 'a number > 0 and <= 1000', maxTokens);
  }
  if (typeof tokenRatio !== 'number' || !(tokenRatio > 0 && tokenRatio <= 1)) {
    throw optionError(typeof tokenRatio === 'number' ? 'range' : 'type', `${option}.tokenRatio`, 'a number > 0 and <= 1', tokenRatio);
  }
  return { maxTokens, tokenRatio };
}

/**
 * The token bucket of one channel. Counted in thousandths of a token, as gRFC A6 specifies
 * (three decimal places), so that repeated additions of 0.1 do not drift.
 */
export class RetryThrottle {
  readonly #max: number;
  readonly #ratio: number;
  #milli: number;

  constructor(maxTokens: number, tokenRatio: number) {
    this.#max = Math.round(maxTokens * 1000);
    this.#ratio = Math.max(1, Math.round(tokenRatio * 1000));
    this.#milli = this.#max;
  }

  get tokens(): number {
    return this.#milli / 1000;
  }

  /** A successful attempt. */
  onSuccess(): void {
    this.#milli = Math.min(this.#max, this.#milli + this.#ratio);
  }

  /** An attempt failed with a status its call could have retried. */
  onRetryableFailure(): void {
    this.#milli = Math.max(0, this.#milli - 1000);
  }

  /** Whether a retry may start now. */
  get allowsRetry(): boolean {
    return this.#milli * 2 > this.#max;
  }
}
