import { expect } from 'vitest';

/** Runs `fn`, expects it to throw an Error, and returns that error for closer checks. */
export function thrown(fn: () => unknown): Error & { code?: unknown; option?: unknown } {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(Error);
    return error as Error & { code?: unknown; option?: unknown };
  }
  throw new Error('expected a throw');
}
