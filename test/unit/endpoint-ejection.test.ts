import { beforeEach, describe, expect, test } from 'vitest';
import { EndpointTracker, type EjectionSettings, type EndpointEjection } from '../../src/channel/endpoint-ejection.js';
import type { AttemptOutcome } from '../../src/core/status-meaning.js';

// The ejection books of one channel's endpoints, on an injected clock: nothing in the tracker
// runs on a timer, it evaluates when an attempt is reported or an endpoint is asked about.

const SETTINGS: EjectionSettings = {
  intervalMs: 1_000,
  failurePercentage: 50,
  requestVolume: 5,
  baseEjectionTimeMs: 3_000,
  maxEjectionTimeMs: 30_000,
  maxEjectionPercent: 50,
};
const TARGET = 'dns:///svc:50051';
const A = '10.0.0.1:50051';
const B = '10.0.0.2:50051';
const C = '10.0.0.3:50051';
const D = '10.0.0.4:50051';

let now: number;
let changes: EndpointEjection[];

function tracker(settings: Partial<EjectionSettings> = {}, addresses: readonly string[] = [A, B]): EndpointTracker {
  const t = new EndpointTracker(
    TARGET,
    { ...SETTINGS, ...settings },
    (change) => changes.push(change),
    () => now,
  );
  t.setAddresses(addresses);
  return t;
}

function record(t: EndpointTracker, address: string, outcome: AttemptOutcome, times: number): void {
  for (let i = 0; i < times; i++) t.record(address, outcome);
}

/** Traffic per address as [successes, failures], then the clock moves one interval and the books are evaluated. */
function interval(t: EndpointTracker, traffic: Record<string, readonly [number, number]>, ms = SETTINGS.intervalMs): void {
  for (const [address, [ok, failed]] of Object.entries(traffic)) {
    record(t, address, 'success', ok);
    record(t, address, 'failure', failed);
  }
  now += ms;
  // Asking about an address the tracker does not know evaluates the books without adding one.
  t.isEjected('unknown:1');
}

function ejected(t: EndpointTracker): string[] {
  return t
    .stats()
    .filter((s) => s.ejected)
    .map((s) => s.address);
}

beforeEach(() => {
  now = 1_000_000;
  changes = [];
});

describe('evaluation', () => {
  test('nothing is judged before intervalMs has passed, however many attempts failed', () => {
    const t = tracker();
    record(t, A, 'failure', 50);
    record(t, B, 'success', 50);
    now += SETTINGS.intervalMs - 1;
    expect(t.isEjected(A)).toBe(false);
    record(t, A, 'failure', 1);
    expect(changes).toEqual([]);
    now += 1;
    expect(t.isEjected(A)).toBe(true);
    expect(changes).toEqual([{ target: TARGET, address: A, ejected: true, failurePercentage: 100, ejectedForMs: 3_000 }]);
  });

  test('the attempt reported when the interval is up is counted in it', () => {
    const t = tracker();
    record(t, A, 'failure', 4);
    record(t, B, 'success', 5);
    now += SETTINGS.intervalMs;
    // The fifth failure reaches the request volume and closes the interval.
    t.record(A, 'failure');
    expect(t.isEjected(A)).toBe(true);
  });

  test('the next interval starts when the books were evaluated, not on a fixed grid', () => {
    const t = tracker();
    now += 1_500;
    t.isEjected(A);
    record(t, A, 'failure', 5);
    record(t, B, 'success', 5);
    now += 999;
    expect(t.isEjected(A)).toBe(false);
    now += 1;
    expect(t.isEjected(A)).toBe(true);
  });

  test('each interval starts with empty counts: failures of an earlier interval are not added to a later one', () => {
    const t = tracker();
    interval(t, { [A]: [0, 4], [B]: [5, 0] });
    // 4 then 4 more: never 5 in one interval.
    interval(t, { [A]: [0, 4], [B]: [5, 0] });
    expect(changes).toEqual([]);
    interval(t, { [A]: [0, 5], [B]: [5, 0] });
    expect(ejected(t)).toEqual([A]);
  });
});

