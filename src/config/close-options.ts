import { constants } from 'node:os';
import { optionError } from '../core/option-error.js';
import { checkMs, checkOptionsObject, keysOf, type Resolved } from './check-helpers.js';

// The options of `pool.close()` and `closeOnSignals()`: their type, their defaults, and their
// checks, which apply the defaults.

/** Options of `pool.close()`. */
export interface CloseOptions {
  /**
   * How long in-flight calls may run before they are cancelled, in milliseconds. 0 cancels them
   * at once. Finite, >= 0. Default: 10000 (10 s, the default call deadline).
   */
  graceMs?: number | undefined;
}

/** Defaults of `close()`. */
export const CLOSE_DEFAULTS = {
  graceMs: 10_000,
} as const satisfies Resolved<CloseOptions>;

/** The known keys of `close()`'s options. */
export const CLOSE_KEYS = keysOf(CLOSE_DEFAULTS);

const UNCATCHABLE_SIGNALS: ReadonlySet<string> = new Set(['SIGKILL', 'SIGSTOP']);

/** Validates `close()` (and `closeOnSignals()`) options and applies their defaults. */
export function checkCloseOptions(options: unknown): Resolved<CloseOptions> {
  checkOptionsObject('CloseOptions', options, CLOSE_KEYS);
  const graceMs = (options as CloseOptions | undefined)?.graceMs ?? CLOSE_DEFAULTS.graceMs;
  return { graceMs: checkMs('graceMs', graceMs, true) };
}

/** Validates the signal names given to `closeOnSignals()`. */
export function checkSignals(signals: unknown): readonly NodeJS.Signals[] {
  if (!Array.isArray(signals) || signals.length === 0) {
    throw optionError('type', 'signals', 'a non-empty array of signal names such as ["SIGTERM", "SIGINT"]', signals);
  }
  for (const signal of signals) {
    if (typeof signal !== 'string' || !Object.hasOwn(constants.signals, signal)) {
      throw optionError('type', 'signals', 'signal names this platform knows, such as "SIGTERM" or "SIGINT"', signal);
    }
    if (UNCATCHABLE_SIGNALS.has(signal)) {
      throw optionError('range', 'signals', 'signals a process can handle (SIGKILL and SIGSTOP cannot be caught)', signal);
    }
  }
  return signals as NodeJS.Signals[];
}
