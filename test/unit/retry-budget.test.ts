import { afterEach, beforeEach, describe, expect, test, vi } from 'vitest';
import { RetryBudget, type RetryBudgetSettings } from '../../src/channel/retry-budget.js';
import { BUDGET_DEFAULTS, checkBudgetOptions } from '../../src/config/throttling-options.js';
import { thrown } from '../helpers/thrown.js';

// The budget reads Date.now(): fake timers move it. Every test starts at 0, a slot boundary.
beforeEach(() => {
  vi.useFakeTimers();
  vi.setSystemTime(0);
});
afterEach(() => {
  vi.useRealTimers();
});

function budget(settings: Partial<RetryBudgetSettings> = {}): RetryBudget {
  return new RetryBudget({ ...BUDGET_DEFAULTS, ...settings });
}

function repeat(times: number, fn: () => void): void {
  for (let i = 0; i < times; i++) fn();
}

/** Withdraws until refused; returns how many were admitted (bounded). */
function drain(b: RetryBudget, limit = 100_000): number {
  let n = 0;
  while (n < limit && b.withdraw()) n++;
  return n;
}

describe('RetryBudget: a share of the successful calls', () => {
  test('a fresh budget holds nothing: no success yet, so no share and no reserve', () => {
    const b = budget();
    expect(b.balance).toBe(0);
    expect(b.canRetry()).toBe(false);
    expect(b.withdraw()).toBe(false);
  });

  test('retryPercent 20 with no floor: 5 successes pay for exactly 1 retry, 50 for exactly 10', () => {
    const b = budget({ minRetriesPerSec: 0 });
    repeat(4, () => b.deposit());
    expect(b.balance).toBeCloseTo(0.8, 10);
    expect(b.canRetry()).toBe(false);
    b.deposit();
    expect(b.balance).toBe(1);
    expect(drain(b)).toBe(1);
    expect(b.balance).toBe(0);
    repeat(50, () => b.deposit());
    expect(drain(b)).toBe(10);
  });

  test('deposits of 0.2 do not drift: 5,000 successes pay for exactly 1,000 retries', () => {
    const b = budget({ minRetriesPerSec: 0 });
    repeat(5_000, () => b.deposit());
    expect(drain(b)).toBe(1_000);
  });

  test('retryPercent 0 gives no share: only the floor', () => {
    const b = budget({ retryPercent: 0, minRetriesPerSec: 1, ttlMs: 2_000 });
    repeat(100, () => b.deposit());
    expect(drain(b)).toBe(2);
  });

  test('a refused withdrawal takes nothing', () => {
    const b = budget({ minRetriesPerSec: 0 });
    repeat(4, () => b.deposit());
    expect(b.withdraw()).toBe(false);
    b.deposit();
    expect(b.withdraw()).toBe(true);
  });

  test('a retry that succeeded gives its token back', () => {
    const b = budget({ minRetriesPerSec: 0 });
    repeat(10, () => b.deposit());
    expect(b.withdraw()).toBe(true);
    expect(b.withdraw()).toBe(true);
    expect(b.canRetry()).toBe(false);
    b.refund(2);
    expect(b.balance).toBe(2);
    b.refund(0);
    expect(b.balance).toBe(2);
    b.refund();
    expect(b.balance).toBe(3);
  });

  test('a retry that failed keeps its token spent', () => {
    const b = budget({ minRetriesPerSec: 0 });
    repeat(10, () => b.deposit());
    b.refund();
    expect(b.withdraw()).toBe(true);
    b.retryFailed();
    expect(b.balance).toBe(2);
  });
});