describe('who is ejected', () => {
  test('an endpoint failing at exactly failurePercentage is ejected; one just under is not', () => {
    const t = tracker({}, [A, B, C, D]);
    // A: 5 of 10 (50 %); B: 4 of 10 (40 %); C, D healthy. maxEjectionPercent 50 allows 2 of 4.
    interval(t, { [A]: [5, 5], [B]: [6, 4], [C]: [10, 0], [D]: [10, 0] });
    expect(ejected(t)).toEqual([A]);
    expect(changes).toEqual([{ target: TARGET, address: A, ejected: true, failurePercentage: 50, ejectedForMs: 3_000 }]);
  });

  test('the failurePercentage setting is used', () => {
    const t = tracker({ failurePercentage: 30 }, [A, B, C, D]);
    interval(t, { [A]: [7, 3], [B]: [8, 2], [C]: [10, 0], [D]: [10, 0] });
    expect(ejected(t)).toEqual([A]);
    expect(changes[0]!.failurePercentage).toBe(30);
  });

  test('an endpoint is judged only with requestVolume attempts in the interval', () => {
    const t = tracker();
    interval(t, { [A]: [0, 4], [B]: [50, 0] });
    expect(changes).toEqual([]);
    expect(ejected(t)).toEqual([]);
  });

  test('never with only one endpoint judged: with one, there is nowhere else to go', () => {
    const t = tracker({}, [A, B]);
    // B has 4 attempts, under the request volume: only A is judged.
    interval(t, { [A]: [0, 100], [B]: [4, 0] });
    expect(ejected(t)).toEqual([]);
    const single = tracker({}, [A]);
    for (let i = 0; i < 5; i++) interval(single, { [A]: [0, 100] });
    expect(ejected(single)).toEqual([]);
    expect(changes).toEqual([]);
  });

  test('a healthy endpoint is not ejected with the sick one', () => {
    const t = tracker({}, [A, B, C, D]);
    interval(t, { [A]: [0, 10], [B]: [10, 0], [C]: [10, 0], [D]: [10, 0] });
    expect(ejected(t)).toEqual([A]);
    expect(t.isEjected(B)).toBe(false);
  });

  test("'ignored' outcomes count neither way, not even as volume", () => {
    const t = tracker();
    // 100 ignored and 4 failures: 4 attempts, under the volume.
    record(t, A, 'ignored', 100);
    interval(t, { [A]: [0, 4], [B]: [5, 0] });
    expect(ejected(t)).toEqual([]);
    // 100 ignored do not dilute 5 failures either: 100 %.
    record(t, A, 'ignored', 100);
    interval(t, { [A]: [0, 5], [B]: [5, 0] });
    expect(changes).toEqual([{ target: TARGET, address: A, ejected: true, failurePercentage: 100, ejectedForMs: 3_000 }]);
    expect(t.stats().find((s) => s.address === A)).toMatchObject({ attempts: 9, failures: 9 });
  });

  test("an 'ignored' outcome for an unknown address adds no book", () => {
    const t = tracker();
    t.record(C, 'ignored');
    expect(t.stats().map((s) => s.address)).toEqual([A, B]);
  });
});

describe('maxEjectionPercent', () => {
  test.each([
    ['1 of 2 failing', [A, B], [A], [A]],
    ['2 of 2 failing', [A, B], [A, B], [A]],
    ['2 of 3 failing', [A, B, C], [A, B], [A]],
    ['3 of 3 failing', [A, B, C], [A, B, C], [A]],
    ['3 of 4 failing', [A, B, C, D], [A, B, C], [A, B]],
  ])('50 %%, %s: the share is capped, and at least one ejection is allowed', (_name, addresses, failing, out) => {
    const t = tracker({ maxEjectionPercent: 50 }, addresses);
    const traffic = Object.fromEntries(
      addresses.map((address) => [address, failing.includes(address) ? ([0, 10] as const) : ([10, 0] as const)]),
    );
    interval(t, traffic);
    expect(ejected(t)).toEqual(out);
    // The cap holds in later intervals while the ejected ones are out.
    const remaining = Object.fromEntries(Object.entries(traffic).filter(([address]) => !out.includes(address)));
    interval(t, remaining);
    expect(ejected(t)).toEqual(out);
    expect(changes.filter((c) => c.ejected).map((c) => c.address)).toEqual(out);
  });

  test.each([0, 10])('%i %%: one ejection is still allowed (documented)', (maxEjectionPercent) => {
    const t = tracker({ maxEjectionPercent });
    interval(t, { [A]: [0, 10], [B]: [10, 0] });
    expect(ejected(t)).toEqual([A]);
  });

  test('100 %: every failing endpoint is ejected', () => {
    const t = tracker({ maxEjectionPercent: 100 }, [A, B, C]);
    interval(t, { [A]: [0, 10], [B]: [0, 10], [C]: [0, 10] });
    expect(ejected(t)).toEqual([A, B, C]);
  });

  test('the cap counts every endpoint with a book, judged or not', () => {
    // 4 endpoints, 50 %: 2 allowed although only 3 have traffic.
    const t = tracker({ maxEjectionPercent: 50 }, [A, B, C, D]);
    interval(t, { [A]: [0, 10], [B]: [0, 10], [C]: [10, 0] });
    expect(ejected(t)).toEqual([A, B]);
  });
});

