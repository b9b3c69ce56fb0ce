import { afterEach, beforeEach, describe, expect, test, vi } from 'vitest';
import { BackoffSleep } from '../../src/call/backoff-sleep.js';

beforeEach(() => {
  vi.useFakeTimers();
});

afterEach(() => {
  vi.useRealTimers();
});

/** Whether `promise` has settled, after the microtasks queued so far have run. */
async function isSettled(promise: Promise<unknown>): Promise<boolean> {
  let settled = false;
  void promise.then(() => (settled = true));
  await vi.advanceTimersByTimeAsync(0);
  return settled;
}

describe('BackoffSleep', () => {
  test('sleep(ms) resolves after ms, not before', async () => {
    const backoff = new BackoffSleep();
    const sleep = backoff.sleep(1_000);
    expect(backoff.isSleeping).toBe(true);
    await vi.advanceTimersByTimeAsync(999);
    expect(await isSettled(sleep)).toBe(false);
    await vi.advanceTimersByTimeAsync(1);
    expect(await isSettled(sleep)).toBe(true);
    expect(backoff.isSleeping).toBe(false);
    expect(vi.getTimerCount()).toBe(0);
  });

  test('wake() resolves the sleep at once and clears its timer', async () => {
    const backoff = new BackoffSleep();
    const sleep = backoff.sleep(60_000);
    expect(vi.getTimerCount()).toBe(1);
    backoff.wake();
    expect(vi.getTimerCount()).toBe(0);
    expect(backoff.isSleeping).toBe(false);
    expect(await isSettled(sleep)).toBe(true);
  });

  test('wake() with no sleep under way does nothing, and does not cut the next sleep short', async () => {
    const backoff = new BackoffSleep();
    backoff.wake();
    const sleep = backoff.sleep(100);
    expect(await isSettled(sleep)).toBe(false);
    await vi.advanceTimersByTimeAsync(100);
    expect(await isSettled(sleep)).toBe(true);
  });

  test('its timer is not unref()ed: a sleeping retry keeps the process alive', () => {
    const setTimeoutSpy = vi.spyOn(globalThis, 'setTimeout');
    const backoff = new BackoffSleep();
    void backoff.sleep(1_000);
    const timer = setTimeoutSpy.mock.results[0]?.value as NodeJS.Timeout;
    expect(timer.hasRef()).toBe(true);
    setTimeoutSpy.mockRestore();
    backoff.wake();
  });
});
