import { didYouMean } from '../core/did-you-mean.js';
import { optionError } from '../core/option-error.js';

// What every options file shares: the check toolkit and the merge helpers. A bad option gets a
// TypeError (wrong type) or a RangeError (out of range) that names the option's path, says what
// it must be and what it got, and carries `code` INVALID_ARGUMENT and `option`; it is thrown
// before anything touches the network. Values are described, never echoed when they may be
// secret. Each options type has its own file beside this one: its type, its defaults, its check
// and its resolution.

/**
 * The longest delay a Node timer accepts (about 24.8 days); longer ones fire at once. grpc-js
 * clamps its own timers to it, and so do we: every duration option is capped here.
 */
export const MAX_TIMER_MS = 2_147_483_647;

/** An options type with every field set: what is left once the defaults are applied. */
export type Resolved<T> = { [K in keyof T]-?: Exclude<T[K], undefined> };

/**
 * Every key of an options type, each mapped to `true`: the key list of an options type that has
 * no defaults object to derive it from, checked by the compiler against the type.
 */
export type KeysOf<T> = { readonly [K in keyof T]-?: true };

/**
 * The keys of a defaults object (or a {@link KeysOf} record), in their order: the known keys of
 * an options object are derived from it, never written out by hand.
 */
export function keysOf<T extends object>(object: T): ReadonlyArray<keyof T & string> {
  return Object.keys(object) as Array<keyof T & string>;
}

/**
 * `{ ...base, ...over }` where a key that `over` sets to `undefined` keeps the value of `base`:
 * option objects are merged key by key, and `{ maxAttempts: undefined }` means "not set".
 */
export function withDefined<T extends object>(base: T, over: T): T {
  const out = { ...base };
  for (const key of Object.keys(over) as Array<keyof T>) {
    if (over[key] !== undefined) out[key] = over[key];
  }
  return out;
}

/**
 * Applies one level's switchable option (`retry`, `breaker`) over the one above it: `undefined`
 * keeps the level above, `false` turns it off, an object turns it on (from the defaults if an
 * upper level had turned it off) and overrides the fields it sets.
 */
export function mergeSwitchable<T extends object>(base: T | false, over: T | false | undefined): T | false {
  if (over === undefined) return base;
  if (over === false) return false;
  return withDefined(base === false ? ({} as T) : base, over);
}

/**
 * Throws unless `value` is a plain options object (or undefined); rejects unknown keys, with a
 * "did you mean" for a near miss. `refusal(key)` may give the error for a key that is known
 * elsewhere (a grpc-js option the package does not carry, say); it runs only for unknown keys.
 */
export function checkOptionsObject(
  option: string,
  value: unknown,
  known: ReadonlySet<string> | readonly string[],
  expected = 'an options object',
  refusal?: (key: string) => Error | undefined,
): asserts value is Record<string, unknown> | undefined {
  if (value === undefined) return;
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw optionError('type', option, expected, value);
  }
  const has = Array.isArray(known) ? (key: string) => known.includes(key) : (key: string) => (known as ReadonlySet<string>).has(key);
  for (const key of Object.keys(value)) {
    if (!has(key)) {
      const refused = refusal?.(key);
      if (refused !== undefined) throw refused;
      const list = [...known].join(', ');
      throw optionError(
        'type',
        `${option}.${key}`,
        `one of the known options (${list})`,
        undefined,
        `an unknown option${didYouMean(key, known)}`,
      );
    }
  }
}

/** The `expected` of a switchable option object: `false or an object { a, b, c }`. */
export function switchableExpected(keys: readonly string[]): string {
  return `false or an object { ${keys.join(', ')} }`;
}

/**
 * The one millisecond check: a number, finite, at most {@link MAX_TIMER_MS}, and > 0 (a
 * duration that must pass, the default) or >= 0 (`allowZero`: a delay or a grace period).
 */
export function checkMs(option: string, value: unknown, allowZero = false): number {
  if (typeof value !== 'number' || Number.isNaN(value)) throw optionError('type', option, 'a number of milliseconds', value);
  if (!(allowZero ? value >= 0 : value > 0) || value > MAX_TIMER_MS) {
    throw optionError('range', option, `a finite number of milliseconds ${allowZero ? '>=' : '>'} 0 and <= ${MAX_TIMER_MS}`, value);
  }
  return value;
}

/** Validates a relative duration option in milliseconds: finite, > 0, at most {@link MAX_TIMER_MS}. */
export function checkDurationMs(option: string, value: unknown): number {
  return checkMs(option, value);
}

/** `checkMs` for an option that may also be `false` (off) or unset. */
export function checkMsOrFalse(option: string, value: unknown): void {
  if (value !== undefined && value !== false) checkMs(option, value);
}

/** Throws unless `value` is undefined or a number for which `ok` holds (a TypeError for a non-number). */
export function checkNumber(option: string, value: unknown, ok: (v: number) => boolean, expected: string): void {
  if (value === undefined) return;
  if (typeof value !== 'number' || Number.isNaN(value)) throw optionError('type', option, 'a number', value);
  if (!ok(value)) throw optionError('range', option, expected, value);
}
