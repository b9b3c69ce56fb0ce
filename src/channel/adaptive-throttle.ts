import type { AdaptiveThrottlingOptions } from '../config/adaptive-throttling-options.js';
import type { Resolved } from '../config/check-helpers.js';

// Client-side adaptive throttling of one channel's first attempts: the Google SRE book's
// "Handling Overload" (client-side throttling), as grpc-go's adaptive throttler keeps it (K 2,
// padding 8, a 30 s lookback in 100 bins), with Envoy admission_control's cap on the share
// rejected. Its options, defaults and check are in config/adaptive-throttling-options.ts; which
// statuses count as what is `throttleVerdict` below; where a call asks is call/attempts.ts.

/** The settings of an {@link AdaptiveThrottle}, validated (see config/adaptive-throttling-options.ts). */
export type AdaptiveThrottleSettings = Resolved<AdaptiveThrottlingOptions>;

/** A channel's adaptive throttle in a {@link ChannelStats} snapshot. */
export interface AdaptiveThrottlingStats {
  /** The probability (0 to 1) that a first attempt started now is rejected locally. */
  rejectProbability: number;
  /** Requests within the window: attempts that got an answer, plus first attempts rejected locally. */
  requests: number;
  /** Attempts within the window that the servers took (any answer but an overload refusal). */
  accepts: number;
  /** First attempts this channel rejected locally since it was made (a running total). */
  rejected: number;
  /** Whether it is shedding: it rejected a call since the reject probability was last seen at 0. */
  shedding: boolean;
}

/**
 * Reported by `pool.onAdaptiveThrottling` when a channel's adaptive throttle starts shedding (its
 * first local rejection since its reject probability was last 0) and when it stops (a call finds
 * the probability back at 0). Nothing is reported per rejected call: `stats()` and the metrics
 * adapters count those.
 */
export interface AdaptiveThrottlingChange {
  /** The channel's target, as given to `pool.client()`. */
  target: string;
  /** True when it starts shedding, false when it stops. */
  shedding: boolean;
  /** The reject probability (0 to 1) when the change was seen. */
  rejectProbability: number;
  /** Requests within the window when the change was seen. */
  requests: number;
  /** Accepts within the window when the change was seen. */
  accepts: number;
  /** First attempts this channel rejected locally since it was made. */
  rejected: number;
}

/** How an attempt's end counts for the throttle: a request the servers took, one they refused for overload, or neither. */
export type ThrottleVerdict = 'accept' | 'reject' | 'ignore';

// gRPC codes, written out: this file must not depend on grpc-js's enum at runtime for a hot path.
const CANCELLED = 1;
const DEADLINE_EXCEEDED = 4;
const RESOURCE_EXHAUSTED = 8;
const UNAVAILABLE = 14;

/**
 * How a failed attempt counts: UNAVAILABLE (the servers, or the connection to them, refused it)
 * and a RESOURCE_EXHAUSTED a server sent are overload refusals; DEADLINE_EXCEEDED (a deadline
 * expires on the client's clock: a slow server, or our own busy event loop) and CANCELLED count
 * neither way, nor does a failure of our own (`ours`: ended from our side, a replaced channel,
 * grpc-js threw, an interceptor stopped it, a message size limit or serialization, call
 * credentials that failed). Any other status is an answer the servers gave: accepted. (Envoy's
 * admission_control also counts ABORTED, INTERNAL and DATA_LOSS as failures: it measures success;
 * this throttle measures whether the servers take requests at all, as the SRE book's does.)
 */
export function throttleVerdict(code: number, ours: boolean): ThrottleVerdict {
  if (ours) return 'ignore';
  switch (code) {
    case UNAVAILABLE:
    case RESOURCE_EXHAUSTED:
      return 'reject';
    case DEADLINE_EXCEEDED:
    case CANCELLED:
      return 'ignore';
    default:
      return 'accept';
  }
}

/**
 * One channel's adaptive throttle. Requests and accepts are counted in `bins` bins over
 * `windowMs`, with running totals: asking costs a clock read, a comparison (bins rotate lazily,
 * when a call finds the newest bin over; no timer) and, while the servers accept at least
 * `1 / acceptMultiplier` of the requests, one multiplication. Only while they do not does it draw
 * a random number.
 *
 * As in grpc-go, a first attempt rejected locally counts as a request (without an accept): the
 * SRE book's "requests" are what the application asked for. A response is counted in the bin of
 * its own time; one older than the window is dropped (a clock that went back).
 */
