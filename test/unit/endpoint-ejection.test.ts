import { beforeEach, describe, expect, test } from 'vitest';
import {
  admits,
  EndpointTracker,
  type EjectionSettings,
  type EndpointBook,
  type EndpointEjection,
  type EndpointStats,
} from '../../src/channel/endpoint-ejection.js';
import type { AttemptOutcome } from '../../src/core/status-meaning.js';

// The ejection books of one channel's endpoints, on an injected clock: nothing in the tracker
// runs on a timer, it evaluates when an attempt is reported or an endpoint is asked about. The
// failure-percentage tests run with consecutiveFailures 0 (that rule off), so that they see the
// A50 books alone; the consecutive-failure, probe, silent and not-serving rules have their own.

const SETTINGS: EjectionSettings = {
  intervalMs: 1_000,
  failurePercentage: 50,
  requestVolume: 5,
  baseEjectionTimeMs: 3_000,
  maxEjectionTimeMs: 30_000,
  maxEjectionPercent: 50,
  consecutiveFailures: 0,
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
    expect(changes).toEqual([
      { target: TARGET, address: A, ejected: true, reason: 'failure-percentage', failurePercentage: 100, ejectedForMs: 3_000 },
    ]);
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
    expect(changes).toEqual([
      { target: TARGET, address: A, ejected: true, reason: 'failure-percentage', failurePercentage: 50, ejectedForMs: 3_000 },
    ]);
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
    expect(changes).toEqual([
      { target: TARGET, address: A, ejected: true, reason: 'failure-percentage', failurePercentage: 100, ejectedForMs: 3_000 },
    ]);
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

  test('100 %: every failing endpoint is ejected but the last one in rotation (there is nowhere else to go)', () => {
    const t = tracker({ maxEjectionPercent: 100 }, [A, B, C]);
    interval(t, { [A]: [0, 10], [B]: [0, 10], [C]: [0, 10] });
    expect(ejected(t)).toEqual([A, B]);
  });

  test('the cap counts every endpoint with a book, judged or not', () => {
    // 4 endpoints, 50 %: 2 allowed although only 3 have traffic.
    const t = tracker({ maxEjectionPercent: 50 }, [A, B, C, D]);
    interval(t, { [A]: [0, 10], [B]: [0, 10], [C]: [10, 0] });
    expect(ejected(t)).toEqual([A, B]);
  });
});

function bookOf(t: EndpointTracker, address: string): EndpointBook {
  const book = t.bookOf(address);
  if (book === undefined) throw new Error(`no book for ${address}`);
  return book;
}

function statsOf(t: EndpointTracker, address: string): EndpointStats {
  return t.stats().find((s) => s.address === address)!;
}

/** The probe of `address`, as the picker and the attempt make it: picked, judged `outcome`, ended. */
function probe(t: EndpointTracker, address: string, outcome: AttemptOutcome): void {
  const pickedAt = now;
  expect(t.picked(bookOf(t, address), true)).toBe(true);
  expect(statsOf(t, address).probe).toBe('in-flight');
  t.record(address, outcome, true);
  t.released(bookOf(t, address), pickedAt, false);
}

/** Moves the clock, with B's traffic only, until `address` is due for its probe. */
function waitForProbe(t: EndpointTracker, address: string): void {
  for (let i = 0; i < 100 && statsOf(t, address).probe !== 'due'; i++) interval(t, { [B]: [10, 0] });
  expect(statsOf(t, address).probe).toBe('due');
}

