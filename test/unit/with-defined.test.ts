import { describe, expect, test } from 'vitest';
import { withDefined } from '../../src/config/check-helpers.js';

interface Opts {
  a?: number | undefined;
  b?: string | undefined;
  c?: boolean | undefined;
}

describe('withDefined', () => {
  test('set keys of `over` win; undefined ones keep the value of `base`', () => {
    const base: Opts = { a: 1, b: 'x' };
    expect(withDefined(base, { a: 2, b: undefined })).toEqual({ a: 2, b: 'x' });
  });

  test('falsy values other than undefined are set values', () => {
    expect(withDefined<Opts>({ a: 1, b: 'x', c: true }, { a: 0, b: '', c: false })).toEqual({ a: 0, b: '', c: false });
  });

  test('keys only in `over` are added, keys only in `base` are kept', () => {
    expect(withDefined<Opts>({ a: 1 }, { c: true })).toEqual({ a: 1, c: true });
  });

  test('an undefined key absent from base stays absent', () => {
    expect(Object.keys(withDefined<Opts>({ a: 1 }, { b: undefined }))).toEqual(['a']);
  });

  test('returns a new object and changes neither input', () => {
    const base: Opts = { a: 1 };
    const over: Opts = { a: 2 };
    const out = withDefined(base, over);
    expect(out).not.toBe(base);
    expect(out).not.toBe(over);
    expect(base).toEqual({ a: 1 });
    expect(over).toEqual({ a: 2 });
  });
});
