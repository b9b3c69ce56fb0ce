import { afterEach, beforeEach, describe, expect, test, vi } from 'vitest';
import { ConnectWatchdog } from '../../src/channel/connect-watchdog.js';

beforeEach(() => {
  vi.useFakeTimers();
});

afterEach(() => {
  vi.useRealTimers();
});

describe('ConnectWatchdog', () => {
  test('reports a CONNECTING spell once it lasts limitMs, with how long it lasted', () => {
    const onStuck = vi.fn();
    const watchdog = new ConnectWatchdog(1_000, onStuck);
    watchdog.onState(true);
    expect(watchdog.isTiming).toBe(true);
    vi.advanceTimersByTime(999);
    expect(onStuck).not.toHaveBeenCalled();
    vi.advanceTimersByTime(1);
    expect(onStuck).toHaveBeenCalledTimes(1);
    expect(onStuck).toHaveBeenCalledWith(1_000);
    expect(watchdog.isTiming).toBe(false);
  });

  test('fires once per spell: staying CONNECTING does not fire again', () => {
    const onStuck = vi.fn();
    const watchdog = new ConnectWatchdog(1_000, onStuck);
    watchdog.onState(true);
    vi.advanceTimersByTime(10_000);
    expect(onStuck).toHaveBeenCalledTimes(1);
    expect(vi.getTimerCount()).toBe(0);
  });

  test('a new spell after leaving CONNECTING is timed afresh', () => {
    const onStuck = vi.fn();
    const watchdog = new ConnectWatchdog(1_000, onStuck);
    watchdog.onState(true);
    vi.advanceTimersByTime(1_000);
    watchdog.onState(false);
    watchdog.onState(true);
    vi.advanceTimersByTime(1_000);
    expect(onStuck).toHaveBeenCalledTimes(2);
  });

  test('leaving CONNECTING before limitMs cancels the timer', () => {
    const onStuck = vi.fn();
    const watchdog = new ConnectWatchdog(1_000, onStuck);
    watchdog.onState(true);
    vi.advanceTimersByTime(900);
    watchdog.onState(false);
    expect(watchdog.isTiming).toBe(false);
    expect(vi.getTimerCount()).toBe(0);
    vi.advanceTimersByTime(10_000);
    expect(onStuck).not.toHaveBeenCalled();
  });

  test('CONNECTING reported again restarts the spell (one timer, not two)', () => {
    const onStuck = vi.fn();
    const watchdog = new ConnectWatchdog(1_000, onStuck);
    watchdog.onState(true);
    vi.advanceTimersByTime(600);
    watchdog.onState(true);
    expect(vi.getTimerCount()).toBe(1);
    vi.advanceTimersByTime(600);
    expect(onStuck).not.toHaveBeenCalled();
    vi.advanceTimersByTime(400);
    expect(onStuck).toHaveBeenCalledExactlyOnceWith(1_000);
  });

  test('the elapsed time comes from the injected clock', () => {
    let now = 5_000;
    const onStuck = vi.fn();
    const watchdog = new ConnectWatchdog(1_000, onStuck, () => now);
    watchdog.onState(true);
    now = 6_250;
    vi.advanceTimersByTime(1_000);
    expect(onStuck).toHaveBeenCalledWith(1_250);
  });

  test('its timer is unref()ed: it never keeps the process alive', () => {
    const setTimeoutSpy = vi.spyOn(globalThis, 'setTimeout');
    const watchdog = new ConnectWatchdog(1_000, () => {});
    watchdog.onState(true);
    expect(setTimeoutSpy).toHaveBeenCalledTimes(1);
    const timer = setTimeoutSpy.mock.results[0]?.value as NodeJS.Timeout;
    expect(timer.hasRef()).toBe(false);
    setTimeoutSpy.mockRestore();
    watchdog.stop();
  });

  test('stop() cancels a spell being timed; idempotent', () => {
    const onStuck = vi.fn();
    const watchdog = new ConnectWatchdog(1_000, onStuck);
    watchdog.onState(true);
    watchdog.stop();
    watchdog.stop();
    expect(watchdog.isTiming).toBe(false);
    expect(vi.getTimerCount()).toBe(0);
    vi.advanceTimersByTime(10_000);
    expect(onStuck).not.toHaveBeenCalled();
  });
  test('with backoff, each report doubles the limit up to 10 minutes, until connected()', () => {
    const onStuck = vi.fn();
    const watchdog = new ConnectWatchdog(20_000, onStuck, undefined, true);
    const limits: number[] = [];
    for (let i = 0; i < 8; i++) {
      limits.push(watchdog.currentLimitMs);
      watchdog.onState(true);
      vi.advanceTimersByTime(watchdog.currentLimitMs - 1);
      expect(onStuck).toHaveBeenCalledTimes(i);
      vi.advanceTimersByTime(1);
      expect(onStuck).toHaveBeenCalledTimes(i + 1);
    }
    expect(limits).toEqual([20_000, 40_000, 80_000, 160_000, 320_000, 600_000, 600_000, 600_000]);
    watchdog.connected();
    expect(watchdog.currentLimitMs).toBe(20_000);
  });

  test('without backoff the limit never changes', () => {
    const watchdog = new ConnectWatchdog(1_000, vi.fn());
    watchdog.onState(true);
    vi.advanceTimersByTime(1_000);
    expect(watchdog.currentLimitMs).toBe(1_000);
  });
});
