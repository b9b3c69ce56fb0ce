// Graceful GOAWAY (issue 13): a server that ages its connections out (grpc.max_connection_age_ms
// with a grace period) and a server shut down gracefully (tryShutdown) while another endpoint
// takes over. Under steady traffic with pool defaults, no call fails: calls in flight finish on
// the old connection, new ones go to a new one. test/chaos/goaway.test.ts runs 30 s of it.
import { afterEach, describe, expect, it } from 'vitest';
import { ChannelPool, type ChannelReplaced } from '../../src/index.js';
import { startFaultProxy } from '../helpers/fault-proxy.js';
import { TestServiceClient } from '../helpers/protos.js';
import { startTestServer } from '../helpers/test-server.js';

const cleanups: Array<() => Promise<unknown>> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

type Echo = { Echo(request: { message: string; delayMs?: number }): Promise<unknown> };

/** `workers` callers back to back until `ms` passed; every third call is slow (`slowMs`). */
async function steady(echo: Echo, ms: number, workers = 6, slowMs = 150) {
  const failures: string[] = [];
  let ok = 0;
  const end = performance.now() + ms;
  await Promise.all(
    Array.from({ length: workers }, async (_, w) => {
      for (let i = 0; performance.now() < end && i < 5_000; i++) {
        try {
          await echo.Echo({ message: `${w}-${i}`, delayMs: i % 3 === 0 ? slowMs : 5 });
          ok++;
        } catch (error) {
          const e = error as { code?: number; details?: string };
          failures.push(`${e.code} ${e.details}`);
        }
      }
    }),
  );
  return { ok, failures };
}

describe('graceful GOAWAY', () => {
  it('a server that ages connections out after 300 ms: no call fails, each connection is replaced', async () => {
    const server = await startTestServer({
      serverOptions: { 'grpc.max_connection_age_ms': 300, 'grpc.max_connection_age_grace_ms': 2_000 },
    });
    cleanups.push(() => server.kill());
    const proxy = await startFaultProxy({ port: server.port });
    cleanups.push(() => proxy.close());
    const pool = new ChannelPool();
    cleanups.push(() => pool.close({ graceMs: 0 }));
    const replaced: ChannelReplaced[] = [];
    pool.onChannelReplaced((event) => replaced.push(event));

    const result = await steady(pool.client(TestServiceClient, proxy.address), 2_000);
    expect(result.failures).toEqual([]);
    expect(result.ok).toBeGreaterThan(40);
    // Aged out every ~300 ms (grpc-js adds up to 10 % jitter): several connections over 2 s.
    expect(proxy.accepted).toBeGreaterThanOrEqual(4);
    expect(replaced).toEqual([]);
    expect(pool.stats().perChannel[0]).toMatchObject({ failed: 0, retries: 0 });
  });

  it('a server shut down with tryShutdown() while a second endpoint takes over: no call fails', async () => {
    const a = await startTestServer();
    cleanups.push(() => a.kill());
    const b = await startTestServer();
    cleanups.push(() => b.kill());
    const pool = new ChannelPool();
    cleanups.push(() => pool.close({ graceMs: 0 }));
    // pick_first (the default) sticks to A until A goes away.
    const echo = pool.client(TestServiceClient, `ipv4:${a.address},${b.address}`);

    let stopped: Promise<void> | undefined;
    let inFlightAtStop = 0;
    const timer = setTimeout(() => {
      inFlightAtStop = pool.stats().inFlight;
      stopped = a.stop();
    }, 700);
    const result = await steady(echo, 2_000, 6, 300);
    clearTimeout(timer);
    await stopped;

    expect(result.failures).toEqual([]);
    // Calls in flight at the GOAWAY finished on A; later ones went to B.
    expect(inFlightAtStop).toBeGreaterThan(0);
    expect(a.calls.length).toBeGreaterThan(0);
    expect(b.calls.length).toBeGreaterThan(0);
    expect(a.calls.length + b.calls.length).toBe(result.ok);
    expect(pool.stats().perChannel[0]).toMatchObject({ failed: 0 });
  });
});
