import { RetryBudget } from '../channel/retry-budget.js';
import type { ResolvedHedging } from '../config/hedging-options.js';

// Adaptive hedging (after Finagle's BackupRequestFilter and tower's hedge layer): per method, a
// window of observed call latencies in a small log histogram, the hedge delay read from it (the
// percentile `1 - maxExtraLoad`, refreshed every `refreshMs`), the ceiling above which hedging
// stops by itself, and the budget that caps hedges at `maxExtraLoad` of the method's calls. What a
// call does with it (the second attempt, the race, cancelling the loser) is in attempts.ts.

/** The smallest latency the histogram tells apart, in ms; below it everything is one bucket. */
const FLOOR_MS = 0.1;
/** Each bucket is 10 % wider than the one before: a percentile is read within 10 %. */
const GROWTH = 1.1;
const LOG_GROWTH = Math.log(GROWTH);
/** Buckets up to about 10 minutes (FLOOR_MS * GROWTH^206 > 600 000 ms); longer ones land in the last. */
const BUCKETS = 208;

/** The bucket of a latency in ms. */
export function bucketOf(ms: number): number {
  if (!(ms > FLOOR_MS)) return 0;
  return Math.min(BUCKETS - 1, 1 + Math.floor(Math.log(ms / FLOOR_MS) / LOG_GROWTH));
}

/** The upper bound of a bucket in ms: what a percentile that falls in it reads as. */
export function bucketUpperMs(bucket: number): number {
  return FLOOR_MS * GROWTH ** bucket;
}

/**
 * Latencies over a sliding window: one fixed-bucket log histogram per slot of `slotMs`, as many
 * slots as the window holds. Recording is an increment; a percentile walks the buckets.
 */
export class LatencyWindow {
  readonly #slotMs: number;
  readonly #counts: Uint32Array[];
  readonly #totals: number[];
  #slot: number;

  constructor(
    windowMs: number,
    slotMs: number,
    readonly now: () => number = Date.now,
  ) {
    this.#slotMs = slotMs;
    const slots = Math.max(1, Math.ceil(windowMs / slotMs));
    this.#counts = Array.from({ length: slots }, () => new Uint32Array(BUCKETS));
    this.#totals = new Array<number>(slots).fill(0);
    this.#slot = Math.floor(this.now() / slotMs);
  }

  record(ms: number): void {
    const i = this.#advance();
    this.#counts[i]![bucketOf(ms)]!++;
    this.#totals[i]!++;
  }

