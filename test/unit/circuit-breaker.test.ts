import { afterEach, beforeEach, describe, expect, test, vi } from 'vitest';
import { Breaker, BucketRotation, type BreakerStateChange } from '../../src/channel/circuit-breaker.js';
import { resolveBreaker, type BreakerOptions } from '../../src/config/breaker-options.js';
import type { AttemptOutcome } from '../../src/core/status-meaning.js';
import type { Resolved } from '../../src/config/check-helpers.js';

// Every state transition of the breaker (opossum 9.0 inside), driven by fake timers: opossum
// reads Date.now() and arms a setTimeout for the reset; the bucket rotation is a setInterval.

const OPTIONS = { errorThresholdPercentage: 50, volumeThreshold: 4, windowMs: 1_000, resetTimeoutMs: 500 };

let rotation: BucketRotation;
let changes: Array<Omit<BreakerStateChange, 'target'>>;
let breaker: Breaker;

function makeBreaker(options: BreakerOptions = OPTIONS, method?: string): Breaker {
  return new Breaker(resolveBreaker(options) as Resolved<BreakerOptions>, method, rotation, (change) => changes.push(change));
}

function record(outcome: AttemptOutcome, times = 1): void {
  for (let i = 0; i < times; i++) {
    expect(breaker.begin()).toBe(true);
    breaker.record(outcome, 1);
  }
}

/** Opens the circuit from closed with 4 failures (100 % of the volume threshold). */
function open(): void {
  record('failure', OPTIONS.volumeThreshold);
  expect(breaker.stats().state).toBe('open');
}

/** Opens the circuit, then waits the reset timeout: the circuit is half-open. */
async function halfOpen(): Promise<void> {
  open();
  await vi.advanceTimersByTimeAsync(OPTIONS.resetTimeoutMs);
  expect(breaker.stats().state).toBe('half-open');
}

/** Takes the half-open probe's ticket. */
function probe(): (outcome: AttemptOutcome) => void {
  const ticket = breaker.begin();
  expect(typeof ticket).toBe('function');
  return ticket as (outcome: AttemptOutcome) => void;
}

beforeEach(() => {
  vi.useFakeTimers();
  vi.setSystemTime(new Date('2030-01-01T00:00:00Z'));
  rotation = new BucketRotation();
  changes = [];
  breaker = makeBreaker();
});

afterEach(() => {
  breaker.shutdown();
  rotation.close();
  vi.useRealTimers();
});

describe('closed', () => {
  test('admits every attempt and reports the closed state', () => {
    expect(breaker.begin()).toBe(true);
    expect(breaker.stats()).toEqual({ method: undefined, state: 'closed', rejected: 0, opened: 0, nextProbeAt: undefined });
  });

  test('does not open below the volume threshold, however many of the attempts failed', () => {
    record('failure', OPTIONS.volumeThreshold - 1);
    expect(breaker.stats().state).toBe('closed');
    expect(changes).toEqual([]);
  });

  test('opens once volumeThreshold outcomes are in the window and the failure rate exceeds the threshold', () => {
    record('success', 2);
    record('failure', 2);
    // 2 of 4 is 50 %: not above the threshold.
    expect(breaker.stats().state).toBe('closed');
    record('failure');
    // 3 of 5 is 60 %.
    expect(breaker.stats().state).toBe('open');
    expect(changes).toEqual([{ method: undefined, state: 'open', previous: 'closed', reason: 'error-threshold' }]);
    expect(breaker.stats().opened).toBe(1);
  });

  test('a success never opens the circuit, even above the failure rate', () => {
    breaker.shutdown();
    breaker = makeBreaker({ ...OPTIONS, volumeThreshold: 1 });
    record('success', 10);
    expect(breaker.stats().state).toBe('closed');
  });

  test("'ignored' outcomes count neither as failure nor as volume", () => {
    record('failure', 3);
    record('ignored', 10);
    // 3 real outcomes: still under the volume threshold of 4, and the ignored ones did not dilute the rate.
    expect(breaker.stats().state).toBe('closed');
    record('success');
    // 3 of 4 failed: had the 10 ignored ones counted as successes (3 of 14), it would stay closed.
    expect(breaker.stats().state).toBe('closed');
    record('failure');
    expect(breaker.stats().state).toBe('open');
  });

  test('reports the method of a method-scoped breaker', () => {
    breaker.shutdown();
    breaker = makeBreaker(OPTIONS, '/pkg.Svc/Get');
    open();
    expect(changes[0]?.method).toBe('/pkg.Svc/Get');
    expect(breaker.stats().method).toBe('/pkg.Svc/Get');
  });
});

