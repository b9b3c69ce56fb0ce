import { status } from '@grpc/grpc-js';
import { describe, expect, test } from 'vitest';
import { AdaptiveThrottle, throttleVerdict, type AdaptiveThrottleSettings } from '../../src/channel/adaptive-throttle.js';
import {
  ADAPTIVE_THROTTLING_DEFAULTS,
  checkAdaptiveThrottlingOptions,
  resolveAdaptiveThrottling,
} from '../../src/config/adaptive-throttling-options.js';
import { thrown } from '../helpers/thrown.js';

// The throttle takes its clock and its random source as arguments: every test here is
// deterministic, with no timer at all.

class Clock {
  ms = 0;
  readonly now = (): number => this.ms;
}

function throttle(
  settings: Partial<AdaptiveThrottleSettings>,
  clock = new Clock(),
  random: () => number = () => 0.5,
  onChange?: ConstructorParameters<typeof AdaptiveThrottle>[1],
): AdaptiveThrottle {
  return new AdaptiveThrottle({ ...ADAPTIVE_THROTTLING_DEFAULTS, ...settings }, onChange, clock.now, random);
}

// grpc-go's balancer/rls/internal/adaptive/adaptive_test.go, TestShouldThrottleOptions: one bin,
// a clock that never moves, a random draw fixed at 0.5; before each decision the backend's
// response is registered (T: throttled by the backend, A: accepted).
const RESPONSES = 'TTTTTTTTTAAAAAATTTT';
const n = false;
const y = true;
const GRPC_GO_CASES = [
  { desc: 'Baseline', acceptMultiplier: 1.1, requestPadding: 8, want: [n, n, n, n, n, n, n, n, y, y, y, y, y, n, n, n, y, y, y] },
  { desc: 'ChangePadding', acceptMultiplier: 1.1, requestPadding: 7, want: [n, n, n, n, n, n, n, y, y, y, y, y, y, y, y, y, y, y, y] },
  {
    desc: 'ChangeRatioForAccepts',
    acceptMultiplier: 1.4,
    requestPadding: 8,
    want: [n, n, n, n, n, n, n, n, y, y, n, n, n, n, n, n, n, n, n],
  },
];

describe("AdaptiveThrottle: grpc-go's published decision sequences", () => {
  for (const c of GRPC_GO_CASES) {
    test(`${c.desc}: K ${c.acceptMultiplier}, padding ${c.requestPadding}, random 0.5`, () => {
      // No cap (grpc-go has none); one bin over the window, the clock fixed at 0.
      const t = throttle({ acceptMultiplier: c.acceptMultiplier, requestPadding: c.requestPadding, maxRejectPercent: 100, bins: 1 });
      const got = [...RESPONSES].map((response) => {
        t.record(response === 'A');
        return !t.admits();
      });
      expect(got).toEqual(c.want);
    });
  }

  // TestRegisterBackendResponse: 3 bins (1 ms each here, 1 ns there), responses at scripted
  // ticks, E for no response; the accepts and the throttles (requests - accepts) after each.
  const REGISTER_CASES = [
    { desc: 'Accumulate', bins: 3, ticks: [0, 1, 2], responses: 'ATE', accepts: [1, 1, 1], throttled: [0, 1, 1] },
    { desc: 'LightTimeTravel', bins: 3, ticks: [1, 0, 2], responses: 'ATE', accepts: [1, 1, 1], throttled: [0, 1, 1] },
    { desc: 'HeavyTimeTravel', bins: 3, ticks: [8, 0, 9], responses: 'AAA', accepts: [1, 1, 2], throttled: [0, 0, 0] },
    { desc: 'Rollover', bins: 1, ticks: [0, 1, 2], responses: 'ATE', accepts: [1, 0, 0], throttled: [0, 1, 0] },
  ];
  for (const c of REGISTER_CASES) {
    test(`counts responses in bins: ${c.desc}`, () => {
      const clock = new Clock();
      const t = throttle({ bins: c.bins, windowMs: c.bins }, clock);
      c.ticks.forEach((tick, i) => {
        clock.ms = tick;
        const response = c.responses[i];
        if (response !== 'E') t.record(response === 'A');
        const { accepts, requests } = t.stats();
        expect([accepts, requests - accepts], `index ${i}`).toEqual([c.accepts[i], c.throttled[i]]);
      });
    });
  }
});