  /** Latencies in the window. */
  get count(): number {
    this.#advance();
    let total = 0;
    for (const t of this.#totals) total += t;
    return total;
  }

  /** The latency at quantile `q` (0 to 1] of the window, in ms (a bucket's upper bound); undefined when empty. */
  quantile(q: number): number | undefined {
    const total = this.count;
    if (total === 0) return undefined;
    const rank = Math.max(1, Math.ceil(q * total));
    let seen = 0;
    for (let b = 0; b < BUCKETS; b++) {
      for (const counts of this.#counts) seen += counts[b]!;
      if (seen >= rank) return bucketUpperMs(b);
    }
    return bucketUpperMs(BUCKETS - 1);
  }

  #advance(): number {
    const slots = this.#counts.length;
    const slot = Math.floor(this.now() / this.#slotMs);
    for (let s = this.#slot + 1; s <= slot && s <= this.#slot + slots; s++) {
      const i = s % slots;
      this.#counts[i]!.fill(0);
      this.#totals[i] = 0;
    }
    if (slot > this.#slot) this.#slot = slot;
    return this.#slot % slots;
  }
}

/** What the hedge delay of one call depends on. */
export interface HedgeDelayInput {
  /** The window's latency at the percentile `1 - maxExtraLoad`, in ms; undefined: too few calls seen. */
  percentileMs: number | undefined;
  /** The window's median, in ms: what a hedge is expected to take. */
  medianMs: number | undefined;
  minDelayMs: number;
  maxDelayMs: number | undefined;
  /** ms the call has left when its first attempt starts. */
  msLeft: number;
  perAttemptTimeoutMs: number | undefined;
}

/** Why a call is not hedged, or its hedge delay in ms. */
export type HedgeDelay = { hedge: true; delayMs: number } | { hedge: false; reason: 'warming-up' | 'ceiling' | 'no-time' };

/**
 * The hedge delay of one call: the percentile, at least `minDelayMs`. No hedge before the window
 * has enough calls, when the delay passes the ceiling (`maxDelayMs`), or when a hedge sent at the
 * delay would not be expected to finish in time (the delay plus the median past the call's time
 * left or its per-attempt timeout): so when every call is slow, hedging stops by itself.
 */
export function hedgeDelay(input: HedgeDelayInput): HedgeDelay {
  if (input.percentileMs === undefined || input.medianMs === undefined) return { hedge: false, reason: 'warming-up' };
  const delayMs = Math.max(input.minDelayMs, Math.ceil(input.percentileMs));
  if (input.maxDelayMs !== undefined && delayMs > input.maxDelayMs) return { hedge: false, reason: 'ceiling' };
  const limit = Math.min(input.msLeft, input.perAttemptTimeoutMs ?? Number.POSITIVE_INFINITY);
  if (delayMs + input.medianMs >= limit) return { hedge: false, reason: 'no-time' };
  return { hedge: true, delayMs };
}

/**
 * The hedging state of one method of one client: its latency window, its hedge delay (recomputed
 * at most every `refreshMs`), and its hedge budget. One per bound method with hedging on.
 */
export class Hedger {
  readonly settings: ResolvedHedging;
  readonly #window: LatencyWindow;
  readonly #budget: RetryBudget;
  /** Fewest calls in the window before the percentile is trusted: enough to have a tail. */
  readonly #minSamples: number;
  #refreshAt = Number.NEGATIVE_INFINITY;
  #percentileMs: number | undefined;
  #medianMs: number | undefined;

  constructor(
    settings: ResolvedHedging,
    readonly now: () => number = Date.now,
  ) {
    this.settings = settings;
    this.#window = new LatencyWindow(settings.windowMs, settings.refreshMs, now);
    // The budget: maxExtraLoad of a token per call, for windowMs, plus a reserve of
    // minHedgesPerSec over the window (the retry budget's arithmetic; see retry-budget.ts).
    this.#budget = new RetryBudget(
      { ttlMs: settings.windowMs, retryPercent: settings.maxExtraLoad * 100, minRetriesPerSec: settings.minHedgesPerSec },
      now,
    );
    this.#minSamples = Math.ceil(2 / settings.maxExtraLoad);
  }

  /** A call of the method began: it earns `maxExtraLoad` of a hedge. */
  callStarted(): void {
    this.#budget.deposit();
  }

  /** A call committed after `ms` (its first response or message, whichever attempt sent it). */
  record(ms: number): void {
    this.#window.record(ms);
  }

  /** The hedge delay of a call that starts now, with `msLeft` and its per-attempt timeout. */
  delay(msLeft: number, perAttemptTimeoutMs: number | undefined): HedgeDelay {
    const now = this.now();
    // Every refreshMs; and while warming up, as soon as the window holds enough calls.
    if (now >= this.#refreshAt || (this.#percentileMs === undefined && this.#window.count >= this.#minSamples)) {
      this.#refreshAt = now + this.settings.refreshMs;
      const enough = this.#window.count >= this.#minSamples;
      this.#percentileMs = enough ? this.#window.quantile(1 - this.settings.maxExtraLoad) : undefined;
      this.#medianMs = enough ? this.#window.quantile(0.5) : undefined;
    }
    return hedgeDelay({
      percentileMs: this.#percentileMs,
      medianMs: this.#medianMs,
      minDelayMs: this.settings.minDelayMs,
      maxDelayMs: this.settings.maxDelayMs,
      msLeft,
      perAttemptTimeoutMs,
    });
  }

  /** Takes a hedge from the budget, if it holds one. */
  takeHedge(): boolean {
    return this.#budget.withdraw();
  }

  /** The budget now, in hedges (for tests and stats). */
  get budget(): number {
    return this.#budget.balance;
  }
}
