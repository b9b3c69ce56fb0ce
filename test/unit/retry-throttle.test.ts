import { describe, expect, test } from 'vitest';
import { RetryThrottle } from '../../src/channel/retry-throttle.js';
import { checkThrottlingOptions, THROTTLE_DEFAULTS } from '../../src/config/throttling-options.js';
import { thrown } from '../helpers/thrown.js';

function repeat(times: number, fn: () => void): void {
  for (let i = 0; i < times; i++) fn();
}

describe('RetryThrottle (gRFC A6 token bucket)', () => {
  test('starts full and allows retries', () => {
    const throttle = new RetryThrottle(10, 0.1);
    expect(throttle.tokens).toBe(10);
    expect(throttle.allowsRetry).toBe(true);
  });

  test('each retryable failure takes one token', () => {
    const throttle = new RetryThrottle(10, 0.1);
    throttle.onRetryableFailure();
    expect(throttle.tokens).toBe(9);
    repeat(3, () => throttle.onRetryableFailure());
    expect(throttle.tokens).toBe(6);
  });

  test('with the defaults, retries stop after 5 failures (tokens <= maxTokens / 2)', () => {
    const throttle = new RetryThrottle(THROTTLE_DEFAULTS.maxTokens, THROTTLE_DEFAULTS.tokenRatio);
    repeat(4, () => throttle.onRetryableFailure());
    expect(throttle.tokens).toBe(6);
    expect(throttle.allowsRetry).toBe(true);
    throttle.onRetryableFailure();
    // Exactly half is not enough: retries need strictly more than maxTokens / 2.
    expect(throttle.tokens).toBe(5);
    expect(throttle.allowsRetry).toBe(false);
  });

  test('from 5 tokens, one success (5.1 > 5) allows retries again', () => {
    const throttle = new RetryThrottle(10, 0.1);
    repeat(5, () => throttle.onRetryableFailure());
    expect(throttle.allowsRetry).toBe(false);
    throttle.onSuccess();
    expect(throttle.tokens).toBeCloseTo(5.1, 10);
    expect(throttle.allowsRetry).toBe(true);
    // And the next failure throttles again.
    throttle.onRetryableFailure();
    expect(throttle.allowsRetry).toBe(false);
  });

  test('from an empty bucket, 51 successes are needed (50 reach exactly 5, which is not > 5)', () => {
    const throttle = new RetryThrottle(10, 0.1);
    repeat(20, () => throttle.onRetryableFailure());
    expect(throttle.tokens).toBe(0);
    repeat(50, () => throttle.onSuccess());
    expect(throttle.tokens).toBeCloseTo(5, 10);
    expect(throttle.allowsRetry).toBe(false);
    throttle.onSuccess();
    expect(throttle.tokens).toBeCloseTo(5.1, 10);
    expect(throttle.allowsRetry).toBe(true);
  });

  test('never above maxTokens', () => {
    const throttle = new RetryThrottle(10, 0.1);
    repeat(100, () => throttle.onSuccess());
    expect(throttle.tokens).toBe(10);
    throttle.onRetryableFailure();
    repeat(20, () => throttle.onSuccess());
    expect(throttle.tokens).toBe(10);
  });

  test('never below 0: a long outage does not dig a hole that successes must fill', () => {
    const throttle = new RetryThrottle(10, 0.1);
    repeat(1_000, () => throttle.onRetryableFailure());
    expect(throttle.tokens).toBe(0);
    repeat(51, () => throttle.onSuccess());
    expect(throttle.allowsRetry).toBe(true);
  });

  test('custom sizes: the threshold is half of maxTokens, the refill is tokenRatio', () => {
    const throttle = new RetryThrottle(4, 0.5);
    repeat(2, () => throttle.onRetryableFailure());
    expect(throttle.tokens).toBe(2);
    expect(throttle.allowsRetry).toBe(false);
    throttle.onSuccess();
    expect(throttle.tokens).toBe(2.5);
    expect(throttle.allowsRetry).toBe(true);
  });
});

describe('checkThrottlingOptions', () => {
  test('undefined gives the defaults: 10 tokens, 0.1 per success', () => {
    expect(checkThrottlingOptions('retryThrottling', undefined)).toEqual({ maxTokens: 10, tokenRatio: 0.1 });
  });

  test('false turns throttling off', () => {
    expect(checkThrottlingOptions('retryThrottling', false)).toBe(false);
  });

  test('missing or undefined fields take their default', () => {
    expect(checkThrottlingOptions('retryThrottling', {})).toEqual({ maxTokens: 10, tokenRatio: 0.1 });
    expect(checkThrottlingOptions('retryThrottling', { maxTokens: 100 })).toEqual({ maxTokens: 100, tokenRatio: 0.1 });
    expect(checkThrottlingOptions('retryThrottling', { maxTokens: undefined, tokenRatio: 1 })).toEqual({ maxTokens: 10, tokenRatio: 1 });
  });

  test('bounds are inclusive at 1000 tokens and a ratio of 1', () => {
    expect(checkThrottlingOptions('retryThrottling', { maxTokens: 1_000, tokenRatio: 1 })).toEqual({ maxTokens: 1_000, tokenRatio: 1 });
    expect(checkThrottlingOptions('retryThrottling', { maxTokens: 0.5, tokenRatio: 0.001 })).toEqual({ maxTokens: 0.5, tokenRatio: 0.001 });
  });

  test.each([
    ['maxTokens', 0, RangeError],
    ['maxTokens', -1, RangeError],
    ['maxTokens', 1_001, RangeError],
    ['maxTokens', NaN, RangeError],
    ['maxTokens', Infinity, RangeError],
    ['maxTokens', '10', TypeError],
    ['maxTokens', null, TypeError],
    ['tokenRatio', 0, RangeError],
    ['tokenRatio', 1.5, RangeError],
    ['tokenRatio', -0.1, RangeError],
    ['tokenRatio', NaN, RangeError],
    ['tokenRatio', '0.1', TypeError],
  ])('%s %j is refused', (key, value, kind) => {
    const error = thrown(() => checkThrottlingOptions('retryThrottling', { [key]: value }));
    expect(error).toBeInstanceOf(kind);
    expect(error.code).toBe(3);
    expect(error.option).toBe(`retryThrottling.${key}`);
  });

  test.each([true, null, 10, 'on', [10, 0.1]])('retryThrottling %j is refused', (value) => {
    const error = thrown(() => checkThrottlingOptions('retryThrottling', value));
    expect(error).toBeInstanceOf(TypeError);
    expect(error.option).toBe('retryThrottling');
    expect(error.message).toContain('false or an object { maxTokens, tokenRatio }');
  });

  test('an unknown key is refused and the known ones are listed', () => {
    const error = thrown(() => checkThrottlingOptions('retryThrottling', { maxTokens: 10, ratio: 0.1 }));
    expect(error).toBeInstanceOf(TypeError);
    expect(error.code).toBe(3);
    expect(error.option).toBe('retryThrottling.ratio');
    expect(error.message).toBe(
      'resilient-grpc: retryThrottling.ratio must be one of the known options (maxTokens, tokenRatio), got an unknown option',
    );
  });
});
