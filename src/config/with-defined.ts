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

/** An options type with every field set: what is left once the defaults are applied. */
export type Resolved<T> = { [K in keyof T]-?: Exclude<T[K], undefined> };

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
