// Liveness without pings (issue 13): the stall detector leaves a connection that went silent
// (the fault proxy freezes it: no byte, no FIN, no RST), and never sends a PING that a gRFC A8
// server would hold against us. Chain: pool -> fault proxy -> A8 enforcing peer -> grpc-js server.
// A short stall timeout keeps these fast; test/chaos/liveness.test.ts runs the pool defaults.
import { afterEach, describe, expect, it } from 'vitest';
import { ChannelPool, type ChannelReplaced, type StalledReplacement } from '../../src/index.js';
import { startA8Peer, type A8Peer } from '../helpers/a8-peer.js';
import { startFaultProxy, type FaultProxy } from '../helpers/fault-proxy.js';
import { TestServiceClient } from '../helpers/protos.js';
import { startTestServer, type TestServer } from '../helpers/test-server.js';

interface Scene {
  server: TestServer;
  peer: A8Peer;
  proxy: FaultProxy;
  pool: ChannelPool;
  replaced: ChannelReplaced[];
}

const cleanups: Array<() => Promise<unknown>> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function scene(poolOptions: ConstructorParameters<typeof ChannelPool>[0]): Promise<Scene> {
  const server = await startTestServer();
  cleanups.push(() => server.kill());
  const peer = await startA8Peer({ port: server.port });
  cleanups.push(() => peer.close());
  const proxy = await startFaultProxy({ port: peer.port });
  cleanups.push(() => proxy.close());
  const pool = new ChannelPool(poolOptions);
  cleanups.push(() => pool.close({ graceMs: 0 }));
  const replaced: ChannelReplaced[] = [];
  pool.onChannelReplaced((event) => replaced.push(event));
  return { server, peer, proxy, pool, replaced };
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Steady traffic: one Echo every `everyMs` until `untilMs`; returns each call's start, end and
 * outcome (times relative to `t0`).
 */
async function traffic(echo: (i: number) => Promise<unknown>, t0: number, everyMs: number, untilMs: number) {
  const calls: Array<Promise<{ startedAt: number; endedAt: number; ok: boolean; code?: number }>> = [];
  for (let i = 0; performance.now() - t0 < untilMs && i < 1_000; i++) {
    const startedAt = performance.now() - t0;
    calls.push(
      echo(i).then(
        () => ({ startedAt, endedAt: performance.now() - t0, ok: true }),
        (error: { code?: number }) => ({
          startedAt,
          endedAt: performance.now() - t0,
          ok: false,
          ...(error.code === undefined ? {} : { code: error.code }),
        }),
      ),
    );
    await sleep(everyMs);
  }
  return Promise.all(calls);
}

describe('a connection that dies silently', () => {
  for (const [label, deadlineMs] of [
    ['calls that wait longer than the stall timeout', 1_500],
    ['calls whose deadline is shorter than the stall timeout', 300],
  ] as const) {
    it(`is left for a new connection: ${label}`, async () => {
      const s = await scene({ stallTimeoutMs: 600, deadlineMs, retry: false });
      const echo = s.pool.client(TestServiceClient, s.proxy.address);
      await echo.Echo({ message: 'warm' });
      const t0 = performance.now();
      let frozenAt = 0;
      setTimeout(() => {
        frozenAt = performance.now() - t0;
        expect(s.proxy.freezeEstablished()).toBe(1);
      }, 300);
      const calls = await traffic(() => echo.Echo({ message: 'x' }), t0, 50, 2_000);

      const firstOkAfter = calls.find((c) => c.ok && c.startedAt > frozenAt);
      expect(firstOkAfter, JSON.stringify(calls)).toBeDefined();
      const recoveryMs = firstOkAfter!.endedAt - frozenAt;
      // Expected: the stall timeout (600 ms) plus a connection; generous for a loaded machine.
      expect(recoveryMs).toBeGreaterThan(550);
      expect(recoveryMs).toBeLessThan(10_000);
      // Every call started after the recovery succeeded; the failures are calls of the frozen connection.
      expect(calls.filter((c) => c.startedAt > firstOkAfter!.endedAt && !c.ok)).toEqual([]);
      expect(calls.filter((c) => !c.ok).every((c) => c.code === 4 && c.startedAt > frozenAt - 60)).toBe(true);

      expect(s.replaced).toHaveLength(1);
      expect(s.replaced[0]).toMatchObject({ reason: 'stalled', replacements: 1, stallTimeoutMs: 600 });
      expect((s.replaced[0] as StalledReplacement).silentMs).toBeGreaterThanOrEqual(600);
      expect(s.pool.stats().perChannel[0]).toMatchObject({ state: 'ready', stalls: 1, falseStalls: 0, replacements: 1 });
      // A second connection, and never a ping.
      expect(s.proxy.accepted).toBe(2);
      expect(s.peer.counters()).toMatchObject({ connections: 2, pings: 0, badPings: 0, goaways: 0 });
    });
  }

  it('never replaces a healthy channel under steady traffic, and an idle pool never pings', async () => {
    const s = await scene({ stallTimeoutMs: 300 });
    const echo = s.pool.client(TestServiceClient, s.proxy.address);
    const calls = await traffic((i) => echo.Echo({ message: `m${i}`, delayMs: 50 }), performance.now(), 20, 1_000);
    expect(calls.every((c) => c.ok)).toBe(true);
    await sleep(500);
    expect(s.replaced).toEqual([]);
    expect(s.peer.counters()).toMatchObject({ connections: 1, pings: 0, badPings: 0, goaways: 0 });
  });
});

describe('a slow server is not a dead one', () => {
  it('a slow answer is a false alarm: the call succeeds, the stall timeout doubles, nothing fails', async () => {
    const s = await scene({ stallTimeoutMs: 400 });
    const echo = s.pool.client(TestServiceClient, s.proxy.address);
    await echo.Echo({ message: 'warm' });
    const slow = echo.Echo({ message: 'slow', delayMs: 1_200 });
    await sleep(700);
    expect(s.replaced).toMatchObject([{ reason: 'stalled', stallTimeoutMs: 400 }]);
    // New calls go to the new channel while the slow one finishes on the old connection.
    await expect(echo.Echo({ message: 'meanwhile' })).resolves.toMatchObject({ message: 'meanwhile' });
    await expect(slow).resolves.toMatchObject({ message: 'slow' });
    expect(s.pool.stats().perChannel[0]).toMatchObject({ stalls: 1, falseStalls: 1, failed: 0 });
    // Now 800 ms: a call of 600 ms is no stall.
    await expect(echo.Echo({ message: 'slower', delayMs: 600 })).resolves.toMatchObject({ message: 'slower' });
    expect(s.replaced).toHaveLength(1);
    expect(s.peer.counters()).toMatchObject({ pings: 0, goaways: 0 });
  });

  it('a quiet server stream is not watched: no replacement, no ping', async () => {
    const s = await scene({ stallTimeoutMs: 300 });
    const echo = s.pool.client(TestServiceClient, s.proxy.address);
    const received: unknown[] = [];
    for await (const message of echo.ServerStream({ message: 'quiet', count: 3, intervalMs: 500 })) received.push(message);
    expect(received).toHaveLength(3);
    expect(s.replaced).toEqual([]);
    expect(s.peer.counters()).toMatchObject({ connections: 1, pings: 0, goaways: 0 });
  });

  it('a server that never answers in time makes the detector back off, not churn', async () => {
    const s = await scene({ stallTimeoutMs: 200, deadlineMs: 150, retry: false, breaker: false });
    const echo = s.pool.client(TestServiceClient, s.proxy.address);
    await echo.Echo({ message: 'warm' });
    const calls = await traffic(() => echo.Echo({ message: 'late', delayMs: 1_000 }), performance.now(), 50, 2_000);
    // Every call fails by its deadline; one that raced a replacement (queued on the channel as it
    // was closed) may fail UNAVAILABLE instead (with retries on, it would go to the new channel).
    expect(calls.filter((c) => c.ok || (c.code !== 4 && c.code !== 14))).toEqual([]);
    expect(calls.filter((c) => c.code === 4).length).toBeGreaterThan(calls.length / 2);
    // 200 ms, then 400, then 800 ...: a handful of replacements in 2 s, not ten.
    expect(s.replaced.length).toBeGreaterThanOrEqual(2);
    expect(s.replaced.length).toBeLessThanOrEqual(4);
    expect((s.replaced.at(-1) as StalledReplacement).stallTimeoutMs).toBeGreaterThan(200);
  });

  it('stallTimeoutMs is validated', () => {
    expect(() => new ChannelPool({ stallTimeoutMs: 0 })).toThrow(/stallTimeoutMs must be a finite number of milliseconds > 0/);
    expect(() => new ChannelPool({ stallTimeoutMs: '5s' as never })).toThrow(TypeError);
    expect(() => new ChannelPool({ stallTimeoutMs: false })).not.toThrow();
  });
});
