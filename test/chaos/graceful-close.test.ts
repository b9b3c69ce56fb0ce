// Chaos: close({ graceMs: 1000 }) under load, 200 calls in flight with server delays spread
// from 50 ms to 3 s. What a user would notice: the calls that can finish within the grace
// period succeed, the others reject with a CANCELLED StatusError once it ends, none is lost
// or left pending, close() accounts for every call that was in flight, and calls made while
// the pool closes are refused with PoolClosedError.
import * as grpc from '@grpc/grpc-js';
import { describe, expect, it } from 'vitest';
import { ChannelPool, PoolClosedError, StatusError } from '../../src/index.js';
import { channelzChannels } from '../helpers/net.js';
import { TestServiceClient } from '../helpers/protos.js';
import { startTestServer } from '../helpers/test-server.js';
import { collectUnhandledRejections, histogram, late, sleep, timed, untyped, useScene, waitUntil, type Outcome } from './support.js';

const CALLS = 200;
const MIN_DELAY_MS = 50;
const MAX_DELAY_MS = 3_000;
const GRACE_MS = 1_000;
const DEADLINE_MS = 10_000;
// Event-loop lag allowed around the grace period's end when sorting calls into "must have
// finished" and "must have been cancelled"; calls closer than this to the boundary may go either way.
const BOUNDARY_MS = 400;

const scene = useScene();

/** Server delay of call i: spread evenly over [50 ms, 3 s], in a shuffled (but fixed) order. */
function delayOf(i: number): number {
  const rank = (i * 73) % CALLS; // 73 is prime to 200: a permutation of 0..199
  return Math.round(MIN_DELAY_MS + (rank * (MAX_DELAY_MS - MIN_DELAY_MS)) / (CALLS - 1));
}

