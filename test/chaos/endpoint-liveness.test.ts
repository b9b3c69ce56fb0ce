// Chaos: per-endpoint liveness and the circuits after a silent connection (issue 19, rows 4 and 5).
//
// Row 4: three endpoints, each a test server behind its own fault proxy, one multi-address target.
// The established connection to one of them goes silent (the proxy freezes it: no byte, no FIN, no
// RST; new connections pass). The channel as a whole keeps hearing from the other two, so only
// per-endpoint liveness can see it: that connection is dropped within the stall timeout, grpc-js
// reconnects, and calls made after the drop succeed (8 callers in a tight loop, pool defaults).
//
// Row 5: one endpoint, 50 calls/s with 1 s deadlines, pool defaults otherwise. Its connection goes
// silent: the method circuit opens on the timeouts before the stall detector replaces the channel
// (4 s against 5 s); the replacement probes the circuits at once, so calls succeed again within
// stallTimeoutMs + 1 s of the onset instead of at the circuit's reset timeout.
import { afterEach, describe, expect, it } from 'vitest';
import { ChannelPool, type ChannelReplaced } from '../../src/index.js';
import { startProxiedServer, type FaultProxy } from '../helpers/fault-proxy.js';
import { TestServiceClient } from '../helpers/protos.js';
import { sleep } from './support.js';

const cleanups: Array<() => Promise<unknown>> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

const proxiedServer = (): Promise<FaultProxy> => startProxiedServer(cleanups);

function newPool(options?: ConstructorParameters<typeof ChannelPool>[0]): {
  pool: ChannelPool;
  replaced: Array<ChannelReplaced & { at: number }>;
} {
  const pool = new ChannelPool(options);
  cleanups.push(() => pool.close({ graceMs: 0 }));
  const replaced: Array<ChannelReplaced & { at: number }> = [];
  pool.onChannelReplaced((event) => replaced.push({ ...event, at: performance.now() }));
  return { pool, replaced };
}

interface Call {
  startedAt: number;
  endedAt: number;
  ok: boolean;
  code?: number | undefined;
}

describe('chaos: per-endpoint liveness (issue 19 row 4)', () => {
  it('1 of 3 endpoints: its established connection goes silent; that connection is dropped within stallTimeoutMs and >= 99 % of calls succeed after that', async () => {
    const proxies = [await proxiedServer(), await proxiedServer(), await proxiedServer()];
    const target = `ipv4:${proxies.map((p) => p.address).join(',')}`;
    const { pool, replaced } = newPool(); // defaults: stall timeout 5 s, deadline 10 s, retries on UNAVAILABLE
    const echo = pool.client(TestServiceClient, target);
    // Warm: every endpoint connected and answering.
    for (let i = 0; i < 30; i++) await echo.Echo({ message: 'warm' });
    expect(proxies.map((p) => p.accepted)).toEqual([1, 1, 1]);

    const calls: Call[] = [];
    const t0 = performance.now();
    let frozenAt = Number.POSITIVE_INFINITY;
    const stopAt = t0 + 12_000;
    const caller = async (): Promise<void> => {
      for (let i = 0; performance.now() < stopAt && i < 40_000; i++) {
        const startedAt = performance.now();
        try {
          await echo.Echo({ message: 'x' });
          calls.push({ startedAt, endedAt: performance.now(), ok: true });
        } catch (error) {
          calls.push({ startedAt, endedAt: performance.now(), ok: false, code: (error as { code?: number }).code });
        }
      }
    };
    const freeze = (async () => {
      await sleep(1_000);
      frozenAt = performance.now();
      expect(proxies[0]!.freezeEstablished()).toBe(1);
    })();
    await Promise.all([freeze, ...Array.from({ length: 8 }, caller)]);

    const drops = replaced.filter((r) => r.reason === 'endpoint-stalled');
    expect(drops, JSON.stringify(replaced)).toHaveLength(1);
    const drop = drops[0]!;
    expect(drop).toMatchObject({ address: proxies[0]!.address, stallTimeoutMs: 5_000, replacements: 0 });
    const dropMs = drop.at - frozenAt;
    const after = calls.filter((c) => c.startedAt > drop.at);
    const okAfter = after.filter((c) => c.ok).length;
    const before = calls.filter((c) => c.startedAt <= drop.at && c.startedAt > frozenAt);
    const stats = pool.stats().perChannel[0]!;
    console.info(
      `[chaos endpoint liveness] connection to 1 of 3 endpoints frozen: dropped ${dropMs.toFixed(0)} ms after the freeze ` +
        `(stallTimeoutMs 5000, silentMs ${drop.reason === 'endpoint-stalled' ? drop.silentMs.toFixed(0) : '?'}); ` +
        `after the drop ${okAfter} of ${after.length} calls succeeded (${((100 * okAfter) / after.length).toFixed(2)} %); ` +
        `between freeze and drop ${before.filter((c) => c.ok).length} of ${before.length} (failures ${JSON.stringify(before.filter((c) => !c.ok).map((c) => c.code))}); ` +
        `failures after: ${JSON.stringify(after.filter((c) => !c.ok).map((c) => c.code))}; ` +
        `stats: stalls ${stats.stalls}, endpointStalls ${stats.endpointStalls}, replacements ${stats.replacements}; proxies accepted ${proxies.map((p) => p.accepted).join('/')}`,
    );
    // Dropped once its silence reached the stall timeout (the timer may run a little late on a busy machine).
    expect(dropMs).toBeGreaterThanOrEqual(4_900);
    expect(dropMs).toBeLessThan(5_000 + 1_500);
    expect(after.length).toBeGreaterThan(100);
    expect(okAfter / after.length).toBeGreaterThanOrEqual(0.99);
    // The channel itself was never taken for silent; grpc-js reconnected to the endpoint.
    expect(stats).toMatchObject({ stalls: 0, endpointStalls: 1, replacements: 0 });
    expect(proxies[0]!.accepted).toBe(2);
    expect(proxies[1]!.accepted).toBe(1);
    expect(proxies[2]!.accepted).toBe(1);
  }, 60_000);
});

