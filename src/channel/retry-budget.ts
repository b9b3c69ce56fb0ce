// The retry budget of one channel: a share of the traffic that succeeds, over a sliding window
// (the retry budgets of Finagle, linkerd and tower, but paying only while the target is healthy:
// see the class). Its options, their defaults and their check are in
// config/throttling-options.ts; how it sits beside gRFC A6's token bucket (retry-throttle.ts) is
// in managed-channel.ts.

/** How many slots the window is cut into: a deposit expires between 9/10 and 10/10 of `ttlMs` after it was made. */
const SLOTS = 10;
/** How many of the newest slots count the retries that worked lately (2: ttlMs / 5, 2 s by default). */
const RECENT_SLOTS = 2;

/** The settings of a {@link RetryBudget}, validated (see `retryBudget` in config/throttling-options.ts). */
export interface RetryBudgetSettings {
  /** How long a deposit or a withdrawal counts, in ms. */
  ttlMs: number;
  /** Retries allowed per 100 successful calls. */
  retryPercent: number;
  /** Retries allowed per second on top of the share, while a call succeeded within `ttlMs`. */
  minRetriesPerSec: number;
}

/**
 * A retry budget: every call that succeeds deposits `retryPercent / 100` of a token, every retry
 * the budget pays for withdraws one, and a retry that then succeeds gives its token back. Deposits
 * and withdrawals count for `ttlMs` (a sliding window of 10 slots); on top of them a reserve of
 * `minRetriesPerSec * ttlMs / 1000` tokens, so that a channel with little traffic can retry too.
 *
 * The anchors deposit per request, so a total outage still costs `1 + retryPercent / 100`
 * attempts per call (and every retry the floor allows). Here the budget pays only while the
 * target as a whole is healthy: only success deposits, and the reserve counts only while a call
 * succeeded within `ttlMs`; and only while its own retries work: once more of the retries it
 * paid for failed within `ttlMs` than succeeded lately (within `ttlMs / 5`), it pays for none.
 * One sick endpoint among healthy ones cannot drain it: the retries its failures cause land on
 * the others, succeed, and give their tokens back. In a total outage the first retry it paid for
 * fails and it stops; after `ttlMs` without a success nothing is left in it at all.
 *
 * Counted in thousandths of a token, so that repeated deposits of 0.2 do not drift. One object
 * per channel; `canRetry()` / `withdraw()` are all a retry (or, later, a hedged attempt) needs
 * before it starts, `refund()` or `retryFailed()` after.
 */
export class RetryBudget {
  readonly #slotMs: number;
  readonly #depositMilli: number;
  readonly #reserveMilli: number;
  /** Per slot: thousandths of a token deposited, minus those withdrawn, plus those given back. */
  readonly #milli = new Array<number>(SLOTS).fill(0);
  /** Per slot: successful calls (the reserve counts while any is in the window). */
  readonly #successes = new Array<number>(SLOTS).fill(0);
  /**
   * Per slot: retries this budget paid for that succeeded (`refund`) and that failed
   * (`retryFailed`). The failed count over the window, the succeeded over its newest slots: after
   * a spell of retries that worked, a total outage costs no more failed retries than worked lately.
   */
  readonly #won = new Array<number>(SLOTS).fill(0);
  readonly #lost = new Array<number>(SLOTS).fill(0);
  /** The absolute number of the current slot (time / slotMs). */
  #slot: number;

  constructor(
    settings: RetryBudgetSettings,
    readonly now: () => number = Date.now,
  ) {
    this.#slotMs = settings.ttlMs / SLOTS;
    this.#depositMilli = Math.round(settings.retryPercent * 10);
    this.#reserveMilli = Math.round(settings.minRetriesPerSec * (settings.ttlMs / 1000) * 1000);
    this.#slot = Math.floor(this.now() / this.#slotMs);
  }

  /** A call succeeded: `retryPercent / 100` of a token, for `ttlMs`. */
  deposit(): void {
    const i = this.#advance();
    this.#milli[i]! += this.#depositMilli;
    this.#successes[i]!++;
  }

  /**
   * Whether the budget holds a whole token now, and its retries work: no more of them failed
   * within `ttlMs` than succeeded lately (within the newest 2 of the 10 slots, `ttlMs / 5`).
   */
  canRetry(): boolean {
    this.#advance();
    return this.#balanceMilli() >= 1000 && sum(this.#lost) <= this.#recentlyWon();
  }

  /** Takes one token for a retry, if `canRetry()`; false (and nothing taken) otherwise. */
  withdraw(): boolean {
    if (!this.canRetry()) return false;
    this.#milli[this.#index(this.#slot)]! -= 1000;
    return true;
  }

  /**
   * Retries this budget paid for succeeded: their `tokens` come back. (A retry that outlived the
   * window gives back a token whose withdrawal has already expired: one token more, for a retry
   * that worked.)
   */
  refund(tokens = 1): void {
    if (tokens <= 0) return;
    const i = this.#advance();
    this.#milli[i]! += tokens * 1000;
    this.#won[i]! += tokens;
  }

  /** A retry this budget paid for failed: its token stays spent, and it counts against paying for more. */
  retryFailed(): void {
    this.#lost[this.#advance()]!++;
  }

  /** Whole and partial tokens available now (the reserve included while it counts); may be negative. */
  get balance(): number {
    this.#advance();
    return this.#balanceMilli() / 1000;
  }

  /** Retries this budget paid for that succeeded within the newest RECENT_SLOTS slots. */
  #recentlyWon(): number {
    let won = 0;
    for (let k = 0; k < RECENT_SLOTS; k++) won += this.#won[this.#index(this.#slot - k)]!;
    return won;
  }

  #balanceMilli(): number {
    const milli = sum(this.#milli);
    return sum(this.#successes) > 0 ? milli + this.#reserveMilli : milli;
  }

  /** Moves the window to now, emptying the slots that left it; returns the current slot's index. */
  #advance(): number {
    const slot = Math.floor(this.now() / this.#slotMs);
    // A clock that went back (a wall clock set back) keeps the current slot.
    for (let s = this.#slot + 1; s <= slot && s <= this.#slot + SLOTS; s++) {
      const i = this.#index(s);
      this.#milli[i] = 0;
      this.#successes[i] = 0;
      this.#won[i] = 0;
      this.#lost[i] = 0;
    }
    if (slot > this.#slot) this.#slot = slot;
    return this.#index(this.#slot);
  }

  #index(slot: number): number {
    return ((slot % SLOTS) + SLOTS) % SLOTS;
  }
}

function sum(values: readonly number[]): number {
  let total = 0;
  for (const value of values) total += value;
  return total;
}