describe('the rolling window', () => {
  test('failures older than windowMs are forgotten (the BucketRotation controller rotates the buckets)', async () => {
    record('failure', OPTIONS.volumeThreshold - 1);
    await vi.advanceTimersByTimeAsync(OPTIONS.windowMs);
    // The 3 old failures left the window: one more is 1 outcome, under the volume threshold.
    record('failure');
    expect(breaker.stats().state).toBe('closed');
    record('failure', OPTIONS.volumeThreshold - 2);
    expect(breaker.stats().state).toBe('closed');
    record('failure');
    expect(breaker.stats().state).toBe('open');
  });

  test('failures within the window are kept', async () => {
    record('failure', OPTIONS.volumeThreshold - 1);
    // 9 of the 10 buckets rotated: the failures are still in the last one.
    await vi.advanceTimersByTimeAsync(OPTIONS.windowMs - OPTIONS.windowMs / 10);
    record('failure');
    expect(breaker.stats().state).toBe('open');
  });

  test('one rotation timer per bucket interval, shared by the breakers of a pool', () => {
    const before = vi.getTimerCount();
    const others = [makeBreaker(), makeBreaker(), makeBreaker({ ...OPTIONS, volumeThreshold: 9 })];
    expect(vi.getTimerCount()).toBe(before);
    const other = makeBreaker({ ...OPTIONS, windowMs: 2_000 });
    expect(vi.getTimerCount()).toBe(before + 1);
    for (const b of [...others, other]) b.shutdown();
  });

  test('BucketRotation.close() clears its timers', () => {
    expect(vi.getTimerCount()).toBe(1);
    rotation.controller(5_000);
    expect(vi.getTimerCount()).toBe(2);
    rotation.close();
    expect(vi.getTimerCount()).toBe(0);
  });
});

describe('open', () => {
  test('refuses every attempt and counts the refusals', () => {
    open();
    expect(breaker.begin()).toBe(false);
    expect(breaker.begin()).toBe(false);
    expect(breaker.stats().rejected).toBe(2);
  });

  test('nextProbeAt is resetTimeoutMs after opening; now while not open', async () => {
    const openedAt = Date.now();
    expect(breaker.nextProbeAt).toBe(openedAt);
    open();
    expect(breaker.nextProbeAt).toBe(openedAt + OPTIONS.resetTimeoutMs);
    expect(breaker.stats().nextProbeAt).toBe(openedAt + OPTIONS.resetTimeoutMs);
    await vi.advanceTimersByTimeAsync(OPTIONS.resetTimeoutMs);
    expect(breaker.stats().nextProbeAt).toBeUndefined();
    expect(breaker.nextProbeAt).toBe(Date.now());
  });

  test("goes half-open after resetTimeoutMs ('reset-timeout'), not before", async () => {
    open();
    await vi.advanceTimersByTimeAsync(OPTIONS.resetTimeoutMs - 1);
    expect(breaker.stats().state).toBe('open');
    await vi.advanceTimersByTimeAsync(1);
    expect(breaker.stats().state).toBe('half-open');
    expect(changes.at(-1)).toEqual({ method: undefined, state: 'half-open', previous: 'open', reason: 'reset-timeout' });
  });

  test('outcomes of attempts admitted before it opened do not move it or count twice', () => {
    const late = [breaker.begin(), breaker.begin()];
    expect(late).toEqual([true, true]);
    open();
    breaker.record('failure', 1);
    breaker.record('success', 1);
    expect(breaker.stats()).toMatchObject({ state: 'open', opened: 1 });
    expect(changes).toHaveLength(1);
  });
});

