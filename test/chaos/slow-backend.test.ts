// Chaos: a backend that answers after 300 ms while callers give it 100 ms. What a user would
// notice: every call ends with DEADLINE_EXCEEDED at its deadline (not at 300 ms, not later);
// once enough have failed the circuit opens and callers get a CircuitOpenError at once,
// without touching the network; when the backend is fast again, the probe after
// resetTimeoutMs succeeds, the circuit closes and calls succeed.
import * as grpc from '@grpc/grpc-js';
import { describe, expect, it } from 'vitest';
import { ChannelPool, type CircuitOpenError, type StatusError, type BreakerStateChange } from '../../src/index.js';
import { TestServiceClient } from '../helpers/protos.js';
import { startTestServer } from '../helpers/test-server.js';
import {
  collectUnhandledRejections,
  histogram,
  late,
  maxMs,
  percentileMs,
  sleep,
  timed,
  untyped,
  useScene,
  waitUntil,
  type Outcome,
} from './support.js';

const DEADLINE_MS = 100;
const SERVER_DELAY_MS = 300;
const VOLUME_THRESHOLD = 10;
const RESET_TIMEOUT_MS = 1_000;
// A DEADLINE_EXCEEDED must come at the deadline: well before the server's 300 ms answer would
// have, on a quiet machine. The margin allows for a busy one.
const DEADLINE_MARGIN_MS = 400;
const RECOVERY_DEADLINE_MS = 2_000;

const scene = useScene();

