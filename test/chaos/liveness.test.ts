// Chaos: liveness with pool defaults (issue 13). Chain: pool -> fault proxy -> gRFC A8 enforcing
// peer (5 min minimum ping interval, 2 strikes, as grpc-go, grpc-java and C-core by default) ->
// grpc-js server. (a) The connection dies silently (the proxy freezes it): the stall detector
// (default 5 s) leaves it and calls succeed on a new connection within 10 s. (b) The traffic
// patterns that trip aggressive keepalive against A8 servers: steady, sparse, idle, a slow unary
// call, a quiet server stream. Not one PING reaches the peer, so never a GOAWAY too_many_pings.
import { afterEach, describe, expect, it } from 'vitest';
import { ChannelPool, type ChannelReplaced } from '../../src/index.js';
import { startA8Peer, type A8Peer } from '../helpers/a8-peer.js';
import { startFaultProxy, type FaultProxy } from '../helpers/fault-proxy.js';
import { TestServiceClient } from '../helpers/protos.js';
import { startTestServer } from '../helpers/test-server.js';
import { sleep } from './support.js';

const cleanups: Array<() => Promise<unknown>> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function chain(): Promise<{ peer: A8Peer; proxy: FaultProxy; pool: ChannelPool; replaced: ChannelReplaced[] }> {
  const server = await startTestServer();
  cleanups.push(() => server.kill());
  const peer = await startA8Peer({ port: server.port });
  cleanups.push(() => peer.close());
  const proxy = await startFaultProxy({ port: peer.port });
  cleanups.push(() => proxy.close());
  const pool = new ChannelPool(); // every default: deadline 10 s, stall timeout 5 s, keepalive 6 min (no ping within these tests)
  cleanups.push(() => pool.close({ graceMs: 0 }));
  const replaced: ChannelReplaced[] = [];
  pool.onChannelReplaced((event) => replaced.push(event));
  return { peer, proxy, pool, replaced };
}

describe('chaos: liveness with pool defaults against a gRFC A8 server', () => {
  it('leaves a silently dead connection: calls succeed on a new one within 10 s, with no ping', async () => {
    const { peer, proxy, pool, replaced } = await chain();
    const echo = pool.client(TestServiceClient, proxy.address);
    await echo.Echo({ message: 'warm' });
    const t0 = performance.now();
    let frozenAt = Number.POSITIVE_INFINITY;
    const calls: Array<Promise<{ startedAt: number; endedAt: number; ok: boolean }>> = [];
    for (let i = 0; performance.now() - t0 < 16_000 && i < 200; i++) {
      if (i === 8) {
        frozenAt = performance.now() - t0;
        expect(proxy.freezeEstablished()).toBe(1);
      }
      const startedAt = performance.now() - t0;
      calls.push(
        echo.Echo({ message: `${i}` }).then(
          () => ({ startedAt, endedAt: performance.now() - t0, ok: true }),
          () => ({ startedAt, endedAt: performance.now() - t0, ok: false }),
        ),
      );
      await sleep(250);
    }
    const outcomes = await Promise.all(calls);
    const firstOk = outcomes.find((c) => c.ok && c.startedAt > frozenAt);
    expect(firstOk).toBeDefined();
    const recoveryMs = firstOk!.endedAt - frozenAt;
    const failed = outcomes.filter((c) => !c.ok).length;
    console.info(
      `[chaos liveness] silent death: recovered ${recoveryMs.toFixed(0)} ms after the freeze (stall timeout 5000 ms); ` +
        `${failed} of ${outcomes.length} calls failed (made on the frozen connection); ` +
        `peer: ${JSON.stringify(peer.counters())}`,
    );
    expect(recoveryMs).toBeLessThan(10_000);
    expect(outcomes.filter((c) => c.startedAt > firstOk!.endedAt && !c.ok)).toEqual([]);
    expect(replaced).toMatchObject([{ reason: 'stalled', replacements: 1 }]);
    expect(peer.counters()).toMatchObject({ connections: 2, pings: 0, badPings: 0, goaways: 0 });
  });

  it('steady, sparse and idle traffic, a slow unary call and a quiet stream: not one ping, no GOAWAY, no failure', async () => {
    const { peer, proxy, pool, replaced } = await chain();
    const echo = pool.client(TestServiceClient, proxy.address);
    const failures: unknown[] = [];
    const run = (p: Promise<unknown>): Promise<unknown> => p.catch((error: unknown) => failures.push(error));

    // Steady: 8 calls a second for 5 s.
    for (let i = 0; i < 40; i++) {
      void run(echo.Echo({ message: `steady-${i}` }));
      await sleep(125);
    }
    // Sparse: one call every 3 s.
    for (let i = 0; i < 3; i++) {
      await run(echo.Echo({ message: `sparse-${i}` }));
      await sleep(3_000);
    }
    // Idle for 8 s (a client with aggressive keepalive and permit_without_calls would ping here).
    await sleep(8_000);
    // A slow unary call (8 s, within the 10 s deadline) and a quiet server stream (a message every 3 s).
    const stream = (async () => {
      let n = 0;
      for await (const _ of echo.ServerStream({ message: 'quiet', count: 3, intervalMs: 3_000 })) n++;
      return n;
    })();
    await run(echo.Echo({ message: 'slow', delayMs: 8_000 }));
    expect(await stream).toBe(3);

    expect(failures).toEqual([]);
    const counters = peer.counters();
    console.info(
      `[chaos liveness] 28 s of mixed traffic: peer ${JSON.stringify(counters)}; replacements ${replaced.length}, stats ${JSON.stringify({ stalls: pool.stats().perChannel[0]?.stalls, falseStalls: pool.stats().perChannel[0]?.falseStalls })}`,
    );
    expect(counters).toMatchObject({ pings: 0, badPings: 0, goaways: 0 });
    // The slow call is a false alarm at most: a second connection, never a failed call.
    expect(replaced.length).toBeLessThanOrEqual(1);
    // A replacement opens its new connection only when a call uses it.
    expect(counters.connections).toBeGreaterThanOrEqual(1);
    expect(counters.connections).toBeLessThanOrEqual(1 + replaced.length);
  }, 60_000);
});