describe('AdaptiveThrottle: the reject probability', () => {
  test('is max(0, (requests - K x accepts) / (requests + padding)): 10 refusals and 2 accepts at K 2, padding 8 give 8/20', () => {
    const t = throttle({});
    for (let i = 0; i < 10; i++) t.record(false);
    t.record(true);
    t.record(true);
    expect(t.stats()).toMatchObject({ requests: 12, accepts: 2, rejectProbability: 8 / 20 });
  });

  test('is 0 while the servers accept at least half the requests (K 2): no random number is drawn', () => {
    let draws = 0;
    const t = throttle({}, new Clock(), () => {
      draws++;
      return 0;
    });
    for (let i = 0; i < 1000; i++) {
      t.record(i % 2 === 0);
      expect(t.admits()).toBe(true);
    }
    expect(t.rejectProbability).toBe(0);
    expect(draws).toBe(0);
  });

  test('never exceeds maxRejectPercent: every request refused, 80 % cap, the draws 0 to 0.99 reject exactly 80 of 100', () => {
    const draws = Array.from({ length: 100 }, (_, i) => i / 100);
    let k = 0;
    const t = throttle({}, new Clock(), () => draws[k++ % draws.length]!);
    for (let i = 0; i < 10_000; i++) t.record(false);
    expect(t.rejectProbability).toBe(0.8);
    let rejected = 0;
    for (let i = 0; i < 100; i++) if (!t.admits()) rejected++;
    expect(rejected).toBe(80);
    expect(t.stats().rejected).toBe(80);
  });

  test('a local rejection counts as a request without an accept (the SRE book, grpc-go)', () => {
    const t = throttle({}, new Clock(), () => 0);
    for (let i = 0; i < 10; i++) t.record(false);
    expect(t.admits()).toBe(false);
    expect(t.stats()).toMatchObject({ requests: 11, accepts: 0, rejected: 1 });
  });
});

describe('AdaptiveThrottle: the window', () => {
  test('counts expire with their bin: 30 s in 100 bins of 300 ms; a refusal at 0 still counts at 29.9 s, not at 30 s', () => {
    const clock = new Clock();
    const t = throttle({}, clock);
    for (let i = 0; i < 100; i++) t.record(false);
    clock.ms = 29_999;
    expect(t.stats().requests).toBe(100);
    expect(t.rejectProbability).toBeGreaterThan(0);
    clock.ms = 30_000;
    expect(t.stats()).toMatchObject({ requests: 0, accepts: 0, rejectProbability: 0 });
  });

  test('bins rotate one by one: refusals 10 s apart leave the window 30 s after each', () => {
    const clock = new Clock();
    const t = throttle({}, clock);
    for (const at of [0, 10_000, 20_000]) {
      clock.ms = at;
      for (let i = 0; i < 10; i++) t.record(false);
    }
    for (const [at, requests] of [
      [29_999, 30],
      [30_000, 20],
      [40_000, 10],
      [50_000, 0],
    ] as const) {
      clock.ms = at;
      expect(t.stats().requests, `at ${at} ms`).toBe(requests);
    }
  });

  test('a long silence empties the window in one step, however long', () => {
    const clock = new Clock();
    const t = throttle({}, clock);
    for (let i = 0; i < 50; i++) t.record(false);
    clock.ms = 10 * 24 * 3600_000;
    expect(t.stats().requests).toBe(0);
    t.record(true);
    expect(t.stats()).toMatchObject({ requests: 1, accepts: 1 });
  });

  test('reports when it starts shedding and when it stops, not each rejection', () => {
    const clock = new Clock();
    const changes: Array<{ shedding: boolean; rejected: number }> = [];
    const t = throttle(
      {},
      clock,
      () => 0,
      (change) => changes.push({ shedding: change.shedding, rejected: change.rejected }),
    );
    for (let i = 0; i < 20; i++) t.record(false);
    for (let i = 0; i < 5; i++) expect(t.admits()).toBe(false);
    expect(changes).toEqual([{ shedding: true, rejected: 1 }]);
    expect(t.isShedding).toBe(true);
    clock.ms = 30_000;
    expect(t.admits()).toBe(true);
    expect(changes).toEqual([
      { shedding: true, rejected: 1 },
      { shedding: false, rejected: 5 },
    ]);
    expect(t.stats().shedding).toBe(false);
    expect(t.isShedding).toBe(false);
  });
});

