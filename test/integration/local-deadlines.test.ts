// Deadlines that expire on the client (issue 19, the CPU-starved row), proved without timing
// margins: the client's event loop is blocked synchronously, so every deadline comes while it is
// blocked and grpc-js reports it late by at least the rest of the block, whatever the machine's
// load. What is checked is how those failures count, not when they happen:
// - a DEADLINE_EXCEEDED reported long after it came (the client's loop was stalled) counts
//   neither way: no circuit opens, no endpoint books a failure or is ejected;
// - a deadline that expired locally, on time, before the call was ever sent (a peer that accepts
//   TCP and never answers) opens the method's circuit, never the target's.
// The timing-bound scenario (1 of 3 endpoints in an outage under bursts of a busy loop, beside
// grpc-js outlier_detection + retryPolicy) is test/chaos/cpu-starved.test.ts.
import * as grpc from '@grpc/grpc-js';
import { afterEach, describe, expect, it } from 'vitest';
import { ChannelPool, CircuitOpenError, type BreakerStateChange, type EndpointEjection, type UnaryMethod } from '../../src/index.js';
import { startFaultProxy, type FaultProxy } from '../helpers/fault-proxy.js';
import { closeScenariosAfterEach, setUp } from '../helpers/fleet-scenario.js';
import { TestServiceClient, type EchoRequest, type EchoResponse } from '../helpers/protos.js';
import { startTestServer, type TestServer } from '../helpers/test-server.js';

closeScenariosAfterEach();

interface Test {
  Echo: UnaryMethod<Partial<EchoRequest>, EchoResponse>;
}

/** Blocks this process's event loop for `ms`: nothing else runs meanwhile (timers, sockets). */
function blockLoop(ms: number): void {
  const end = performance.now() + ms;
  while (performance.now() < end) {
    // busy
  }
}

const CALLS = 25;
const DEADLINE_MS = 50;
/** Well past DEADLINE_MS + STALLED_LOOP_MS: every deadline comes, and is reported late, within it. */
const BLOCK_MS = 600;

async function settle(promise: Promise<unknown>): Promise<unknown> {
  return promise.then(
    () => undefined,
    (error: unknown) => error,
  );
}

describe('deadlines that expired while the client was stalled', () => {
  it('25 calls whose deadlines came during a blocked event loop: 0 circuit openings, 0 endpoint failures, the next call succeeds', async () => {
    const { fleet, pool } = await setUp(['healthy', 'healthy', 'healthy'], {
      retry: false,
      // Ejection that acts on the first failure booked.
      endpointEjection: { intervalMs: 50, requestVolume: 1, failurePercentage: 1 },
    });
    const changes: BreakerStateChange[] = [];
    const ejections: EndpointEjection[] = [];
    pool.onBreakerStateChange((change) => changes.push(change));
    pool.onEndpointEjection((ejection) => ejections.push(ejection));
    const test = pool.client(TestServiceClient, fleet.target) as unknown as Test;
    for (let i = 0; i < 3; i++) await test.Echo({ message: 'warm-up' });
    // The server would answer after 5 s: each call ends by its 50 ms deadline, which comes while
    // the loop is blocked; grpc-js reports it when the loop runs again, >= 550 ms late.
    const calls = Array.from({ length: CALLS }, () => settle(test.Echo({ message: 'slow', delayMs: 5_000 }, { deadlineMs: DEADLINE_MS })));
    blockLoop(BLOCK_MS);
    const errors = await Promise.all(calls);
    for (const error of errors) expect(error).toMatchObject({ code: grpc.status.DEADLINE_EXCEEDED });
    expect(changes.filter((c) => c.state === 'open')).toEqual([]);
    expect(ejections).toEqual([]);
    const channel = pool.stats().perChannel[0]!;
    for (const breaker of channel.breakers) expect(breaker).toMatchObject({ state: 'closed', opened: 0 });
    for (const endpoint of channel.endpoints) expect(endpoint).toMatchObject({ failures: 0, ejected: false });
    await expect(test.Echo({ message: 'after' })).resolves.toMatchObject({ message: 'after' });
  });
});

describe('a deadline that expired locally, on time, before the call went out', () => {
  let server: TestServer | undefined;
  let proxy: FaultProxy | undefined;
  let pool: ChannelPool | undefined;
  afterEach(async () => {
    await pool?.close({ graceMs: 0 });
    await proxy?.close();
    await server?.kill();
    server = proxy = pool = undefined;
  });

  it("a peer that accepts TCP and never answers: the method's circuit opens, the target's never does", async () => {
    server = await startTestServer();
    proxy = await startFaultProxy({ port: server.port }, { mode: 'blackhole' });
    // The connect watchdog off: its replacements would make the failures count neither way.
    pool = new ChannelPool({ retry: false, connectTimeoutMs: false, channelOptions: { 'grpc.use_local_subchannel_pool': 1 } });
    const changes: BreakerStateChange[] = [];
    pool.onBreakerStateChange((change) => changes.push(change));
    const test = pool.client(TestServiceClient, proxy.address) as unknown as Test;
    let refused: unknown;
    // The method's circuit opens at volumeThreshold (20) calls at the latest: bounded.
    for (let i = 0; i < 40 && refused === undefined; i++) {
      const error = await settle(test.Echo({ message: 'x' }, { deadlineMs: DEADLINE_MS }));
      if (error instanceof CircuitOpenError) refused = error;
      else expect(error).toMatchObject({ code: grpc.status.DEADLINE_EXCEEDED });
    }
    expect(refused).toBeInstanceOf(CircuitOpenError);
    expect(changes.filter((c) => c.state === 'open').map((c) => c.method ?? '(target)')).toEqual(['/resilient.test.v1.TestService/Echo']);
    const target = pool.stats().perChannel[0]!.breakers.find((b) => b.method === undefined);
    expect(target).toMatchObject({ state: 'closed', opened: 0 });
  });
});
