// The retry-throttling token bucket of one channel (gRFC A6); its options, their defaults and
// their check are in config/throttling-options.ts.

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

  /** Gives back `tokens` whole tokens (those a call's failed attempts took, once the call succeeded). */
  refund(tokens: number): void {
    this.#milli = Math.min(this.#max, this.#milli + tokens * 1000);
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