describe('ejection time and the probe back', () => {
  test('when its time is up an ejected endpoint is due for one probe; a successful probe returns it, with an event', () => {
    const t = tracker();
    interval(t, { [A]: [0, 10], [B]: [10, 0] });
    const ejectedAt = now;
    expect(statsOf(t, A)).toMatchObject({
      ejected: true,
      ejectionReason: 'failure-percentage',
      ejectedUntil: ejectedAt + 3_000,
      probe: 'waiting',
    });
    now += 2_999;
    expect(t.isEjected(A)).toBe(true);
    expect(statsOf(t, A).probe).toBe('waiting');
    now += 1;
    t.refresh();
    // Time is up: due for its probe, still out of rotation (nothing returns it but the probe).
    expect(statsOf(t, A)).toMatchObject({ ejected: true, probe: 'due' });
    expect(admits(bookOf(t, A), true)).toBe(true);
    // An attempt whose outcome would not be heard (no link) cannot be the probe.
    expect(admits(bookOf(t, A), false)).toBe(false);
    probe(t, A, 'success');
    expect(statsOf(t, A)).toMatchObject({
      ejected: false,
      ejectionReason: undefined,
      ejectedUntil: undefined,
      probe: 'none',
      ejections: 1,
    });
    expect(changes).toEqual([
      { target: TARGET, address: A, ejected: true, reason: 'failure-percentage', failurePercentage: 100, ejectedForMs: 3_000 },
      { target: TARGET, address: A, ejected: false, reason: 'failure-percentage', failurePercentage: 100, ejectedForMs: 0 },
    ]);
  });

  test('exactly one probe: while it is out the endpoint admits no other attempt', () => {
    const t = tracker();
    interval(t, { [A]: [0, 10], [B]: [10, 0] });
    waitForProbe(t, A);
    const a = bookOf(t, A);
    expect(t.picked(a, true)).toBe(true);
    expect(admits(a, true)).toBe(false);
    // A second pick that lands on it anyway (every endpoint shunned) is not a probe.
    expect(t.picked(a, true)).toBe(false);
    expect(statsOf(t, A)).toMatchObject({ probe: 'in-flight', outstanding: 2 });
  });

  test('a failed probe ejects it again, for longer (the multiplier)', () => {
    const t = tracker();
    interval(t, { [A]: [0, 10], [B]: [10, 0] });
    waitForProbe(t, A);
    const before = now;
    probe(t, A, 'failure');
    expect(statsOf(t, A)).toMatchObject({
      ejected: true,
      ejectionReason: 'failure-percentage',
      probe: 'waiting',
      ejectedUntil: before + 6_000,
      ejections: 2,
    });
    expect(changes.at(-1)).toEqual({
      target: TARGET,
      address: A,
      ejected: true,
      reason: 'failure-percentage',
      failurePercentage: 100,
      ejectedForMs: 6_000,
    });
    expect(changes.filter((c) => !c.ejected)).toEqual([]);
  });

  test("a probe that ends 'ignored' (aborted by the caller) or is never judged leaves the endpoint due for another", () => {
    const t = tracker();
    interval(t, { [A]: [0, 10], [B]: [10, 0] });
    waitForProbe(t, A);
    const a = bookOf(t, A);
    t.picked(a, true);
    t.record(A, 'ignored', true);
    expect(statsOf(t, A).probe).toBe('due');
    t.picked(a, true);
    t.probeLost(a);
    expect(statsOf(t, A).probe).toBe('due');
  });

  test('each further ejection lasts base × multiplier, capped at maxEjectionTimeMs', () => {
    const t = tracker({ baseEjectionTimeMs: 3_000, maxEjectionTimeMs: 7_000 });
    interval(t, { [A]: [0, 10], [B]: [10, 0] });
    const lengths = [changes.at(-1)!.ejectedForMs];
    for (let round = 0; round < 3; round++) {
      waitForProbe(t, A);
      probe(t, A, 'failure');
      lengths.push(changes.at(-1)!.ejectedForMs);
    }
    expect(lengths).toEqual([3_000, 6_000, 7_000, 7_000]);
    expect(statsOf(t, A).ejections).toBe(4);
  });

  test('a maxEjectionTimeMs under the base time leaves the base time', () => {
    const t = tracker({ baseEjectionTimeMs: 3_000, maxEjectionTimeMs: 1_000 });
    interval(t, { [A]: [0, 10], [B]: [10, 0] });
    expect(changes[0]!.ejectedForMs).toBe(3_000);
  });

  /** Ejects A, waits for its probe and lets it succeed; returns the ejection's length. */
  function ejectAndReturn(t: EndpointTracker): number {
    interval(t, { [A]: [0, 10], [B]: [10, 0] });
    const forMs = changes.at(-1)!.ejectedForMs;
    waitForProbe(t, A);
    probe(t, A, 'success');
    expect(t.isEjected(A)).toBe(false);
    return forMs;
  }

  test('the multiplier shrinks by one per clean interval in rotation', () => {
    const t = tracker();
    expect(ejectAndReturn(t)).toBe(3_000);
    expect(ejectAndReturn(t)).toBe(6_000);
    expect(ejectAndReturn(t)).toBe(9_000);
    // Multiplier 3; one clean interval with traffic for A (the probe's own): 2; the next ejection is the 3rd again.
    interval(t, { [A]: [10, 0], [B]: [10, 0] });
    expect(ejectAndReturn(t)).toBe(9_000);
    // Multiplier 3; three clean intervals: 0; the next ejection is a first one.
    for (let i = 0; i < 3; i++) interval(t, { [A]: [10, 0], [B]: [10, 0] });
    expect(ejectAndReturn(t)).toBe(3_000);
  });

  test('an interval with a failure under the threshold does not shrink the multiplier', () => {
    const t = tracker();
    expect(ejectAndReturn(t)).toBe(3_000);
    // The probe's interval: 1 success, then 1 of 10 failed in it: not clean.
    record(t, A, 'failure', 1);
    interval(t, { [A]: [9, 0], [B]: [10, 0] });
    expect(ejected(t)).toEqual([]);
    expect(ejectAndReturn(t)).toBe(6_000);
  });
});