describe('ejection time and return', () => {
  test('an ejected endpoint returns at the first evaluation once its time is up, with an event', () => {
    const t = tracker();
    interval(t, { [A]: [0, 10], [B]: [10, 0] });
    const ejectedAt = now;
    expect(t.stats().find((s) => s.address === A)!.ejectedUntil).toBe(ejectedAt + 3_000);
    interval(t, { [B]: [10, 0] });
    interval(t, { [B]: [10, 0] });
    now += 999;
    // 2999 ms after the ejection, and within the interval: still out.
    expect(t.isEjected(A)).toBe(true);
    now += 1;
    expect(t.isEjected(A)).toBe(false);
    expect(changes).toEqual([
      { target: TARGET, address: A, ejected: true, failurePercentage: 100, ejectedForMs: 3_000 },
      { target: TARGET, address: A, ejected: false, failurePercentage: 100, ejectedForMs: 0 },
    ]);
    expect(t.stats().find((s) => s.address === A)).toMatchObject({ ejected: false, ejectedUntil: undefined, ejections: 1 });
  });

  test('the return waits for an evaluation: a quiet tracker returns the endpoint when next asked', () => {
    const t = tracker();
    interval(t, { [A]: [0, 10], [B]: [10, 0] });
    now += 60_000;
    expect(changes).toHaveLength(1);
    expect(t.isEjected(A)).toBe(false);
    expect(changes[1]).toMatchObject({ address: A, ejected: false, ejectedForMs: 0 });
  });

  test('each further ejection lasts base × multiplier, capped at maxEjectionTimeMs', () => {
    const t = tracker({ baseEjectionTimeMs: 3_000, maxEjectionTimeMs: 7_000 });
    const ejections: number[] = [];
    for (let round = 0; round < 4; round++) {
      interval(t, { [A]: [0, 10], [B]: [10, 0] });
      const out = changes.at(-1)!;
      expect(out).toMatchObject({ address: A, ejected: true });
      ejections.push(out.ejectedForMs);
      // Wait it out, with only B's traffic (no clean interval for A: it has none).
      const until = t.stats().find((s) => s.address === A)!.ejectedUntil!;
      while (t.isEjected(A)) {
        expect(now).toBeLessThan(until + SETTINGS.intervalMs);
        interval(t, { [B]: [10, 0] });
      }
      expect(changes.at(-1)).toMatchObject({ address: A, ejected: false });
    }
    expect(ejections).toEqual([3_000, 6_000, 7_000, 7_000]);
    expect(t.stats().find((s) => s.address === A)!.ejections).toBe(4);
  });

  test('a maxEjectionTimeMs under the base time leaves the base time', () => {
    const t = tracker({ baseEjectionTimeMs: 3_000, maxEjectionTimeMs: 1_000 });
    interval(t, { [A]: [0, 10], [B]: [10, 0] });
    expect(changes[0]!.ejectedForMs).toBe(3_000);
  });

  /** Ejects A, then waits until it is back; returns the ejection's length. */
  function ejectAndWait(t: EndpointTracker): number {
    interval(t, { [A]: [0, 10], [B]: [10, 0] });
    const forMs = changes.at(-1)!.ejectedForMs;
    for (let i = 0; i < 100 && t.isEjected(A); i++) interval(t, { [B]: [10, 0] });
    expect(t.isEjected(A)).toBe(false);
    return forMs;
  }

  test('the multiplier shrinks by one per clean interval after a return', () => {
    const t = tracker();
    expect(ejectAndWait(t)).toBe(3_000);
    expect(ejectAndWait(t)).toBe(6_000);
    expect(ejectAndWait(t)).toBe(9_000);
    // Multiplier 3; one clean interval with traffic for A: 2; the next ejection is the 3rd again.
    interval(t, { [A]: [10, 0], [B]: [10, 0] });
    expect(ejectAndWait(t)).toBe(9_000);
    // Multiplier 3; three clean intervals: 0; the next ejection is a first one.
    for (let i = 0; i < 3; i++) interval(t, { [A]: [10, 0], [B]: [10, 0] });
    expect(ejectAndWait(t)).toBe(3_000);
  });

  test('an interval with a failure under the threshold does not shrink the multiplier', () => {
    const t = tracker();
    expect(ejectAndWait(t)).toBe(3_000);
    // 1 of 10 failed: not ejected, but not clean either.
    interval(t, { [A]: [9, 1], [B]: [10, 0] });
    expect(ejected(t)).toEqual([]);
    expect(ejectAndWait(t)).toBe(6_000);
  });

  test('the multiplier does not shrink while the endpoint is out', () => {
    const t = tracker({ baseEjectionTimeMs: 5_000 });
    expect(ejectAndWait(t)).toBe(5_000);
    // The second ejection spans 10 intervals without traffic for A; the third is still 3 × base.
    expect(ejectAndWait(t)).toBe(10_000);
    expect(ejectAndWait(t)).toBe(15_000);
  });
});