describe('RetryBudget: the floor (minRetriesPerSec)', () => {
  test('10 per second over a 10 s window is a reserve of exactly 100 retries, once a call has succeeded', () => {
    const b = budget({ retryPercent: 0 });
    expect(drain(b)).toBe(0);
    b.deposit();
    expect(b.balance).toBe(100);
    expect(drain(b)).toBe(100);
    expect(b.canRetry()).toBe(false);
  });

  test('the reserve scales with the window: 10 per second over 2 s is 20', () => {
    const b = budget({ retryPercent: 0, ttlMs: 2_000 });
    b.deposit();
    expect(drain(b)).toBe(20);
  });

  test('the share and the floor add up', () => {
    const b = budget({ retryPercent: 20, minRetriesPerSec: 1, ttlMs: 1_000 });
    repeat(10, () => b.deposit());
    expect(drain(b)).toBe(2 + 1);
  });

  test('the floor counts only while a success is in the window: a total outage leaves nothing', () => {
    const b = budget({ retryPercent: 0 });
    b.deposit();
    vi.advanceTimersByTime(9_999);
    expect(b.balance).toBe(100);
    vi.advanceTimersByTime(1);
    expect(b.balance).toBe(0);
    expect(b.withdraw()).toBe(false);
    // The next success brings the reserve back.
    b.deposit();
    expect(b.canRetry()).toBe(true);
  });

  test('withdrawals from the reserve expire with the window, so the floor is a rate: 100 per 10 s', () => {
    const b = budget({ retryPercent: 0 });
    b.deposit();
    expect(drain(b)).toBe(100);
    vi.advanceTimersByTime(5_000);
    b.deposit();
    expect(drain(b)).toBe(0);
    // The slot of the 100 withdrawals leaves the window at 10 s; the success at 5 s is still in it.
    vi.advanceTimersByTime(5_000);
    expect(drain(b)).toBe(100);
  });
});

describe('RetryBudget: it pays only while its retries work', () => {
  test('one failed retry with none succeeded stops it, whatever it holds', () => {
    const b = budget();
    repeat(100, () => b.deposit());
    expect(b.withdraw()).toBe(true);
    b.retryFailed();
    expect(b.balance).toBe(119);
    expect(b.canRetry()).toBe(false);
    expect(b.withdraw()).toBe(false);
  });

  test('as many failed as succeeded still pays; one more failed stops it; one more succeeded resumes it', () => {
    const b = budget();
    repeat(100, () => b.deposit());
    repeat(3, () => b.refund());
    repeat(3, () => b.retryFailed());
    expect(b.canRetry()).toBe(true);
    b.retryFailed();
    expect(b.canRetry()).toBe(false);
    b.refund();
    expect(b.canRetry()).toBe(true);
  });

  test('the retries that worked count for 2 of the 10 slots (ttlMs / 5), the failed ones for all 10', () => {
    const b = budget();
    b.deposit();
    repeat(3, () => b.refund());
    repeat(3, () => b.retryFailed());
    vi.advanceTimersByTime(1_999);
    expect(b.canRetry()).toBe(true);
    // The slot of the 3 that worked leaves the newest two; the 3 failed ones are still counted.
    vi.advanceTimersByTime(1);
    expect(b.canRetry()).toBe(false);
    // New retries that worked make up for them.
    repeat(3, () => b.refund());
    expect(b.canRetry()).toBe(true);
  });

  test('failed retries leave the window like the rest', () => {
    const b = budget();
    b.retryFailed();
    vi.advanceTimersByTime(1_000);
    b.deposit();
    expect(b.canRetry()).toBe(false);
    vi.advanceTimersByTime(8_999);
    expect(b.canRetry()).toBe(false);
    vi.advanceTimersByTime(1);
    expect(b.canRetry()).toBe(true);
  });
});