describe('consecutive failures', () => {
  test('consecutiveFailures failures in a row eject at once, without waiting for the interval', () => {
    const t = tracker({ consecutiveFailures: 5 });
    record(t, A, 'failure', 4);
    expect(statsOf(t, A)).toMatchObject({ ejected: false, consecutiveFailures: 4 });
    t.record(A, 'failure');
    expect(statsOf(t, A)).toMatchObject({
      ejected: true,
      ejectionReason: 'consecutive-failures',
      ejectedUntil: now + 3_000,
      consecutiveFailures: 0,
    });
    expect(changes).toEqual([
      { target: TARGET, address: A, ejected: true, reason: 'consecutive-failures', failurePercentage: 0, ejectedForMs: 3_000 },
    ]);
  });

  test('a success in between starts the count again; ignored outcomes do not', () => {
    const t = tracker({ consecutiveFailures: 3 });
    record(t, A, 'failure', 2);
    t.record(A, 'success');
    record(t, A, 'failure', 2);
    t.record(A, 'ignored');
    expect(ejected(t)).toEqual([]);
    t.record(A, 'failure');
    expect(ejected(t)).toEqual([A]);
  });

  test('consecutiveFailures 0 turns the rule off', () => {
    const t = tracker({ consecutiveFailures: 0, requestVolume: 1_000 });
    record(t, A, 'failure', 500);
    expect(ejected(t)).toEqual([]);
  });

  test('the cap holds: with 1 of 2 out, the other is not ejected however many failures in a row', () => {
    const t = tracker({ consecutiveFailures: 2 }, [A, B]);
    record(t, A, 'failure', 2);
    record(t, B, 'failure', 50);
    expect(ejected(t)).toEqual([A]);
    expect(changes.filter((c) => c.ejected)).toHaveLength(1);
  });

  test('never the last endpoint in rotation, even with the cap at 100 %', () => {
    const t = tracker({ consecutiveFailures: 2, maxEjectionPercent: 100 }, [A, B, C]);
    for (const address of [A, B, C]) record(t, address, 'failure', 2);
    expect(ejected(t)).toEqual([A, B]);
  });

  test('a single endpoint is never ejected', () => {
    const t = tracker({ consecutiveFailures: 1 }, [A]);
    record(t, A, 'failure', 10);
    expect(ejected(t)).toEqual([]);
  });

  test('failures of attempts still in flight when the endpoint was ejected do not move it', () => {
    const t = tracker({ consecutiveFailures: 2 });
    record(t, A, 'failure', 2);
    const until = statsOf(t, A).ejectedUntil;
    record(t, A, 'failure', 5);
    expect(statsOf(t, A)).toMatchObject({ ejectedUntil: until, ejections: 1, probe: 'waiting' });
  });
});

