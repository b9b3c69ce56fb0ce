// Chaos: the backend is killed with 1,000 calls in flight, then restarted on the same port.
// What a user would notice: every in-flight call settles at once with a typed error (none
// waits for its deadline, none is lost), the pool keeps its one channel, and calls succeed
// again as soon as grpc-js's reconnect backoff lets the channel reconnect.
import * as grpc from '@grpc/grpc-js';
import { describe, expect, it } from 'vitest';
import { ChannelPool, StatusError, type BreakerStateChange } from '../../src/index.js';
import { TestServiceClient } from '../helpers/protos.js';
import { startTestServer } from '../helpers/test-server.js';
import { collectUnhandledRejections, histogram, late, maxMs, sleep, timed, untyped, useScene, waitUntil, type Outcome } from './support.js';

const IN_FLIGHT = 1_000;
const DEADLINE_MS = 5_000;
// Issuing 1,000 calls takes more than a second on a busy 2-core machine: a 500 ms server
// delay would let the first ones finish before the last arrive. 3 s keeps every one of them
// in flight at the kill, and stays under the deadline.
const SERVER_DELAY_MS = 3_000;
const DOWNTIME_MS = 1_000;
const INITIAL_BACKOFF_MS = 200;
const MAX_BACKOFF_MS = 1_000;
// grpc-js's reconnect backoff is at most MAX_BACKOFF_MS plus 20 % jitter; the rest is margin.
const RECOVERY_LIMIT_MS = MAX_BACKOFF_MS * 1.2 + 1_500;

const scene = useScene();

describe('chaos: server killed with calls in flight, then restarted on the same port', () => {
  it('settles all 1,000 in-flight calls with typed errors, then recovers on the same channel', { timeout: 60_000 }, async () => {
    const unhandled = collectUnhandledRejections();
    scene.cleanups.push(unhandled.dispose);
    scene.server = await startTestServer();
    const port = scene.server.port;
    // The default policies (retry and breaker on), with a short reconnect backoff.
    scene.pool = new ChannelPool({
      deadlineMs: DEADLINE_MS,
      channelOptions: { 'grpc.initial_reconnect_backoff_ms': INITIAL_BACKOFF_MS, 'grpc.max_reconnect_backoff_ms': MAX_BACKOFF_MS },
    });
    const breakerChanges: BreakerStateChange[] = [];
    scene.pool.onBreakerStateChange((change) => breakerChanges.push(change));
    const echo = scene.pool.client(TestServiceClient, scene.server.address);
    await expect(echo.Echo({ message: 'warm-up' })).resolves.toMatchObject({ message: 'warm-up' });

    // 1,000 calls in flight on the server.
    const inFlight = Array.from({ length: IN_FLIGHT }, (_, i) =>
      timed(DEADLINE_MS, () => echo.Echo({ message: `in-flight-${i}` }, { metadata: { 'x-delay-ms': String(SERVER_DELAY_MS) } })),
    );
    const arrived = await waitUntil(() => scene.server!.calls.length === IN_FLIGHT + 1, 15_000);
    expect(arrived, `calls on the server: ${scene.server.calls.length}`).toBe(true);
    expect(scene.pool.stats().inFlight).toBe(IN_FLIGHT);

    // Kill: forceShutdown cuts every connection and call.
    await scene.server.kill();
    const killedAt = performance.now();
    const cut: Outcome[] = await Promise.all(inFlight);
    const lastSettledAfterKillMs = Math.max(...cut.map((o) => o.settledAt - killedAt));

    expect(cut).toHaveLength(IN_FLIGHT);
    expect(cut.filter((o) => o.ok)).toEqual([]);
    expect(untyped(cut)).toEqual([]);
    expect(late(cut)).toEqual([]);
    // grpc-js reports the streams the server reset (forceShutdown sends RST_STREAM CANCEL) as
    // CANCELLED, and a dropped connection as UNAVAILABLE: either way, a StatusError.
    for (const o of cut) {
      expect(o.error).toBeInstanceOf(StatusError);
      expect([grpc.status.CANCELLED, grpc.status.UNAVAILABLE]).toContain((o.error as StatusError).code);
    }
    // Nobody waits for the deadline: the cut is noticed at once.
    expect(lastSettledAfterKillMs).toBeLessThan(2_000);

    // While the backend is down (1 s from the kill, and at least 3 calls), traffic keeps
    // coming, one call every 100 ms: it fails fast with a typed error, and keeps grpc-js's
    // reconnect backoff running, as in production.
    const down: Outcome[] = [];
    while (performance.now() - killedAt < DOWNTIME_MS || down.length < 3) {
      down.push(await timed(1_000, () => echo.Echo({ message: 'down' }, { deadlineMs: 1_000 })));
      await sleep(100);
    }
    expect(down.filter((o) => o.ok)).toEqual([]);
    expect(untyped(down)).toEqual([]);
    expect(late(down)).toEqual([]);

    // Restart on the same port, then probe every 50 ms until a call succeeds (bounded).
    scene.server = await startTestServer({ port });
    const restartedAt = performance.now();
    const probes: Outcome[] = [];
    let recoveredAfterMs: number | undefined;
    while (performance.now() - restartedAt < 10_000) {
      const probe = await timed(1_000, () => echo.Echo({ message: 'probe' }, { deadlineMs: 1_000 }));
      probes.push(probe);
      if (probe.ok) {
        recoveredAfterMs = probe.settledAt - restartedAt;
        break;
      }
      await sleep(50);
    }
    expect(untyped(probes)).toEqual([]);
    expect(late(probes)).toEqual([]);

    // Traffic is back to normal, on the same channel.
    const after = await Promise.all(Array.from({ length: 100 }, (_, i) => timed(DEADLINE_MS, () => echo.Echo({ message: `after-${i}` }))));
    const stats = scene.pool.stats();

    console.info(
      `[chaos server-restart] ${IN_FLIGHT} calls in flight at the kill: ${JSON.stringify(histogram(cut))}, ` +
        `all settled within ${lastSettledAfterKillMs.toFixed(0)} ms of the kill (slowest call ${maxMs(cut).toFixed(0)} ms, deadline ${DEADLINE_MS} ms); ` +
        `${down.length} calls while down: ${JSON.stringify(histogram(down))}; ` +
        `time to first success after restart: ${recoveredAfterMs?.toFixed(0) ?? 'never'} ms ` +
        `(${probes.length} probes; reconnect backoff ${INITIAL_BACKOFF_MS}-${MAX_BACKOFF_MS} ms); ` +
        `100 calls after recovery: ${JSON.stringify(histogram(after))}; ` +
        `channels ${stats.channels}, channelsCreated ${stats.channelsCreated}, replacements ${stats.perChannel[0]?.replacements}, ` +
        `retries ${stats.perChannel[0]?.retries}, breaker transitions ${breakerChanges.length}`,
    );

    expect(recoveredAfterMs, 'time to first success after the restart').toBeDefined();
    expect(recoveredAfterMs!).toBeLessThan(RECOVERY_LIMIT_MS);
    expect(after.every((o) => o.ok)).toBe(true);
    expect(late(after)).toEqual([]);
    expect(stats.channels).toBe(1);
    expect(stats.channelsCreated).toBe(1);
    expect(stats.perChannel[0]).toMatchObject({ replacements: 0, inFlight: 0 });
    expect(stats.perChannel[0]!.started).toBe(1 + IN_FLIGHT + down.length + probes.length + after.length);
    await sleep(0);
    expect(unhandled.reasons).toEqual([]);
  });
});