describe('half-open', () => {
  test('admits exactly one probe; further attempts are refused and counted', async () => {
    await halfOpen();
    probe();
    expect(breaker.begin()).toBe(false);
    expect(breaker.begin()).toBe(false);
    expect(breaker.stats()).toMatchObject({ state: 'half-open', rejected: 2 });
  });

  test("a successful probe closes the circuit ('probe-succeeded')", async () => {
    await halfOpen();
    probe()('success');
    await vi.advanceTimersByTimeAsync(0);
    expect(breaker.stats().state).toBe('closed');
    expect(changes.at(-1)).toEqual({ method: undefined, state: 'closed', previous: 'half-open', reason: 'probe-succeeded' });
    expect(breaker.begin()).toBe(true);
  });

  test("a failed probe opens it again ('probe-failed'), with a new reset timeout", async () => {
    await halfOpen();
    probe()('failure');
    await vi.advanceTimersByTimeAsync(0);
    expect(breaker.stats()).toMatchObject({ state: 'open', opened: 2, nextProbeAt: Date.now() + OPTIONS.resetTimeoutMs });
    expect(changes.at(-1)).toEqual({ method: undefined, state: 'open', previous: 'half-open', reason: 'probe-failed' });
    expect(breaker.begin()).toBe(false);
    await vi.advanceTimersByTimeAsync(OPTIONS.resetTimeoutMs);
    expect(breaker.stats().state).toBe('half-open');
  });

  test("an ignored probe opens it again ('probe-inconclusive'), and another probe follows after resetTimeoutMs", async () => {
    await halfOpen();
    probe()('ignored');
    await vi.advanceTimersByTimeAsync(0);
    expect(breaker.stats().state).toBe('open');
    expect(changes.at(-1)).toEqual({ method: undefined, state: 'open', previous: 'half-open', reason: 'probe-inconclusive' });
    await vi.advanceTimersByTimeAsync(OPTIONS.resetTimeoutMs);
    expect(breaker.stats().state).toBe('half-open');
    probe()('success');
    await vi.advanceTimersByTimeAsync(0);
    expect(breaker.stats().state).toBe('closed');
    expect(changes.map((c) => c.reason)).toEqual([
      'error-threshold',
      'reset-timeout',
      'probe-inconclusive',
      'reset-timeout',
      'probe-succeeded',
    ]);
  });

  test('a probe that never reports keeps the circuit half-open and refusing', async () => {
    await halfOpen();
    probe();
    await vi.advanceTimersByTimeAsync(10 * OPTIONS.resetTimeoutMs);
    expect(breaker.stats().state).toBe('half-open');
    expect(breaker.begin()).toBe(false);
  });

  test('with windowMs <= resetTimeoutMs (the defaults), the failures that opened it have left the window when it closes', async () => {
    breaker.shutdown();
    breaker = makeBreaker({ ...OPTIONS, windowMs: 500 });
    await halfOpen();
    probe()('success');
    await vi.advanceTimersByTimeAsync(0);
    record('failure');
    expect(breaker.stats().state).toBe('closed');
  });

  // FINDING (not a README promise, so marked test.fails): opossum does not reset its window when
  // the circuit closes, so with resetTimeoutMs < windowMs the failures that opened the circuit are
  // still counted after a successful probe, and the next single failure reopens it at once
  // ('error-threshold'). Hystrix and resilience4j start a closed circuit with empty counters.
  // Remove `.fails` if the breaker is changed to start afresh on close.
  test('after a successful probe with resetTimeoutMs < windowMs, one failure does not reopen the circuit', async () => {
    await halfOpen();
    probe()('success');
    await vi.advanceTimersByTimeAsync(0);
    record('failure');
    expect(breaker.stats().state).toBe('closed');
  });

  // FINDING (inherited from opossum, pinned so a change is seen): an attempt admitted while the
  // circuit was closed that fails during half-open reopens it with reason 'probe-failed', although
  // the probe has not answered; the probe's later success is then dropped (the circuit is open).
  test('an attempt admitted while closed that fails during half-open reopens the circuit, and the probe answer is lost', async () => {
    const straggler = breaker.begin();
    expect(straggler).toBe(true);
    await halfOpen();
    const ticket = probe();
    breaker.record('failure', 1);
    expect(breaker.stats().state).toBe('open');
    expect(changes.at(-1)?.reason).toBe('probe-failed');
    ticket('success');
    await vi.advanceTimersByTimeAsync(0);
    expect(breaker.stats().state).toBe('open');
  });

  test('an attempt admitted while closed that succeeds during half-open closes the circuit (as in opossum)', async () => {
    const straggler = breaker.begin();
    expect(straggler).toBe(true);
    await halfOpen();
    breaker.record('success', 1);
    expect(breaker.stats().state).toBe('closed');
  });
});

