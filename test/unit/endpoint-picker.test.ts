import { experimental, Metadata } from '@grpc/grpc-js';
import { beforeEach, describe, expect, test } from 'vitest';
import { EndpointTracker, type EjectionSettings, type EndpointEjection } from '../../src/channel/endpoint-ejection.js';
import { attemptHeard, endAttempt, judgeAttempt, linkAttempt, type AttemptLink } from '../../src/channel/endpoint-link.js';
import { LeastRequestPicker, type PickEntry } from '../../src/channel/endpoint-picker.js';

// The least-request picker (gRFC A48, two random choices) over fake leaf pickers, with an
// injected random source and clock: which endpoint it chooses, and how the outstanding counts,
// the probe and the silent rule follow an attempt's link from its pick to its end.

const ATTEMPT_KEY = 'x-resilient-grpc-attempt';
const A = '10.0.0.1:50051';
const B = '10.0.0.2:50051';
const C = '10.0.0.3:50051';

const SETTINGS: EjectionSettings = {
  intervalMs: 1_000,
  failurePercentage: 50,
  requestVolume: 5,
  baseEjectionTimeMs: 3_000,
  maxEjectionTimeMs: 30_000,
  maxEjectionPercent: 50,
  consecutiveFailures: 5,
};

let now: number;
let draws: number[];
let changes: EndpointEjection[];
/** The leaf pickers answer QUEUE while true (a leaf that has just left READY). */
let queue: boolean;

function tracker(addresses: readonly string[] = [A, B, C]): EndpointTracker {
  const t = new EndpointTracker(
    'dns:///svc:50051',
    SETTINGS,
    (change) => changes.push(change),
    () => now,
    () => {
      const next = draws.shift();
      if (next === undefined) throw new Error('the picker drew more random numbers than the test scripted');
      return next;
    },
  );
  t.setAddresses(addresses);
  return t;
}

function leaf(address: string): experimental.Picker {
  const subchannel = { getAddress: () => address } as unknown as experimental.SubchannelInterface;
  return {
    pick: () =>
      queue
        ? { pickResultType: experimental.PickResultType.QUEUE, subchannel: null, status: null, onCallStarted: null, onCallEnded: null }
        : { pickResultType: experimental.PickResultType.COMPLETE, subchannel, status: null, onCallStarted: null, onCallEnded: null },
  };
}

function picker(t: EndpointTracker, addresses: readonly string[] = [A, B, C]): LeastRequestPicker {
  const entries: PickEntry[] = addresses.map((address) => ({ address, picker: leaf(address), book: t.bookOf(address) }));
  return new LeastRequestPicker(entries, t);
}

/** Picks for a fresh attempt (avoiding `avoid`), with `random` as the draws; returns the address and the link. */
function pick(p: LeastRequestPicker, random: number[], avoid?: string): { address: string | undefined; link: AttemptLink } {
  draws = [...random];
  const metadata = new Metadata();
  const link = linkAttempt(metadata, avoid);
  const result = p.pick({ metadata, extraPickInfo: {} });
  expect(draws).toEqual([]);
  return { address: (result.subchannel as { getAddress(): string } | null)?.getAddress(), link };
}

function outstanding(t: EndpointTracker): Record<string, number> {
  return Object.fromEntries(t.stats().map((s) => [s.address, s.outstanding]));
}

beforeEach(() => {
  now = 7_000_000;
  draws = [];
  changes = [];
  queue = false;
});

// With 3 endpoints, draws [x, y] choose i = floor(3x) and j = floor(2y), moved past i: [0, 0.5]
// is A and C, [0.5, 0] is B and A, [0.9, 0.9] is C and B.