export class AdaptiveThrottle {
  readonly #binMs: number;
  readonly #bins: number;
  readonly #k: number;
  readonly #padding: number;
  readonly #max: number;
  readonly #requests: number[];
  readonly #accepts: number[];
  #totalRequests = 0;
  #totalAccepts = 0;
  /** The absolute number of the newest bin (time / binMs), and when it ends (epoch ms). */
  #head: number;
  #headEndsAt: number;
  #rejected = 0;
  #shedding = false;

  constructor(
    settings: AdaptiveThrottleSettings,
    /** Hears each start and stop of shedding (not each rejection). */
    readonly onChange: ((change: Omit<AdaptiveThrottlingChange, 'target'>) => void) | undefined = undefined,
    readonly now: () => number = Date.now,
    readonly random: () => number = Math.random,
  ) {
    this.#binMs = settings.windowMs / settings.bins;
    this.#bins = settings.bins;
    this.#k = settings.acceptMultiplier;
    this.#padding = settings.requestPadding;
    this.#max = settings.maxRejectPercent / 100;
    this.#requests = new Array<number>(settings.bins).fill(0);
    this.#accepts = new Array<number>(settings.bins).fill(0);
    this.#head = Math.floor(this.now() / this.#binMs);
    this.#headEndsAt = (this.#head + 1) * this.#binMs;
  }

  /**
   * Whether a first attempt may go now; false when it is rejected locally (then counted as a
   * request and a rejection). Rejects with `rejectProbability`.
   */
  admits(): boolean {
    const now = this.now();
    if (now >= this.#headEndsAt) this.#advance(now);
    const excess = this.#totalRequests - this.#k * this.#totalAccepts;
    if (excess <= 0) {
      if (this.#shedding) this.#change(false, 0);
      return true;
    }
    const p = Math.min(this.#max, excess / (this.#totalRequests + this.#padding));
    // grpc-go: throttled when the probability exceeds a uniform draw in [0, 1).
    if (!(this.random() < p)) return true;
    this.#add(now, false);
    this.#rejected++;
    if (!this.#shedding) this.#change(true, p);
    return false;
  }

  /** An attempt was answered: `accepted` unless the servers refused it for overload (see `throttleVerdict`). */
  record(accepted: boolean): void {
    this.#add(this.now(), accepted);
  }

  /** The probability (0 to 1) that a first attempt started now is rejected. */
  get rejectProbability(): number {
    this.#advance(this.now());
    const excess = this.#totalRequests - this.#k * this.#totalAccepts;
    return excess <= 0 ? 0 : Math.min(this.#max, excess / (this.#totalRequests + this.#padding));
  }

  /** Whether it is shedding: it rejected a call since its reject probability was last seen at 0. */
  get isShedding(): boolean {
    return this.#shedding;
  }

  stats(): AdaptiveThrottlingStats {
    const rejectProbability = this.rejectProbability;
    return {
      rejectProbability,
      requests: this.#totalRequests,
      accepts: this.#totalAccepts,
      rejected: this.#rejected,
      shedding: this.#shedding,
    };
  }

  #change(shedding: boolean, rejectProbability: number): void {
    this.#shedding = shedding;
    this.onChange?.({
      shedding,
      rejectProbability,
      requests: this.#totalRequests,
      accepts: this.#totalAccepts,
      rejected: this.#rejected,
    });
  }

  #add(now: number, accepted: boolean): void {
    if (now >= this.#headEndsAt) this.#advance(now);
    const bin = Math.floor(now / this.#binMs);
    // Older than the window (a clock set back by more than it): nowhere to count it.
    if (bin <= this.#head - this.#bins) return;
    const i = index(Math.min(bin, this.#head), this.#bins);
    this.#requests[i]!++;
    this.#totalRequests++;
    if (accepted) {
      this.#accepts[i]!++;
      this.#totalAccepts++;
    }
  }

  /** Moves the window to `now`, emptying the bins that left it (at most `bins` of them). */
  #advance(now: number): void {
    const bin = Math.floor(now / this.#binMs);
    if (bin <= this.#head) return;
    const last = Math.min(bin, this.#head + this.#bins);
    for (let b = this.#head + 1; b <= last; b++) {
      const i = index(b, this.#bins);
      this.#totalRequests -= this.#requests[i]!;
      this.#totalAccepts -= this.#accepts[i]!;
      this.#requests[i] = 0;
      this.#accepts[i] = 0;
    }
    this.#head = bin;
    this.#headEndsAt = (bin + 1) * this.#binMs;
  }
}

function index(bin: number, bins: number): number {
  return ((bin % bins) + bins) % bins;
}