describe('addresses and stats', () => {
  test('setAddresses adds a book per new address and removes the books of gone ones', () => {
    const t = tracker({}, [B, A]);
    expect(t.stats()).toEqual([
      { address: A, ejected: false, ejectedUntil: undefined, attempts: 0, failures: 0, ejections: 0, serving: true },
      { address: B, ejected: false, ejectedUntil: undefined, attempts: 0, failures: 0, ejections: 0, serving: true },
    ]);
    record(t, A, 'failure', 2);
    t.setAddresses([A, C]);
    expect(t.stats().map((s) => s.address)).toEqual([A, C]);
    // A kept its book.
    expect(t.stats()[0]).toMatchObject({ attempts: 2, failures: 2 });
    // B comes back with a new book.
    t.setAddresses([A, B, C]);
    expect(t.stats()[1]).toEqual({
      address: B,
      ejected: false,
      ejectedUntil: undefined,
      attempts: 0,
      failures: 0,
      ejections: 0,
      serving: true,
    });
  });

  test('a removed endpoint that was ejected is forgotten, without a return event', () => {
    const t = tracker();
    interval(t, { [A]: [0, 10], [B]: [10, 0] });
    t.setAddresses([B, C]);
    expect(t.isEjected(A)).toBe(false);
    expect(changes.filter((c) => !c.ejected)).toEqual([]);
  });

  test('stats() is sorted by address and keeps totals across intervals', () => {
    const t = tracker({}, [C, A, B]);
    interval(t, { [A]: [3, 1], [B]: [2, 0], [C]: [1, 1] });
    interval(t, { [A]: [3, 1], [B]: [2, 0], [C]: [1, 1] });
    t.record(B, 'ignored');
    expect(t.stats()).toEqual([
      { address: A, ejected: false, ejectedUntil: undefined, attempts: 8, failures: 2, ejections: 0, serving: true },
      { address: B, ejected: false, ejectedUntil: undefined, attempts: 4, failures: 0, ejections: 0, serving: true },
      { address: C, ejected: false, ejectedUntil: undefined, attempts: 4, failures: 2, ejections: 0, serving: true },
    ]);
  });

  test('stats() of an ejected endpoint shows when it returns', () => {
    const t = tracker();
    interval(t, { [A]: [0, 10], [B]: [10, 0] });
    expect(t.stats()).toEqual([
      { address: A, ejected: true, ejectedUntil: now + 3_000, attempts: 10, failures: 10, ejections: 1, serving: true },
      { address: B, ejected: false, ejectedUntil: undefined, attempts: 10, failures: 0, ejections: 0, serving: true },
    ]);
  });

  test('setServing records what the health check says, per endpoint; an unknown address is ignored', () => {
    const t = tracker({}, [A, B]);
    t.setServing(A, false);
    t.setServing(C, false);
    expect(t.stats().map((s) => [s.address, s.serving])).toEqual([
      [A, false],
      [B, true],
    ]);
    t.setServing(A, true);
    expect(t.stats()[0]!.serving).toBe(true);
  });

  // Found by this test (fixed): an attempt still in flight when the resolver dropped its
  // endpoint used to bring the gone endpoint back into stats() and the maxEjectionPercent cap.
  test('a late outcome for a removed endpoint does not bring its book back', () => {
    const t = tracker({}, [A, B]);
    t.setAddresses([B]);
    t.record(A, 'failure');
    expect(t.stats().map((s) => s.address)).toEqual([B]);
  });
});