describe('RetryBudget: the sliding window (ttlMs)', () => {
  test('a deposit counts until the window has moved past its slot (10 slots of ttlMs / 10)', () => {
    const b = budget({ retryPercent: 100, minRetriesPerSec: 0 });
    b.deposit();
    vi.advanceTimersByTime(9_999);
    expect(b.balance).toBe(1);
    vi.advanceTimersByTime(1);
    expect(b.balance).toBe(0);
  });

  test('a deposit made late in its slot lives between 9/10 and 10/10 of ttlMs', () => {
    const b = budget({ retryPercent: 100, minRetriesPerSec: 0 });
    vi.advanceTimersByTime(999);
    b.deposit();
    vi.advanceTimersByTime(9_000);
    expect(b.balance).toBe(1);
    vi.advanceTimersByTime(1);
    expect(b.balance).toBe(0);
  });

  test('deposits and withdrawals expire slot by slot', () => {
    const b = budget({ retryPercent: 100, minRetriesPerSec: 0 });
    repeat(2, () => b.deposit()); // t = 0: +2
    vi.advanceTimersByTime(5_000);
    repeat(2, () => b.deposit()); // t = 5 s: +2
    expect(drain(b)).toBe(4); // t = 5 s: -4
    expect(b.balance).toBe(0);
    vi.advanceTimersByTime(5_000); // the slot of t = 0 leaves: -2
    expect(b.balance).toBe(-2);
    vi.advanceTimersByTime(5_000); // the slot of t = 5 s leaves: +2 - 4
    expect(b.balance).toBe(0);
  });

  test('after a long quiet spell the window is empty, whatever it held', () => {
    const b = budget({ retryPercent: 100, minRetriesPerSec: 0 });
    repeat(7, () => b.deposit());
    vi.advanceTimersByTime(3_600_000);
    expect(b.balance).toBe(0);
    b.deposit();
    expect(b.balance).toBe(1);
  });

  test('a clock set back keeps the current slot and loses nothing', () => {
    const b = budget({ retryPercent: 100, minRetriesPerSec: 0 });
    vi.setSystemTime(50_000);
    b.deposit();
    vi.setSystemTime(20_000);
    b.deposit();
    expect(b.balance).toBe(2);
    vi.setSystemTime(59_999);
    expect(b.balance).toBe(2);
    vi.setSystemTime(60_000);
    expect(b.balance).toBe(0);
  });
});

describe('RetryBudget under load (simulated, 1 ms steps)', () => {
  /**
   * `perMs` calls start each ms for `ms` ms; a share `failing` of first attempts fail, and the
   * retry the budget pays for ends `retryAfterMs` later: it succeeds (`retriesSucceed`) or fails.
   * Returns the retries refused and paid.
   */
  function simulate(b: RetryBudget, o: { ms: number; perMs: number; failing: number; retriesSucceed: boolean; retryAfterMs: number }) {
    let refused = 0;
    let paid = 0;
    let failures = 0;
    const pending: number[] = [];
    for (let t = 0; t < o.ms; t++) {
      while (pending.length > 0 && pending[0]! <= t) {
        pending.shift();
        if (o.retriesSucceed) {
          b.deposit();
          b.refund();
        } else b.retryFailed();
      }
      for (let i = 0; i < o.perMs; i++) {
        failures += o.failing;
        if (failures >= 1) {
          failures -= 1;
          if (b.withdraw()) {
            paid++;
            pending.push(t + o.retryAfterMs);
          } else refused++;
        } else b.deposit();
      }
      vi.advanceTimersByTime(1);
    }
    return { refused, paid };
  }

  test('1,000 calls/s, a third failing, retries landing on healthy endpoints 100 ms later: never refused after the first success', () => {
    const b = budget();
    b.deposit();
    const { refused, paid } = simulate(b, { ms: 30_000, perMs: 1, failing: 1 / 3, retriesSucceed: true, retryAfterMs: 100 });
    expect(refused).toBe(0);
    expect(paid).toBeGreaterThan(9_000);
  });

  test('a total outage after 10 s of healthy traffic: it pays only for the retries started before the first one failed', () => {
    const b = budget();
    simulate(b, { ms: 10_000, perMs: 1, failing: 0, retriesSucceed: true, retryAfterMs: 1 });
    // Now (t = 10 s) the first second has left the window: 9,000 successes in it, 1,800 tokens of
    // share, and 100 of reserve.
    expect(b.balance).toBe(1_900);
    // 1,000 calls/s, every one failing, each retry failing 50 ms after it was paid for: the
    // budget pays for the 50 retries of the first 50 ms, then for none.
    const outage = simulate(b, { ms: 20_000, perMs: 1, failing: 1, retriesSucceed: false, retryAfterMs: 50 });
    expect(outage.paid).toBe(50);
    expect(b.canRetry()).toBe(false);
    const later = simulate(b, { ms: 10_000, perMs: 1, failing: 1, retriesSucceed: false, retryAfterMs: 50 });
    expect(later.paid).toBe(0);
  });

  test('the same outage after a flapping endpoint (retries that worked): it pays for no more failed retries than worked lately', () => {
    const b = budget();
    // A sixth of the calls fail and are retried with success for 10 s: 1,667 retries worked,
    // 333 in each 2 s.
    const flap = simulate(b, { ms: 10_000, perMs: 1, failing: 1 / 6, retriesSucceed: true, retryAfterMs: 50 });
    expect(flap.refused).toBe(0);
    expect(flap.paid).toBeGreaterThan(1_600);
    const outage = simulate(b, { ms: 20_000, perMs: 1, failing: 1, retriesSucceed: false, retryAfterMs: 50 });
    // At most the ~333 that worked in the last 2 s fail, plus the 50 in flight when they run out.
    expect(outage.paid).toBeGreaterThan(0);
    expect(outage.paid).toBeLessThanOrEqual(333 + 50);
    expect(simulate(b, { ms: 10_000, perMs: 1, failing: 1, retriesSucceed: false, retryAfterMs: 50 }).paid).toBe(0);
  });
});

