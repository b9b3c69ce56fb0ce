import { checkNumber, checkOptionsObject, keysOf, switchableExpected, withDefined, type Resolved } from './check-helpers.js';

// The `adaptiveThrottling` option: its type, its defaults, its check and the defaults applied.
// The throttle itself is in channel/adaptive-throttle.ts.

/**
 * Client-side adaptive throttling of first attempts, per channel (the Google SRE book, "Handling
 * Overload"; grpc-go's adaptive throttler; Envoy's `admission_control`). Over the last `windowMs`
 * the channel counts its `requests` (attempts that got an answer, plus first attempts it rejected
 * itself) and its `accepts` (attempts the servers took); a new call's first attempt is then
 * rejected locally, before it reaches the network, with probability
 * `min(maxRejectPercent / 100, max(0, (requests - acceptMultiplier * accepts) / (requests + requestPadding)))`.
 *
 * An attempt the servers refused for overload (RESOURCE_EXHAUSTED a server sent, UNAVAILABLE) is
 * a request without an accept; any other answer (OK, NOT_FOUND, INVALID_ARGUMENT, INTERNAL, ...)
 * is an accept. A DEADLINE_EXCEEDED, a CANCELLED, an attempt we ended and grpc-js's own failures
 * about a message of ours count neither way. While at least `1 / acceptMultiplier` of the
 * requests are accepted (half, by default), nothing is rejected.
 *
 * A local rejection fails the call at once with a {@link StatusError} whose `code` is UNAVAILABLE
 * and `throttled` is true; it is never retried and never counts for the circuits, the endpoint
 * books, the retry bucket or the retry budget. Off by default (see the README, "Adaptive
 * throttling"); `{}` turns it on with the defaults.
 */
export interface AdaptiveThrottlingOptions {
  /**
   * K, how many requests per accept the channel still sends: a number from 1 to 100. Higher
   * rejects later and less. Default: 2 (the SRE book's and grpc-go's).
   */
  acceptMultiplier?: number | undefined;
  /**
   * Requests added to the denominator, so that a channel with little traffic rejects little: a
   * number from 0 to 1000. Default: 8 (grpc-go's).
   */
  requestPadding?: number | undefined;
  /**
   * The most calls it rejects, in percent: from 0 to 100. At 100, a channel whose every request
   * fails may reject (almost) every call; at 80 one call in five still goes out and finds out
   * whether the servers have recovered. Default: 80 (Envoy `admission_control`'s).
   */
  maxRejectPercent?: number | undefined;
  /** How far back requests and accepts count, in ms: an integer from 1000 to 600000. Default: 30000 (30 s, grpc-go's). */
  windowMs?: number | undefined;
  /**
   * How many bins the window is cut into: an integer from 1 to 1000; a count leaves the window
   * between `windowMs * (bins - 1) / bins` and `windowMs` after it was made. Default: 100 (grpc-go's).
   */
  bins?: number | undefined;
}

/** Defaults of `adaptiveThrottling` once turned on: grpc-go's K, padding, window and bins; Envoy's cap. */
export const ADAPTIVE_THROTTLING_DEFAULTS = {
  acceptMultiplier: 2,
  requestPadding: 8,
  maxRejectPercent: 80,
  windowMs: 30_000,
  bins: 100,
} as const satisfies Resolved<AdaptiveThrottlingOptions>;

/** The known keys of `adaptiveThrottling`. */
export const ADAPTIVE_THROTTLING_KEYS = keysOf(ADAPTIVE_THROTTLING_DEFAULTS);

/** Validates an `adaptiveThrottling` option; returns it unchanged (an object, `false` or undefined). */
export function checkAdaptiveThrottlingOptions(option: string, value: unknown): AdaptiveThrottlingOptions | false | undefined {
  if (value === undefined || value === false) return value;
  checkOptionsObject(option, value, ADAPTIVE_THROTTLING_KEYS, switchableExpected(ADAPTIVE_THROTTLING_KEYS));
  const o = value as AdaptiveThrottlingOptions;
  checkNumber(`${option}.acceptMultiplier`, o.acceptMultiplier, (v) => v >= 1 && v <= 100, 'a number from 1 to 100 (requests per accept)');
  checkNumber(`${option}.requestPadding`, o.requestPadding, (v) => v >= 0 && v <= 1000, 'a number from 0 to 1000 (requests)');
  checkNumber(`${option}.maxRejectPercent`, o.maxRejectPercent, (v) => v >= 0 && v <= 100, 'a number from 0 to 100 (percent)');
  checkNumber(
    `${option}.windowMs`,
    o.windowMs,
    (v) => Number.isInteger(v) && v >= 1_000 && v <= 600_000,
    'an integer number of milliseconds from 1000 to 600000',
  );
  checkNumber(`${option}.bins`, o.bins, (v) => Number.isInteger(v) && v >= 1 && v <= 1000, 'an integer from 1 to 1000');
  return o;
}

/** `adaptiveThrottling` with the defaults applied, or `false`. */
export function resolveAdaptiveThrottling(options: AdaptiveThrottlingOptions | false): Resolved<AdaptiveThrottlingOptions> | false {
  return options === false
    ? false
    : (withDefined<AdaptiveThrottlingOptions>(ADAPTIVE_THROTTLING_DEFAULTS, options) as Resolved<AdaptiveThrottlingOptions>);
}
