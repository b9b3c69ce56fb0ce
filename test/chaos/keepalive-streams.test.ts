// Chaos: a server stream on a connection that goes silent (issue 19 row 6). The pool's default
// keepalive (config/channel-options.ts KEEPALIVE_DEFAULTS: a PING every 6 minutes while calls are
// open, 20 s to answer) finds it within 6 min 20 s, and a gRFC A8 server (5 minutes between pings,
// 2 strikes, as grpc-go, grpc-java and C-core by default) never answers GOAWAY too_many_pings.
// Minutes do not belong in a test run, so both are proved here at scale: the A8 peer allows one
// ping per 1 s and the pool pings every 1.2 s (the defaults' 6 min : 5 min), 2 s to answer.
// test/unit/pool-engine.test.ts pins the defaults themselves.
// Chain: pool -> fault proxy -> A8 enforcing peer -> grpc-js server.
import { afterEach, describe, expect, it } from 'vitest';
import { ChannelPool } from '../../src/index.js';
import { startA8Peer, type A8Peer } from '../helpers/a8-peer.js';
import { startFaultProxy, type FaultProxy } from '../helpers/fault-proxy.js';
import { TestServiceClient } from '../helpers/protos.js';
import { startTestServer } from '../helpers/test-server.js';
import { sleep } from './support.js';

const PEER_MIN_PING_MS = 1_000;
const KEEPALIVE_MS = 1_200;
const KEEPALIVE_TIMEOUT_MS = 2_000;

const cleanups: Array<() => Promise<unknown>> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function chain(): Promise<{ peer: A8Peer; proxy: FaultProxy; pool: ChannelPool }> {
  const server = await startTestServer();
  cleanups.push(() => server.kill());
  const peer = await startA8Peer({ port: server.port }, { minPingIntervalMs: PEER_MIN_PING_MS });
  cleanups.push(() => peer.close());
  const proxy = await startFaultProxy({ port: peer.port });
  cleanups.push(() => proxy.close());
  // Pool defaults, with the keepalive scaled down (see the top of the file).
  const pool = new ChannelPool({
    channelOptions: { 'grpc.keepalive_time_ms': KEEPALIVE_MS, 'grpc.keepalive_timeout_ms': KEEPALIVE_TIMEOUT_MS },
  });
  cleanups.push(() => pool.close({ graceMs: 0 }));
  return { peer, proxy, pool };
}

describe('chaos: keepalive under streams against a gRFC A8 server (issue 19 row 6, scaled)', () => {
  it('steady, idle, sparse traffic and a quiet stream: pings while calls are open, not one strike, no GOAWAY', async () => {
    const { peer, pool } = await chain();
    const echo = pool.client(TestServiceClient, peer.address);
    const failures: unknown[] = [];
    const run = (p: Promise<unknown>): Promise<unknown> => p.catch((error: unknown) => failures.push(error));
    // Steady: 10 calls a second for 3 s.
    for (let i = 0; i < 30; i++) {
      void run(echo.Echo({ message: `steady-${i}` }));
      await sleep(100);
    }
    // Idle for 3 s: grpc-js does not ping without calls; the ping it owes goes with the next call.
    await sleep(3_000);
    // Sparse: one call every 1.5 s.
    for (let i = 0; i < 3; i++) {
      await run(echo.Echo({ message: `sparse-${i}` }));
      await sleep(1_500);
    }
    // A quiet server stream: one message, then nothing for 6 s (five keepalive intervals).
    let received = 0;
    for await (const _ of echo.ServerStream({ message: 'quiet', count: 2, intervalMs: 6_000 })) received++;
    await run(echo.Echo({ message: 'after' }));

    const counters = peer.counters();
    console.info(`[chaos keepalive] mixed traffic against an A8 peer (1 ping/s allowed, pinging every 1.2 s): ${JSON.stringify(counters)}`);
    expect(received).toBe(2);
    expect(failures).toEqual([]);
    expect(counters.pings).toBeGreaterThanOrEqual(4);
    expect(counters).toMatchObject({ connections: 1, badPings: 0, goaways: 0 });
  }, 60_000);

  it('a server stream on a connection that goes silent fails UNAVAILABLE within keepalive time + timeout', async () => {
    const { peer, proxy, pool } = await chain();
    const echo = pool.client(TestServiceClient, proxy.address);
    const stream = echo.ServerStream({ message: 'held', count: 100, intervalMs: 60_000 }, { deadlineMs: 120_000 });
    const iterator = stream[Symbol.asyncIterator]();
    await expect(iterator.next()).resolves.toMatchObject({ done: false });
    const frozenAt = performance.now();
    expect(proxy.freezeEstablished()).toBe(1);
    const error = await iterator.next().then(
      () => undefined,
      (e: unknown) => e as { code?: number },
    );
    const detectedMs = performance.now() - frozenAt;
    console.info(
      `[chaos keepalive] stream on a frozen connection ended after ${detectedMs.toFixed(0)} ms ` +
        `(keepalive ${KEEPALIVE_MS} ms + timeout ${KEEPALIVE_TIMEOUT_MS} ms; at the defaults' scale: 360 s + 20 s); code ${error?.code}; peer ${JSON.stringify(peer.counters())}`,
    );
    expect(error?.code).toBe(14);
    expect(detectedMs).toBeLessThan(KEEPALIVE_MS + KEEPALIVE_TIMEOUT_MS + 1_500);
    expect(peer.counters()).toMatchObject({ badPings: 0, goaways: 0 });
  }, 60_000);
});