describe('checkBudgetOptions', () => {
  test('undefined gives the defaults: 10 s, 20 %, 10 per second', () => {
    expect(checkBudgetOptions('retryBudget', undefined)).toEqual({ ttlMs: 10_000, retryPercent: 20, minRetriesPerSec: 10 });
  });

  test('false turns the budget off', () => {
    expect(checkBudgetOptions('retryBudget', false)).toBe(false);
  });

  test('missing or undefined fields take their default; the bounds are inclusive', () => {
    expect(checkBudgetOptions('retryBudget', {})).toEqual(BUDGET_DEFAULTS);
    expect(checkBudgetOptions('retryBudget', { retryPercent: undefined, ttlMs: 1_000 })).toEqual({ ...BUDGET_DEFAULTS, ttlMs: 1_000 });
    expect(checkBudgetOptions('retryBudget', { ttlMs: 60_000, retryPercent: 100, minRetriesPerSec: 1_000 })).toEqual({
      ttlMs: 60_000,
      retryPercent: 100,
      minRetriesPerSec: 1_000,
    });
    expect(checkBudgetOptions('retryBudget', { retryPercent: 0, minRetriesPerSec: 0 })).toEqual({
      ...BUDGET_DEFAULTS,
      retryPercent: 0,
      minRetriesPerSec: 0,
    });
  });

  test.each([
    ['ttlMs', 999, RangeError],
    ['ttlMs', 60_001, RangeError],
    ['ttlMs', 1_500.5, RangeError],
    ['ttlMs', NaN, RangeError],
    ['ttlMs', '10000', TypeError],
    ['retryPercent', -1, RangeError],
    ['retryPercent', 100.5, RangeError],
    ['retryPercent', NaN, RangeError],
    ['retryPercent', Infinity, RangeError],
    ['retryPercent', '20', TypeError],
    ['minRetriesPerSec', -1, RangeError],
    ['minRetriesPerSec', 1.5, RangeError],
    ['minRetriesPerSec', 1_001, RangeError],
    ['minRetriesPerSec', null, TypeError],
  ])('%s %j is refused, naming the option and the value', (key, value, kind) => {
    const error = thrown(() => checkBudgetOptions('retryBudget', { [key]: value }));
    expect(error).toBeInstanceOf(kind);
    expect(error.code).toBe(3);
    expect(error.option).toBe(`retryBudget.${key}`);
    expect(error.message).toContain(`retryBudget.${key} must be`);
    expect(error.message).toContain(`got ${typeof value === 'string' ? JSON.stringify(value) : String(value)}`);
  });

  test.each([true, null, 20, 'on'])('retryBudget %j is refused', (value) => {
    const error = thrown(() => checkBudgetOptions('retryBudget', value));
    expect(error).toBeInstanceOf(TypeError);
    expect(error.option).toBe('retryBudget');
    expect(error.message).toContain('false or an object { ttlMs, retryPercent, minRetriesPerSec }');
  });

  test('an unknown key is refused with the known ones listed', () => {
    const error = thrown(() => checkBudgetOptions('retryBudget', { percentCanRetry: 0.2 }));
    expect(error.option).toBe('retryBudget.percentCanRetry');
    expect(error.message).toContain('(ttlMs, retryPercent, minRetriesPerSec)');
  });
});
