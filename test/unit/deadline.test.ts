import { describe, expect, test } from 'vitest';
import { deadlineToEpochMs } from '../../src/call/call-options.js';
import { checkAbsoluteDeadline } from '../../src/config/call-options.js';
import { checkDurationMs, MAX_TIMER_MS } from '../../src/config/check-helpers.js';
import { thrown } from '../helpers/thrown.js';

// A fixed "now" (2025-01-01T00:00:00Z): the functions take it as an argument, no clock involved.
const NOW = Date.UTC(2025, 0, 1);

describe('checkDurationMs', () => {
  test.each([1, 0.5, 300, 10_000, MAX_TIMER_MS])('accepts %s and returns it', (value) => {
    expect(checkDurationMs('deadlineMs', value)).toBe(value);
  });

  test.each([
    [-1, '-1'],
    [0, '0'],
    [-0, '0'],
    [Infinity, 'Infinity'],
    [-Infinity, '-Infinity'],
    [MAX_TIMER_MS + 1, '2147483648'],
    [Number.MAX_VALUE, String(Number.MAX_VALUE)],
  ])('rejects %s with a RangeError naming the option and the value', (value, shown) => {
    const error = thrown(() => checkDurationMs('deadlineMs', value));
    expect(error).toBeInstanceOf(RangeError);
    expect(error.code).toBe(3);
    expect(error.option).toBe('deadlineMs');
    expect(error.message).toBe(`resilient-grpc: deadlineMs must be a finite number of milliseconds > 0 and <= 2147483647, got ${shown}`);
  });

  test.each([
    [Number.NaN, 'NaN'],
    ['300', '"300"'],
    [null, 'null'],
    [undefined, 'undefined'],
    [300n, '300'],
    [new Date(NOW), 'Date(2025-01-01T00:00:00.000Z)'],
  ])('rejects %s with a TypeError', (value, shown) => {
    const error = thrown(() => checkDurationMs('deadlineMs', value));
    expect(error).toBeInstanceOf(TypeError);
    expect(error.code).toBe(3);
    expect(error.option).toBe('deadlineMs');
    expect(error.message).toBe(`resilient-grpc: deadlineMs must be a number of milliseconds, got ${shown}`);
  });

  test('the option path is the one passed in (nested options are named in full)', () => {
    const error = thrown(() => checkDurationMs('methods.QueryBasicInfoByID.deadlineMs', -5));
    expect(error.option).toBe('methods.QueryBasicInfoByID.deadlineMs');
    expect(error.message).toContain('methods.QueryBasicInfoByID.deadlineMs must be');
    expect(error.message).toContain('got -5');
  });

  test('code and option are enumerable fields, so they survive logging as JSON', () => {
    const error = thrown(() => checkDurationMs('deadlineMs', 0));
    expect(JSON.parse(JSON.stringify(error))).toEqual({ code: 3, option: 'deadlineMs' });
  });
});

describe('checkAbsoluteDeadline', () => {
  test('accepts a future Date and returns epoch ms', () => {
    expect(checkAbsoluteDeadline('deadline', new Date(NOW + 500), NOW)).toBe(NOW + 500);
  });

  test('accepts future epoch ms, as grpc-js does', () => {
    expect(checkAbsoluteDeadline('deadline', NOW + 1, NOW)).toBe(NOW + 1);
    expect(checkAbsoluteDeadline('deadline', NOW + MAX_TIMER_MS, NOW)).toBe(NOW + MAX_TIMER_MS);
  });

  test('5000 (a relative timeout passed as an absolute deadline) is refused with a hint', () => {
    const error = thrown(() => checkAbsoluteDeadline('deadline', 5000, NOW));
    expect(error).toBeInstanceOf(RangeError);
    expect(error.code).toBe(3);
    expect(error.option).toBe('deadline');
    expect(error.message).toBe(
      'resilient-grpc: deadline must be an absolute epoch-milliseconds timestamp, as in grpc-js ' +
        '(for a relative timeout pass deadlineMs: 5000), got 5000',
    );
  });

  test.each([0, -1, 1e12 - 1])('a number below 2001-09-09 (%s) is taken for a relative timeout', (value) => {
    const error = thrown(() => checkAbsoluteDeadline('deadline', value, NOW));
    expect(error).toBeInstanceOf(RangeError);
    expect(error.message).toContain(`deadlineMs: ${value}`);
  });

  test('a deadline in the past says how far in the past', () => {
    const error = thrown(() => checkAbsoluteDeadline('deadline', new Date(NOW - 1000), NOW));
    expect(error).toBeInstanceOf(RangeError);
    expect(error.code).toBe(3);
    expect(error.option).toBe('deadline');
    expect(error.message).toBe(
      'resilient-grpc: deadline must be in the future (it is 1000 ms in the past), got Date(2024-12-31T23:59:59.000Z)',
    );
  });

  test('a deadline equal to now is already expired', () => {
    const error = thrown(() => checkAbsoluteDeadline('deadline', NOW, NOW));
    expect(error).toBeInstanceOf(RangeError);
    expect(error.message).toContain('in the future (it is 0 ms in the past)');
  });

  test('a deadline further away than a Node timer can wait is refused', () => {
    const error = thrown(() => checkAbsoluteDeadline('deadline', NOW + MAX_TIMER_MS + 1, NOW));
    expect(error).toBeInstanceOf(RangeError);
    expect(error.message).toContain('at most 2147483647 ms from now');
    expect(error.message).toContain(`got ${NOW + MAX_TIMER_MS + 1}`);
  });

  test.each([Infinity, -Infinity])('%s is refused: a call must not wait for ever', (value) => {
    const error = thrown(() => checkAbsoluteDeadline('deadline', value, NOW));
    expect(error).toBeInstanceOf(RangeError);
    expect(error.code).toBe(3);
    expect(error.message).toContain('a finite epoch-milliseconds timestamp');
    expect(error.message).toContain(`got ${value}`);
  });

  test('an invalid Date is a TypeError', () => {
    const error = thrown(() => checkAbsoluteDeadline('deadline', new Date('not a date'), NOW));
    expect(error).toBeInstanceOf(TypeError);
    expect(error.code).toBe(3);
    expect(error.option).toBe('deadline');
    expect(error.message).toBe('resilient-grpc: deadline must be a valid Date, got Date(Invalid Date)');
  });

  test.each([
    [Number.NaN, 'NaN'],
    ['2030-01-01T00:00:00Z', '"2030-01-01T00:00:00Z"'],
    [null, 'null'],
    [{ seconds: 5 }, 'an object'],
  ])('%s is a TypeError', (value, shown) => {
    const error = thrown(() => checkAbsoluteDeadline('deadline', value, NOW));
    expect(error).toBeInstanceOf(TypeError);
    expect(error.code).toBe(3);
    expect(error.message).toBe(`resilient-grpc: deadline must be a Date or a number of epoch milliseconds, got ${shown}`);
  });
});

describe('deadlineToEpochMs', () => {
  test('reads a Date, a number and Infinity (a grpc-js call without deadline)', () => {
    expect(deadlineToEpochMs(new Date(NOW))).toBe(NOW);
    expect(deadlineToEpochMs(NOW + 5)).toBe(NOW + 5);
    expect(deadlineToEpochMs(Infinity)).toBe(Infinity);
  });
});