describe('two random choices', () => {
  test('the endpoint with fewer attempts outstanding wins the draw', () => {
    const t = tracker();
    const p = picker(t);
    t.picked(t.bookOf(A)!, false);
    t.picked(t.bookOf(A)!, false);
    t.picked(t.bookOf(C)!, false);
    expect(pick(p, [0, 0.5]).address).toBe(C);
    expect(pick(p, [0.5, 0]).address).toBe(B);
  });

  test('a tie goes to the first drawn', () => {
    const t = tracker();
    const p = picker(t);
    expect(pick(p, [0, 0.5]).address).toBe(A);
    expect(pick(p, [0.9, 0.9]).address).toBe(C);
  });

  test('the two choices are distinct endpoints, and a source returning 1 is clamped', () => {
    const t = tracker([A, B]);
    const p = picker(t, [A, B]);
    t.picked(t.bookOf(B)!, false);
    // i = 1 (B), j = 0 moved past nothing: A.
    const first = pick(p, [0.99, 0.2]);
    expect(first.address).toBe(A);
    endAttempt(first.link);
    expect(pick(p, [1, 1]).address).toBe(A);
  });

  test('a single endpoint is picked without drawing', () => {
    const t = tracker([A]);
    expect(pick(picker(t, [A]), []).address).toBe(A);
  });

  test('a hung endpoint keeps its attempts outstanding and loses every draw against an idle one', () => {
    const t = tracker();
    const p = picker(t);
    // A's first attempt hangs: never ended.
    expect(pick(p, [0, 0]).address).toBe(A);
    for (let i = 0; i < 30; i++) {
      const { address, link } = pick(p, [(i % 3) / 3, (i % 2) / 2]);
      expect(address).not.toBe(A);
      judgeAttempt(link, 'success');
      endAttempt(link);
    }
    expect(outstanding(t)).toEqual({ [A]: 1, [B]: 0, [C]: 0 });
  });
});

describe('what the books admit', () => {
  function ejectA(t: EndpointTracker): void {
    for (let i = 0; i < SETTINGS.consecutiveFailures; i++) t.record(A, 'failure');
    expect(t.isEjected(A)).toBe(true);
  }

  test('an ejected endpoint is not picked: the other draw wins', () => {
    const t = tracker();
    const p = picker(t);
    ejectA(t);
    t.picked(t.bookOf(C)!, false);
    expect(pick(p, [0, 0.5]).address).toBe(C);
  });

  test('the endpoint to avoid loses the draw when the other can take it', () => {
    const t = tracker();
    const p = picker(t);
    t.picked(t.bookOf(C)!, false);
    expect(pick(p, [0, 0.5], A).address).toBe(C);
  });

  test('when neither draw can take it, the least loaded endpoint that can, by a scan', () => {
    const t = tracker();
    const p = picker(t);
    ejectA(t);
    // A and B drawn: A ejected, B avoided; C takes it.
    expect(pick(p, [0.5, 0], B).address).toBe(C);
  });

  test('with every other endpoint out, the avoided one; with every endpoint out, the least loaded of all', () => {
    const t = tracker([A, B]);
    const p = picker(t, [A, B]);
    ejectA(t);
    expect(pick(p, [0, 0], B).address).toBe(B);
    t.setServing(B, false);
    t.picked(t.bookOf(B)!, false);
    t.picked(t.bookOf(B)!, false);
    expect(pick(p, [0.5, 0]).address).toBe(A);
  });

  test('a not-serving endpoint gets no picks', () => {
    const t = tracker();
    const p = picker(t);
    t.setServing(A, false);
    t.picked(t.bookOf(C)!, false);
    expect(pick(p, [0, 0.5]).address).toBe(C);
  });

  test('an endpoint due for its probe gets exactly one attempt; success returns it', () => {
    const t = tracker();
    const p = picker(t);
    ejectA(t);
    now += SETTINGS.baseEjectionTimeMs;
    const probe = pick(p, [0, 0.5]);
    expect(probe.address).toBe(A);
    expect(t.stats()[0]).toMatchObject({ probe: 'in-flight', outstanding: 1 });
    // While the probe is out, A is not picked, even against a busier endpoint.
    t.picked(t.bookOf(C)!, false);
    expect(pick(p, [0, 0.5]).address).toBe(C);
    judgeAttempt(probe.link, 'success');
    expect(t.stats()[0]).toMatchObject({ ejected: false, probe: 'none' });
    endAttempt(probe.link);
    expect(changes.map((c) => [c.ejected, c.reason])).toEqual([
      [true, 'consecutive-failures'],
      [false, 'consecutive-failures'],
    ]);
  });

  test('a failed probe ejects the endpoint again, for twice as long', () => {
    const t = tracker();
    const p = picker(t);
    ejectA(t);
    now += SETTINGS.baseEjectionTimeMs;
    const probe = pick(p, [0, 0.5]);
    judgeAttempt(probe.link, 'failure');
    endAttempt(probe.link);
    expect(t.stats()[0]).toMatchObject({ ejected: true, probe: 'waiting', ejectedUntil: now + 2 * SETTINGS.baseEjectionTimeMs });
    expect(changes.at(-1)).toMatchObject({ ejected: true, reason: 'consecutive-failures', ejectedForMs: 6_000 });
  });

  test('a probe that ends without being judged leaves the endpoint due for another', () => {
    const t = tracker();
    const p = picker(t);
    ejectA(t);
    now += SETTINGS.baseEjectionTimeMs;
    const probe = pick(p, [0, 0.5]);
    endAttempt(probe.link);
    expect(t.stats()[0]).toMatchObject({ probe: 'due', outstanding: 0 });
    expect(pick(p, [0, 0.5]).address).toBe(A);
  });
});