describe('shutdown', () => {
  test('clears the reset timer of an open circuit', () => {
    open();
    // The rotation interval and opossum's reset timeout.
    expect(vi.getTimerCount()).toBe(2);
    breaker.shutdown();
    expect(vi.getTimerCount()).toBe(1);
    rotation.close();
    expect(vi.getTimerCount()).toBe(0);
  });

  test('no state change is reported after shutdown', async () => {
    open();
    breaker.shutdown();
    await vi.advanceTimersByTimeAsync(10 * OPTIONS.resetTimeoutMs);
    expect(changes).toHaveLength(1);
  });
});

describe('probeNow: the connection was replaced for silence', () => {
  test('an open circuit goes half-open at once; a successful probe closes it', async () => {
    open();
    breaker.probeNow();
    expect(breaker.stats()).toMatchObject({ state: 'half-open', nextProbeAt: undefined });
    expect(changes.at(-1)).toEqual({ method: undefined, state: 'half-open', previous: 'open', reason: 'connection-replaced' });
    const ticket = probe();
    expect(breaker.admits).toBe(false);
    ticket('success');
    expect(breaker.stats().state).toBe('closed');
    expect(changes.at(-1)).toMatchObject({ state: 'closed', previous: 'half-open', reason: 'probe-succeeded' });
    // opossum's reset timer is gone with the close: nothing moves later.
    const count = changes.length;
    await vi.advanceTimersByTimeAsync(OPTIONS.resetTimeoutMs * 2);
    expect(changes).toHaveLength(count);
    expect(breaker.stats().state).toBe('closed');
  });

  test('a failed early probe opens it again for a fresh reset timeout, with one event', async () => {
    open();
    await vi.advanceTimersByTimeAsync(300);
    breaker.probeNow();
    const before = changes.length;
    probe()('failure');
    expect(breaker.stats().state).toBe('open');
    expect(changes.slice(before)).toEqual([{ method: undefined, state: 'open', previous: 'half-open', reason: 'probe-failed' }]);
    // The first reset timer (due 200 ms from now) was replaced by a fresh one.
    await vi.advanceTimersByTimeAsync(OPTIONS.resetTimeoutMs - 1);
    expect(breaker.stats().state).toBe('open');
    expect(breaker.admits).toBe(false);
    await vi.advanceTimersByTimeAsync(1);
    expect(breaker.stats().state).toBe('half-open');
    probe()('success');
    expect(breaker.stats().state).toBe('closed');
  });

  test('the original reset timer firing while the early probe is out changes nothing', async () => {
    open();
    breaker.probeNow();
    const ticket = probe();
    const before = changes.length;
    await vi.advanceTimersByTimeAsync(OPTIONS.resetTimeoutMs);
    expect(changes).toHaveLength(before);
    expect(breaker.admits).toBe(false);
    ticket('success');
    expect(breaker.stats().state).toBe('closed');
  });

  test('a closed or half-open circuit is left as it is', async () => {
    breaker.probeNow();
    expect(breaker.stats().state).toBe('closed');
    await halfOpen();
    const before = changes.length;
    breaker.probeNow();
    expect(changes).toHaveLength(before);
  });
});