describe('chaos: a silent connection leaves no circuit open (issue 19 row 5)', () => {
  it('single endpoint, 50 calls/s, 1 s deadlines: calls succeed again within stallTimeoutMs + 1 s of the onset', async () => {
    const proxy = await proxiedServer();
    const { pool, replaced } = newPool({ deadlineMs: 1_000 });
    const breakerChanges: Array<{ state: string; reason: string; at: number }> = [];
    pool.onBreakerStateChange((change) => breakerChanges.push({ state: change.state, reason: change.reason, at: performance.now() }));
    const echo = pool.client(TestServiceClient, proxy.address);
    await echo.Echo({ message: 'warm' });

    const t0 = performance.now();
    let frozenAt = Number.POSITIVE_INFINITY;
    const pending: Array<Promise<Call>> = [];
    for (let i = 0; performance.now() - t0 < 10_000 && i < 600; i++) {
      if (i === 25) {
        frozenAt = performance.now();
        expect(proxy.freezeEstablished()).toBe(1);
      }
      const startedAt = performance.now();
      pending.push(
        echo.Echo({ message: `${i}` }).then(
          () => ({ startedAt, endedAt: performance.now(), ok: true }),
          (error: { code?: number }) => ({ startedAt, endedAt: performance.now(), ok: false, code: error.code }),
        ),
      );
      await sleep(20);
    }
    const calls = await Promise.all(pending);
    const firstOk = calls.find((c) => c.ok && c.startedAt > frozenAt);
    expect(firstOk, JSON.stringify(breakerChanges)).toBeDefined();
    const recoveryMs = firstOk!.endedAt - frozenAt;
    const stalled = replaced.find((r) => r.reason === 'stalled');
    const afterRecovery = calls.filter((c) => c.startedAt > firstOk!.endedAt);
    const refusedAfter = afterRecovery.filter((c) => !c.ok);
    console.info(
      `[chaos circuits after a stall] calls succeed again ${recoveryMs.toFixed(0)} ms after the onset ` +
        `(stall replacement at ${stalled === undefined ? '-' : (stalled.at - frozenAt).toFixed(0)} ms); ` +
        `breaker: ${breakerChanges.map((c) => `${c.state}/${c.reason}@${(c.at - frozenAt).toFixed(0)}`).join(', ')}; ` +
        `${refusedAfter.length} of ${afterRecovery.length} calls after the recovery failed`,
    );
    expect(stalled).toBeDefined();
    // The goal: stallTimeoutMs (5 s) + 1 s; the circuit's own reset timeout would have been 10 s after it opened.
    expect(recoveryMs).toBeLessThan(6_000);
    expect(refusedAfter).toEqual([]);
  }, 60_000);
});