describe('outstanding attempts and silence', () => {
  test('picked() adds an outstanding attempt, released() takes it off', () => {
    const t = tracker();
    const a = bookOf(t, A);
    t.picked(a, true);
    t.picked(a, false);
    expect(statsOf(t, A).outstanding).toBe(2);
    t.released(a, now, false);
    t.released(a, now, false);
    t.released(a, now, false);
    expect(statsOf(t, A).outstanding).toBe(0);
  });

  test('heard() keeps the latest time per endpoint; unknown addresses are ignored', () => {
    const t = tracker();
    expect(statsOf(t, A).lastHeardAt).toBeUndefined();
    t.heard(A, now + 5);
    t.heard(A, now + 2);
    t.heard('10.9.9.9:1', now);
    expect(statsOf(t, A).lastHeardAt).toBe(now + 5);
    expect(t.stats().map((s) => s.address)).toEqual([A, B]);
  });

  test("a deadline run out with nothing heard from the endpoint, while another answered, ejects it as 'silent'", () => {
    const t = tracker();
    const pickedAt = now;
    t.picked(bookOf(t, A), true);
    now += 1_000;
    t.heard(B, now - 10);
    t.released(bookOf(t, A), pickedAt, true);
    expect(statsOf(t, A)).toMatchObject({ ejected: true, ejectionReason: 'silent', outstanding: 0 });
    expect(changes).toEqual([{ target: TARGET, address: A, ejected: true, reason: 'silent', failurePercentage: 0, ejectedForMs: 3_000 }]);
  });

  test('not silent: the endpoint was heard since the pick, or no endpoint was (a local stall), or the attempt was heard', () => {
    const t = tracker();
    const pickedAt = now;
    const a = bookOf(t, A);
    // Nobody heard since the pick: it may be this process that stalled.
    t.picked(a, true);
    now += 1_000;
    t.released(a, pickedAt, true);
    // A was heard since the pick (its other calls answer): a slow call, not a silent endpoint.
    t.picked(a, true);
    t.heard(A, now);
    t.heard(B, now);
    t.released(a, pickedAt, true);
    // Not a silent timeout.
    t.picked(a, true);
    t.released(a, now - 1, false);
    expect(ejected(t)).toEqual([]);
  });
});

describe('serving (health checks)', () => {
  test("setServing(false) takes the endpoint out with reason 'not-serving'; true brings it back", () => {
    const t = tracker({}, [A, B, C]);
    t.setServing(A, false);
    t.setServing(A, false);
    expect(statsOf(t, A)).toMatchObject({ ejected: true, ejectionReason: 'not-serving', serving: false, ejections: 0, probe: 'none' });
    expect(admits(bookOf(t, A), true)).toBe(false);
    t.setServing(A, true);
    expect(statsOf(t, A)).toMatchObject({ ejected: false, ejectionReason: undefined, serving: true });
    expect(changes).toEqual([
      { target: TARGET, address: A, ejected: true, reason: 'not-serving', failurePercentage: 0, ejectedForMs: 0 },
      { target: TARGET, address: A, ejected: false, reason: 'not-serving', failurePercentage: 0, ejectedForMs: 0 },
    ]);
  });

  test('not serving does not count against maxEjectionPercent, but an ejection still leaves one endpoint serving', () => {
    const t = tracker({ consecutiveFailures: 1 }, [A, B, C, D]);
    t.setServing(A, false);
    t.record(B, 'failure');
    t.record(C, 'failure');
    // 4 endpoints at 50 %: B and C both out, A not serving, D left.
    expect(ejected(t)).toEqual([A, B, C]);
    const two = tracker({ consecutiveFailures: 1 }, [A, B]);
    two.setServing(A, false);
    two.record(B, 'failure');
    expect(statsOf(two, B).ejected).toBe(false);
  });
});

describe('addresses and stats', () => {
  const fresh = (address: string): EndpointStats => ({
    address,
    ejected: false,
    ejectionReason: undefined,
    ejectedUntil: undefined,
    probe: 'none',
    outstanding: 0,
    lastHeardAt: undefined,
    serving: true,
    attempts: 0,
    failures: 0,
    consecutiveFailures: 0,
    ejections: 0,
  });

  test('setAddresses adds a book per new address and removes the books of gone ones', () => {
    const t = tracker({}, [B, A]);
    expect(t.stats()).toEqual([fresh(A), fresh(B)]);
    record(t, A, 'failure', 2);
    t.setAddresses([A, C]);
    expect(t.stats().map((s) => s.address)).toEqual([A, C]);
    // A kept its book.
    expect(t.stats()[0]).toMatchObject({ attempts: 2, failures: 2 });
    // B comes back with a new book.
    t.setAddresses([A, B, C]);
    expect(t.stats()[1]).toEqual(fresh(B));
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
      { ...fresh(A), attempts: 8, failures: 2, consecutiveFailures: 1 },
      { ...fresh(B), attempts: 4, failures: 0 },
      { ...fresh(C), attempts: 4, failures: 2, consecutiveFailures: 1 },
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
    t.heard(A, now);
    t.setServing(A, false);
    expect(t.stats().map((s) => s.address)).toEqual([B]);
  });
});