describe('outstanding counts follow the attempt', () => {
  test('+1 at a complete pick; judging does not release it (a stream judged at its first message); its end does', () => {
    const t = tracker();
    const p = picker(t);
    const { address, link } = pick(p, [0.5, 0]);
    expect(address).toBe(B);
    expect(link).toMatchObject({ address: B, tracker: t, pickedAt: now, probe: false });
    expect(outstanding(t)).toEqual({ [A]: 0, [B]: 1, [C]: 0 });
    judgeAttempt(link, 'success');
    expect(outstanding(t)[B]).toBe(1);
    endAttempt(link);
    expect(outstanding(t)[B]).toBe(0);
    // Ending twice releases once.
    endAttempt(link);
    expect(outstanding(t)[B]).toBe(0);
  });

  test('a QUEUE answer from the leaf keeps the token and counts nothing', () => {
    const t = tracker();
    const p = picker(t);
    queue = true;
    draws = [0, 0];
    const metadata = new Metadata();
    const link = linkAttempt(metadata);
    expect(p.pick({ metadata, extraPickInfo: {} }).pickResultType).toBe(experimental.PickResultType.QUEUE);
    expect(metadata.get(ATTEMPT_KEY)).toEqual([link.token]);
    expect(outstanding(t)).toEqual({ [A]: 0, [B]: 0, [C]: 0 });
    endAttempt(link);
  });

  test('picked again with the same metadata (grpc-js re-picks), the earlier pick is released', () => {
    const t = tracker();
    const p = picker(t);
    draws = [0, 0];
    const metadata = new Metadata();
    const link = linkAttempt(metadata);
    // grpc-js picks with a clone of the call's metadata, so the token is still there next time.
    p.pick({ metadata: metadata.clone(), extraPickInfo: {} });
    draws = [0.5, 0];
    t.picked(t.bookOf(A)!, false);
    p.pick({ metadata: metadata.clone(), extraPickInfo: {} });
    expect(link.address).toBe(B);
    expect(outstanding(t)).toEqual({ [A]: 1, [B]: 1, [C]: 0 });
    endAttempt(link);
    expect(outstanding(t)).toEqual({ [A]: 1, [B]: 0, [C]: 0 });
  });

  test('a pick without a token counts nothing (its end could not be heard)', () => {
    const t = tracker();
    draws = [0, 0];
    picker(t).pick({ metadata: new Metadata(), extraPickInfo: {} });
    expect(outstanding(t)).toEqual({ [A]: 0, [B]: 0, [C]: 0 });
  });

  test('attemptHeard sets lastHeardAt on the tracker clock; a silent timeout ejects the endpoint that said nothing', () => {
    const t = tracker();
    const p = picker(t);
    const hung = pick(p, [0, 0.5]);
    expect(hung.address).toBe(A);
    now += 10;
    const answered = pick(p, [0.5, 0]);
    attemptHeard(answered.link);
    judgeAttempt(answered.link, 'success');
    endAttempt(answered.link);
    expect(t.stats()[1]!.lastHeardAt).toBe(now);
    now += 990;
    judgeAttempt(hung.link, 'failure');
    endAttempt(hung.link, true);
    expect(t.stats()[0]).toMatchObject({ ejected: true, ejectionReason: 'silent', outstanding: 0, lastHeardAt: undefined });
  });
});