describe('throttleVerdict: what counts', () => {
  test.each([
    ['OK', status.OK, 'accept'],
    ['NOT_FOUND (the server answered)', status.NOT_FOUND, 'accept'],
    ['INTERNAL (the server took it)', status.INTERNAL, 'accept'],
    ['RESOURCE_EXHAUSTED from a server', status.RESOURCE_EXHAUSTED, 'reject'],
    ['UNAVAILABLE', status.UNAVAILABLE, 'reject'],
    ['DEADLINE_EXCEEDED (a clock of ours)', status.DEADLINE_EXCEEDED, 'ignore'],
    ['CANCELLED', status.CANCELLED, 'ignore'],
  ] as const)('%s: %s', (_name, code, verdict) => {
    expect(throttleVerdict(code, false)).toBe(verdict);
  });

  test('a failure of our own counts neither way, whatever its code', () => {
    expect(throttleVerdict(status.UNAVAILABLE, true)).toBe('ignore');
    expect(throttleVerdict(status.RESOURCE_EXHAUSTED, true)).toBe('ignore');
  });
});

describe('adaptiveThrottling options', () => {
  test('undefined and false pass; {} resolves to the defaults (K 2, padding 8, 80 %, 30 s in 100 bins)', () => {
    expect(checkAdaptiveThrottlingOptions('adaptiveThrottling', undefined)).toBeUndefined();
    expect(checkAdaptiveThrottlingOptions('adaptiveThrottling', false)).toBe(false);
    expect(resolveAdaptiveThrottling({})).toEqual({
      acceptMultiplier: 2,
      requestPadding: 8,
      maxRejectPercent: 80,
      windowMs: 30_000,
      bins: 100,
    });
    expect(resolveAdaptiveThrottling({ windowMs: 10_000 })).toMatchObject({ windowMs: 10_000, bins: 100 });
  });

  test.each([
    [{ acceptMultiplier: 0.5 }, RangeError, 'adaptiveThrottling.acceptMultiplier must be a number from 1 to 100'],
    [{ acceptMultiplier: '2' }, TypeError, 'adaptiveThrottling.acceptMultiplier must be a number'],
    [{ requestPadding: -1 }, RangeError, 'adaptiveThrottling.requestPadding must be a number from 0 to 1000'],
    [{ maxRejectPercent: 101 }, RangeError, 'adaptiveThrottling.maxRejectPercent must be a number from 0 to 100'],
    [{ windowMs: 999 }, RangeError, 'adaptiveThrottling.windowMs must be an integer number of milliseconds from 1000 to 600000'],
    [{ bins: 2.5 }, RangeError, 'adaptiveThrottling.bins must be an integer from 1 to 1000'],
    [{ window: 1000 }, TypeError, 'adaptiveThrottling.window must be one of the known options'],
    [true, TypeError, 'adaptiveThrottling must be false or an object'],
  ])('%o is refused naming the option and the value', (value, kind, message) => {
    const error = thrown(() => checkAdaptiveThrottlingOptions('adaptiveThrottling', value));
    expect(error).toBeInstanceOf(kind);
    expect((error as Error).message).toContain(message);
  });
});