describe('chaos: slow backend (answers in 300 ms, callers allow 100 ms)', () => {
  it('holds the deadlines, opens the circuit on DEADLINE_EXCEEDED, and closes it once the backend is fast again', async () => {
    const unhandled = collectUnhandledRejections();
    scene.cleanups.push(unhandled.dispose);
    scene.server = await startTestServer();
    // Default retries (DEADLINE_EXCEEDED of the call's own deadline is never retried) and a
    // breaker with a smaller volume and a 1 s reset, so the scenario runs in seconds.
    scene.pool = new ChannelPool({
      deadlineMs: DEADLINE_MS,
      breaker: { volumeThreshold: VOLUME_THRESHOLD, resetTimeoutMs: RESET_TIMEOUT_MS },
    });
    const changes: Array<BreakerStateChange & { at: number }> = [];
    scene.pool.onBreakerStateChange((change) => changes.push({ ...change, at: performance.now() }));
    const echo = scene.pool.client(TestServiceClient, scene.server.address);
    // The backend's speed, switched by the test: every request carries the current script.
    let backendDelayMs = 0;
    const call = (message: string, deadlineMs = DEADLINE_MS): Promise<Outcome> =>
      timed(deadlineMs, () => echo.Echo({ message }, { deadlineMs, metadata: { 'x-delay-ms': String(backendDelayMs) } }));

    // Connect first (with time to spare), so the deadlines below measure the slow answers,
    // not the handshake.
    await expect(echo.Echo({ message: 'warm-up' }, { deadlineMs: 5_000 })).resolves.toMatchObject({ message: 'warm-up' });

    // 1. The backend turns slow: the first wave of concurrent calls all time out at the deadline.
    backendDelayMs = SERVER_DELAY_MS;
    const seenBefore = scene.server.calls.length;
    const slow = await Promise.all(Array.from({ length: VOLUME_THRESHOLD }, (_, i) => call(`slow-${i}`)));
    expect(untyped(slow)).toEqual([]);
    expect(histogram(slow)).toEqual({ 'StatusError DEADLINE_EXCEEDED': VOLUME_THRESHOLD });
    for (const o of slow) {
      expect((o.error as StatusError).attempts).toBe(1);
      // Not early: grpc-js timers may fire a millisecond or two before the nominal instant.
      expect(o.ms).toBeGreaterThanOrEqual(DEADLINE_MS - 5);
    }
    expect(late(slow, DEADLINE_MARGIN_MS)).toEqual([]);
    // None was retried: DEADLINE_EXCEEDED of the call's own deadline is final.
    expect(scene.server.calls.length - seenBefore).toBeLessThanOrEqual(VOLUME_THRESHOLD);

    // 2. The circuit opened on those DEADLINE_EXCEEDED: callers now fail fast, off the network.
    await waitUntil(() => changes.length > 0, 1_000);
    expect(changes.map((c) => `${c.state}:${c.reason}`)).toEqual(['open:error-threshold']);
    const seenOpen = scene.server.calls.length;
    const refusing = Promise.all(Array.from({ length: 200 }, (_, i) => call(`refused-${i}`)));
    // Refused without waiting for anything, not even a timer: all 200 settle before one fires.
    const first = await Promise.race([refusing.then(() => 'all refused'), sleep(0).then(() => 'a timer fired first')]);
    expect(first).toBe('all refused');
    const fast = await refusing;
    expect(histogram(fast)).toEqual({ CircuitOpenError: 200 });
    for (const o of fast) expect(o.error).toMatchObject({ code: grpc.status.UNAVAILABLE, target: scene.server.address });
    expect(late(fast, DEADLINE_MARGIN_MS)).toEqual([]);
    expect(scene.server.calls.length).toBe(seenOpen);
    const nextProbeAt = (fast[0]!.error as CircuitOpenError).nextProbeAt.getTime();
    expect(nextProbeAt).toBeGreaterThan(Date.now());
    expect(nextProbeAt).toBeLessThanOrEqual(Date.now() + RESET_TIMEOUT_MS);

    // 3. The backend is fast again. Until resetTimeoutMs, the circuit stays open; then the
    //    half-open probe goes to the backend, succeeds, and closes the circuit. (From here on
    //    calls get 2 s: the backend answers at once, but 100 ms is tight for 50 concurrent
    //    calls on a busy 2-core machine that also runs the server.)
    backendDelayMs = 0;
    expect(await waitUntil(() => changes.length === 2, RESET_TIMEOUT_MS + 2_000)).toBe(true);
    expect(changes.at(-1)).toMatchObject({ state: 'half-open', reason: 'reset-timeout' });
    const openForMs = changes[1]!.at - changes[0]!.at;
    expect(openForMs).toBeGreaterThanOrEqual(RESET_TIMEOUT_MS - 20);
    const probe = await call('probe', RECOVERY_DEADLINE_MS);
    expect(probe.ok, String(probe.error)).toBe(true);
    expect(changes.map((c) => `${c.state}:${c.reason}`)).toEqual([
      'open:error-threshold',
      'half-open:reset-timeout',
      'closed:probe-succeeded',
    ]);

    // 4. Back to normal.
    const healthy = await Promise.all(Array.from({ length: 50 }, (_, i) => call(`healthy-${i}`, RECOVERY_DEADLINE_MS)));
    expect(histogram(healthy)).toEqual({ ok: 50 });
    expect(late(healthy, DEADLINE_MARGIN_MS)).toEqual([]);

    const stats = scene.pool.stats();
    console.info(
      `[chaos slow-backend] ${VOLUME_THRESHOLD} slow calls: DEADLINE_EXCEEDED after p50 ${percentileMs(slow, 50).toFixed(0)} ms, ` +
        `max ${maxMs(slow).toFixed(0)} ms (deadline ${DEADLINE_MS} ms, server ${SERVER_DELAY_MS} ms); ` +
        `200 calls on the open circuit: CircuitOpenError after max ${maxMs(fast).toFixed(1)} ms; ` +
        `open for ${openForMs.toFixed(0)} ms, probe ok in ${probe.ms.toFixed(0)} ms; ` +
        `breaker ${JSON.stringify(stats.perChannel[0]!.breakers[0])}`,
    );
    expect(stats.channels).toBe(1);
    expect(stats.channelsCreated).toBe(1);
    expect(stats.perChannel[0]).toMatchObject({ retries: 0, inFlight: 0 });
    expect(stats.perChannel[0]!.breakers[0]).toMatchObject({ state: 'closed', opened: 1, rejected: 200 });
    expect(unhandled.reasons).toEqual([]);
  });
});
