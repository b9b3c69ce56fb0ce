import { optionError } from '../core/option-error.js';
import { checkMs, checkNumber, checkOptionsObject, keysOf, switchableExpected, type Resolved } from './check-helpers.js';

// The `hedging` option (pool, client, `methods[name]`): its type, its defaults, its check and the
// defaults applied. The strategy that uses it is call/hedging.ts and call/attempts.ts.

/**
 * Adaptive hedging of idempotent unary and server-stream calls (after Finagle's
 * BackupRequestFilter): when the first attempt has not answered after the method's observed
 * latency percentile `1 - maxExtraLoad` (p95 for 0.05, over `windowMs`, refreshed every
 * `refreshMs`), a second attempt goes to another endpoint; the first response (a server stream's
 * first message) wins and the other attempt is cancelled. Hedges are capped at `maxExtraLoad` of
 * the method's calls and share the channel's retry budget with retries.
 */
export interface HedgingOptions {
  /** Extra load allowed, as a share of calls: > 0 and <= 0.5. Also the percentile: 0.05 -> p95. Default: 0.05. */
  maxExtraLoad?: number | undefined;
  /** Window of observed latencies, in ms (>= 1000). Default: 30000. */
  windowMs?: number | undefined;
  /** How often the hedge delay is recomputed from the window, in ms (<= windowMs). Default: 3000. */
  refreshMs?: number | undefined;
  /** Smallest hedge delay, in ms. Default: 1. */
  minDelayMs?: number | undefined;
  /**
   * The ceiling: no hedge while the delay is above it, in ms. Default: none; a hedge is sent only
   * while the delay plus the window's median fits in the call's time left (and its
   * `perAttemptTimeoutMs`) in any case.
   */
  maxDelayMs?: number | undefined;
  /** Hedges allowed per second beyond the share (a reserve for low traffic). Default: 1. */
  minHedgesPerSec?: number | undefined;
}

/** Defaults of `hedging` (`maxDelayMs` has none). */
export const HEDGING_DEFAULTS = {
  maxExtraLoad: 0.05,
  windowMs: 30_000,
  refreshMs: 3_000,
  minDelayMs: 1,
  minHedgesPerSec: 1,
} as const satisfies Resolved<Omit<HedgingOptions, 'maxDelayMs'>>;

export const HEDGING_KEYS: ReadonlyArray<keyof HedgingOptions> = [...keysOf(HEDGING_DEFAULTS), 'maxDelayMs'];

/** `hedging` with the defaults applied. */
export interface ResolvedHedging extends Resolved<Omit<HedgingOptions, 'maxDelayMs'>> {
  maxDelayMs: number | undefined;
}

/** Validates one level's `hedging` option; returns it unchanged (an object, `false` or undefined). */
export function checkHedgingOptions(option: string, value: unknown): HedgingOptions | false | undefined {
  if (value === undefined || value === false) return value;
  checkOptionsObject(option, value, HEDGING_KEYS, switchableExpected(HEDGING_KEYS));
  const h = value as HedgingOptions;
  if (h.maxExtraLoad !== undefined) {
    checkNumber(
      `${option}.maxExtraLoad`,
      h.maxExtraLoad,
      (v) => v > 0 && v <= 0.5,
      'a share of calls > 0 and <= 0.5 (0.05: 5 %, hedge at p95)',
    );
  }
  if (h.windowMs !== undefined) {
    checkMs(`${option}.windowMs`, h.windowMs);
    if (h.windowMs < 1000) throw optionError('range', `${option}.windowMs`, 'at least 1000 ms', h.windowMs);
  }
  if (h.refreshMs !== undefined) checkMs(`${option}.refreshMs`, h.refreshMs);
  if (h.minDelayMs !== undefined) checkMs(`${option}.minDelayMs`, h.minDelayMs, true);
  if (h.maxDelayMs !== undefined) checkMs(`${option}.maxDelayMs`, h.maxDelayMs);
  if (h.minHedgesPerSec !== undefined) {
    checkNumber(`${option}.minHedgesPerSec`, h.minHedgesPerSec, (v) => v >= 0 && v <= 1000, 'a number of hedges per second from 0 to 1000');
  }
  return h;
}

/** The cascaded `hedging` option with the defaults applied; throws when its parts contradict each other. */
export function hedgingWithDefaults(option: string, h: HedgingOptions): ResolvedHedging {
  const out: ResolvedHedging = {
    maxExtraLoad: h.maxExtraLoad ?? HEDGING_DEFAULTS.maxExtraLoad,
    windowMs: h.windowMs ?? HEDGING_DEFAULTS.windowMs,
    refreshMs: h.refreshMs ?? HEDGING_DEFAULTS.refreshMs,
    minDelayMs: h.minDelayMs ?? HEDGING_DEFAULTS.minDelayMs,
    minHedgesPerSec: h.minHedgesPerSec ?? HEDGING_DEFAULTS.minHedgesPerSec,
    maxDelayMs: h.maxDelayMs,
  };
  if (out.refreshMs > out.windowMs) {
    throw optionError('range', `${option}.refreshMs`, `at most windowMs (${out.windowMs} ms)`, out.refreshMs);
  }
  if (out.maxDelayMs !== undefined && out.maxDelayMs < out.minDelayMs) {
    throw optionError('range', `${option}.maxDelayMs`, `at least minDelayMs (${out.minDelayMs} ms)`, out.maxDelayMs);
  }
  return out;
}
