import { status } from '@grpc/grpc-js';
import { afterEach, beforeEach, describe, expect, test, vi } from 'vitest';
import type { AttemptLink } from '../../src/channel/endpoint-lb.js';
import { EndpointLiveness, type EndpointDrop } from '../../src/channel/endpoint-liveness.js';

beforeEach(() => {
  vi.useFakeTimers();
});

afterEach(() => {
  vi.useRealTimers();
});

const A = '10.0.0.1:443';
const B = '10.0.0.2:443';

/** A watch over fake endpoints: `sockets[address]` sockets each, destroyed by a drop. */
function setup(baseMs = 1_000, sockets: Record<string, number> = { [A]: 1, [B]: 1 }) {
  const drops: EndpointDrop[] = [];
  const dropped: string[] = [];
  const heard: string[] = [];
  const watch = new EndpointLiveness(
    baseMs,
    (address) => {
      dropped.push(address);
      const n = sockets[address] ?? 0;
      return n;
    },
    (drop) => drops.push(drop),
    (address) => heard.push(address),
    () => Date.now(),
  );
  return { watch, drops, dropped, heard };
}

/** A unary attempt as attempt.ts reports it; `pick(address)` is what the picker does later. */
function attempt(watch: EndpointLiveness) {
  const link: AttemptLink = {
    token: 't',
    avoid: undefined,
    address: undefined,
    tracker: undefined,
    book: undefined,
    pickedAt: 0,
    probe: false,
  };
  const pending = watch.begin(link);
  return {
    link,
    pick: (address: string) => {
      link.address = address;
    },
    headers: () => watch.heard(pending),
    end: (code: number) => watch.ended(pending, code === status.OK ? undefined : code),
  };
}

describe('EndpointLiveness', () => {
  test('an endpoint whose attempts hear nothing for stallMs has its connection dropped; the other is left alone', () => {
    const { watch, drops, dropped } = setup(1_000);
    const silent = attempt(watch);
    silent.pick(A);
    vi.advanceTimersByTime(300);
    // B answers steadily the whole time.
    for (let i = 0; i < 10; i++) {
      const fine = attempt(watch);
      fine.pick(B);
      vi.advanceTimersByTime(50);
      fine.end(status.OK);
    }
    expect(dropped).toEqual([]);
    vi.advanceTimersByTime(199);
    expect(dropped).toEqual([]);
    vi.advanceTimersByTime(1);
    expect(dropped).toEqual([A]);
    expect(drops).toEqual([{ address: A, silentMs: 1_000, stallTimeoutMs: 1_000, sockets: 1 }]);
    expect(watch.drops).toBe(1);
    // The dropped attempt fails UNAVAILABLE: no second drop, no false alarm.
    silent.end(status.UNAVAILABLE);
    vi.advanceTimersByTime(5_000);
    expect(dropped).toEqual([A]);
    expect(watch.falseAlarms).toBe(0);
  });

  test('calls that end by their deadline unheard keep the silence counting (short deadlines)', () => {
    const { watch, dropped } = setup(1_000);
    for (let i = 0; i < 6; i++) {
      const a = attempt(watch);
      a.pick(A);
      vi.advanceTimersByTime(300);
      a.end(status.DEADLINE_EXCEEDED);
    }
    // The first began at 0 and the silence went on: dropped at 1000 ms, not at 1300.
    expect(dropped).toEqual([A]);
  });

  test('something heard from the endpoint restarts its silence', () => {
    const { watch, dropped, heard } = setup(1_000);
    const slow = attempt(watch);
    slow.pick(A);
    vi.advanceTimersByTime(800);
    const quick = attempt(watch);
    quick.pick(A);
    quick.end(status.OK);
    expect(heard).toEqual([A]);
    vi.advanceTimersByTime(900);
    expect(dropped).toEqual([]);
    vi.advanceTimersByTime(100);
    expect(dropped).toEqual([A]);
  });

  test('a status the server sent is heard; one grpc-js made up is not', () => {
    const { watch, dropped } = setup(1_000);
    const a = attempt(watch);
    a.pick(A);
    vi.advanceTimersByTime(500);
    a.end(status.NOT_FOUND);
    const b = attempt(watch);
    b.pick(B);
    b.end(status.CANCELLED);
    vi.advanceTimersByTime(5_000);
    expect(dropped).toEqual([]);
  });

  test('an attempt not yet picked counts nowhere until it is', () => {
    const { watch, dropped } = setup(1_000);
    const queued = attempt(watch);
    vi.advanceTimersByTime(1_500);
    expect(dropped).toEqual([]);
    queued.pick(A);
    // Its wait counts from its start: the next look finds it silent.
    vi.advanceTimersByTime(250);
    expect(dropped).toEqual([A]);
  });

  test('an answer for an attempt whose connection was dropped is a false alarm: the endpoint stall timeout doubles', () => {
    const { watch, drops } = setup(1_000);
    const slow = attempt(watch);
    slow.pick(A);
    vi.advanceTimersByTime(1_000);
    expect(drops).toHaveLength(1);
    slow.end(status.OK);
    expect(watch.falseAlarms).toBe(1);
    expect(watch.stallMsOf(A)).toBe(2_000);
    expect(watch.stallMsOf(B)).toBe(1_000);
    const next = attempt(watch);
    next.pick(A);
    vi.advanceTimersByTime(1_999);
    expect(drops).toHaveLength(1);
    vi.advanceTimersByTime(1);
    expect(drops).toHaveLength(2);
  });

  test('a new connection that goes silent before a word: the next stall timeout doubles, up to 60 s', () => {
    const { watch, drops } = setup(20_000);
    const stallTimeouts: number[] = [];
    for (let i = 0; i < 4; i++) {
      const a = attempt(watch);
      a.pick(A);
      vi.advanceTimersByTime(watch.stallMsOf(A));
      stallTimeouts.push(drops.at(-1)!.stallTimeoutMs);
      a.end(status.UNAVAILABLE);
    }
    expect(stallTimeouts).toEqual([20_000, 40_000, 60_000, 60_000]);
    // Heard once: the endpoint keeps its timeout but the next drop does not double it.
    const ok = attempt(watch);
    ok.pick(A);
    ok.headers();
    ok.end(status.OK);
    const a = attempt(watch);
    a.pick(A);
    vi.advanceTimersByTime(60_000);
    expect(drops.at(-1)!.stallTimeoutMs).toBe(60_000);
    expect(drops).toHaveLength(5);
  });

  test('no socket to drop is no stall', () => {
    const { watch, drops, dropped } = setup(1_000, { [A]: 0 });
    const a = attempt(watch);
    a.pick(A);
    vi.advanceTimersByTime(1_000);
    expect(dropped).toEqual([A]);
    expect(drops).toEqual([]);
    expect(watch.drops).toBe(0);
  });

  test('stop() clears the timer', () => {
    const { watch, dropped } = setup(1_000);
    attempt(watch).pick(A);
    watch.stop();
    expect(vi.getTimerCount()).toBe(0);
    vi.advanceTimersByTime(5_000);
    expect(dropped).toEqual([]);
  });
});
