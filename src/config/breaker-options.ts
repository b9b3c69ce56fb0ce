import { optionError } from '../core/option-error.js';
import { checkMs, checkNumber, checkOptionsObject, keysOf, switchableExpected, withDefined, type Resolved } from './check-helpers.js';

// The `breaker` option: its type, its defaults, its check and the defaults applied. The breaker
// itself is in channel/circuit-breaker.ts.

/**
 * Circuit breaking per channel (or per method of a channel), on opossum. When too many calls in
 * the window fail, the circuit opens: calls are refused at once with `CircuitOpenError` and
 * never touch the network. After `resetTimeoutMs` one probe goes out; its outcome closes the
 * circuit or opens it again.
 */
export interface BreakerOptions {
  /** Failure rate, in percent of the calls in the window, above which the circuit opens. (0, 100]. Default: 50. */
  errorThresholdPercentage?: number | undefined;
  /** Calls the window must hold before the circuit may open. Integer >= 1. Default: 20. */
  volumeThreshold?: number | undefined;
  /** The rolling window the rate is measured over, in ms (10 buckets). >= 100. Default: 10000. */
  windowMs?: number | undefined;
  /** How long the circuit stays open before a half-open probe, in ms. Default: 10000. */
  resetTimeoutMs?: number | undefined;
  /**
   * `'method'`: one circuit per method of each channel, so one broken method refuses only its own
   * calls, plus one circuit per channel (the target's) that opens only on failures no endpoint
   * could take (no connection, every endpoint down). `'channel'`: one circuit per channel fed by
   * every attempt, the behaviour before 0.2. Default: `'method'`.
   */
  scope?: 'channel' | 'method' | undefined;
}

/** Defaults of `breaker`. */
export const BREAKER_DEFAULTS = {
  errorThresholdPercentage: 50,
  volumeThreshold: 20,
  windowMs: 10_000,
  resetTimeoutMs: 10_000,
  scope: 'method',
} as const satisfies Resolved<BreakerOptions>;

/** The known keys of `breaker`. */
export const BREAKER_KEYS = keysOf(BREAKER_DEFAULTS);

/** Validates a `breaker` option; returns it unchanged (an object or `false`). */
export function checkBreakerOptions(option: string, value: unknown): BreakerOptions | false | undefined {
  if (value === undefined || value === false) return value;
  checkOptionsObject(option, value, BREAKER_KEYS, switchableExpected(BREAKER_KEYS));
  const b = value as BreakerOptions;
  checkNumber(`${option}.errorThresholdPercentage`, b.errorThresholdPercentage, (v) => v > 0 && v <= 100, 'a percentage > 0 and <= 100');
  checkNumber(
    `${option}.volumeThreshold`,
    b.volumeThreshold,
    (v) => Number.isInteger(v) && v >= 1 && v <= 1_000_000,
    'an integer >= 1 (calls in the window before the circuit may open)',
  );
  checkNumber(`${option}.windowMs`, b.windowMs, (v) => v >= 100 && v <= 3_600_000, 'a number of milliseconds from 100 to 3600000');
  if (b.resetTimeoutMs !== undefined) checkMs(`${option}.resetTimeoutMs`, b.resetTimeoutMs);
  if (b.scope !== undefined && b.scope !== 'channel' && b.scope !== 'method') {
    throw optionError('type', `${option}.scope`, '"channel" or "method"', b.scope);
  }
  return b;
}

/** The breaker options with the defaults applied, or `false`. */
export function resolveBreaker(options: BreakerOptions | false): Resolved<BreakerOptions> | false {
  return options === false ? false : (withDefined<BreakerOptions>(BREAKER_DEFAULTS, options) as Resolved<BreakerOptions>);
}