describe('chaos: graceful close under load', () => {
  it('drains what finishes within graceMs, cancels the rest, loses nothing, refuses new calls', async () => {
    const unhandled = collectUnhandledRejections();
    scene.cleanups.push(unhandled.dispose);
    scene.server = await startTestServer();
    scene.pool = new ChannelPool({ deadlineMs: DEADLINE_MS });
    const echo = scene.pool.client(TestServiceClient, scene.server.address);
    await echo.Echo({ message: 'warm-up' });

    const calls = Array.from({ length: CALLS }, (_, i) =>
      timed(DEADLINE_MS, () =>
        echo.Echo({ message: `call-${i}` }, { metadata: { 'x-delay-ms': String(delayOf(i)), 'x-call-id': `call-${i}` } }),
      ),
    );
    expect(await waitUntil(() => scene.server!.calls.length === CALLS + 1, 10_000)).toBe(true);

    // close() begins.
    const inFlightAtClose = scene.pool.stats().inFlight;
    const closeStartedAt = performance.now();
    const closeStartedAtEpoch = Date.now();
    const closing = scene.pool.close({ graceMs: GRACE_MS });

    // New calls while the pool closes: refused at once, without touching the network.
    const seen = scene.server.calls.length;
    const refusing = Promise.all(Array.from({ length: 20 }, (_, i) => timed(DEADLINE_MS, () => echo.Echo({ message: `late-${i}` }))));
    // At once: all 20 are refused before any timer can fire.
    expect(await Promise.race([refusing.then(() => 'all refused'), sleep(0).then(() => 'a timer fired first')])).toBe('all refused');
    const refused = await refusing;
    expect(histogram(refused)).toEqual({ PoolClosedError: 20 });
    for (const o of refused) expect(o.error).toMatchObject({ code: grpc.status.CANCELLED, method: '/resilient.test.v1.TestService/Echo' });
    expect(() => scene.pool!.client(TestServiceClient, scene.server!.address)).toThrow(PoolClosedError);
    expect(scene.server.calls.length).toBe(seen);
    expect(scene.pool.state).toBe('closing');

    const result = await closing;
    const outcomes: Outcome[] = await Promise.all(calls);
    const settledBeforeClose = outcomes.filter((o) => o.settledAt < closeStartedAt).length;

    // Nothing lost, nothing pending: every call settled, once.
    const fulfilled = outcomes.filter((o) => o.ok);
    const rejected = outcomes.filter((o) => !o.ok);
    expect(fulfilled.length + rejected.length).toBe(CALLS);
    expect(untyped(rejected)).toEqual([]);
    expect(late(outcomes)).toEqual([]);
    // close() accounts for every call in flight when it began.
    expect(inFlightAtClose).toBe(CALLS - settledBeforeClose);
    expect(result.drained + result.cancelled).toBe(inFlightAtClose);
    expect(result.cancelled).toBe(rejected.length);
    expect(result.drained).toBe(fulfilled.length - settledBeforeClose);
    expect(result.durationMs).toBeGreaterThanOrEqual(GRACE_MS - 5);
    expect(result.durationMs).toBeLessThan(GRACE_MS + 1_000);

    // The rest were cancelled when the grace period ended, with CANCELLED, not before.
    for (const o of rejected) {
      expect(o.error).toBeInstanceOf(StatusError);
      expect(o.error).toMatchObject({ code: grpc.status.CANCELLED });
      expect((o.error as StatusError).details).toMatch(/ChannelPool\.close\(\).*graceMs 1000/);
      expect(o.settledAt - closeStartedAt).toBeGreaterThanOrEqual(GRACE_MS - 5);
    }
    // Successes all came before the grace period ended, that is before the first cancellation.
    const cancelledAt = Math.min(...rejected.map((o) => o.settledAt));
    for (const o of fulfilled) expect(o.settledAt).toBeLessThanOrEqual(cancelledAt);

    // Sorted by when the server would answer: clearly within the grace period → succeeded;
    // clearly after it → cancelled.
    const answerAt = (i: number): number => {
      const record = scene.server!.calls.find((c) => c.callId === `call-${i}`)!;
      return record.receivedAt + delayOf(i) - closeStartedAtEpoch;
    };
    const mustDrain: number[] = [];
    const mustCancel: number[] = [];
    outcomes.forEach((o, i) => {
      const at = answerAt(i);
      if (at < GRACE_MS - BOUNDARY_MS) {
        mustDrain.push(i);
        expect(o.ok, `call-${i} (server answers ${at} ms after close began) should have succeeded`).toBe(true);
      } else if (at > GRACE_MS + BOUNDARY_MS) {
        mustCancel.push(i);
        expect(o.ok, `call-${i} (server answers ${at} ms after close began) should have been cancelled`).toBe(false);
      }
    });
    // The mix really had both kinds (most calls take longer than the grace period).
    expect(mustDrain.length).toBeGreaterThan(20);
    expect(mustCancel.length).toBeGreaterThan(80);

    // The cancellations reached the server: nothing keeps running there. (The server may
    // have answered a call, unaware, while the cancellation was on its way: only calls it
    // would answer well after the last cancellation settled must have been cancelled there.)
    const lastCancelledAt = Math.max(...rejected.map((o) => o.settledAt)) - closeStartedAt;
    const stoppedOnServer = outcomes.map((_, i) => i).filter((i) => answerAt(i) > lastCancelledAt + BOUNDARY_MS);
    const cancelledOnServer = (i: number): boolean => scene.server!.calls.find((c) => c.callId === `call-${i}`)!.cancelled;
    expect(stoppedOnServer.length).toBeGreaterThan(50);
    expect(await waitUntil(() => stoppedOnServer.every(cancelledOnServer), 5_000)).toBe(true);
    const stats = scene.pool.stats();
    expect(stats).toMatchObject({ state: 'closed', channels: 0, channelsCreated: 1, channelsClosed: 1, inFlight: 0 });
    expect(await channelzChannels(scene.server.address)).toBe(0);

    console.info(
      `[chaos graceful-close] ${CALLS} calls (server delays ${MIN_DELAY_MS}-${MAX_DELAY_MS} ms), ${inFlightAtClose} in flight at close: ` +
        `${JSON.stringify(histogram(outcomes))}; close() → drained ${result.drained}, cancelled ${result.cancelled}, ` +
        `${result.durationMs.toFixed(0)} ms (graceMs ${GRACE_MS}); 20 calls during close: ${JSON.stringify(histogram(refused))}`,
    );
    expect(unhandled.reasons).toEqual([]);
  });
});
