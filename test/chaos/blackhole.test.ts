// Chaos: peers that swallow packets. (a) Every connection goes into a blackhole: TCP is
// accepted, nothing ever comes back. A user must see DEADLINE_EXCEEDED at the deadline, never
// later, and nothing left hanging. (b) The half-open peer: the first connection is accepted
// and never answered (no HTTP/2 SETTINGS), later ones work. grpc-js alone would wait on it
// for ever; the pool's connect watchdog replaces the stuck channel after connectTimeoutMs.
import * as grpc from '@grpc/grpc-js';
import { describe, expect, it } from 'vitest';
import { ChannelPool, type BreakerStateChange, type ChannelReplaced, type ConnectTimeoutReplacement } from '../../src/index.js';
import { startFaultProxy } from '../helpers/fault-proxy.js';
import { channelzChannels } from '../helpers/net.js';
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
  type Outcome,
} from './support.js';

// Channels of this file never share grpc-js subchannels with other tests' channels.
const LOCAL_SUBCHANNELS = { 'grpc.use_local_subchannel_pool': 1 };

const scene = useScene();

describe('chaos: blackholed backend', () => {
  it('fails every call with DEADLINE_EXCEEDED at its deadline, not later, and leaves nothing hanging', async () => {
    const unhandled = collectUnhandledRejections();
    scene.cleanups.push(unhandled.dispose);
    scene.server = await startTestServer();
    scene.proxy = await startFaultProxy({ port: scene.server.port }, { mode: 'blackhole' });
    const deadlineMs = 500;
    // Default policies; the watchdog (default 20 s) stays out of the way of these 500 ms calls.
    scene.pool = new ChannelPool({ deadlineMs, channelOptions: LOCAL_SUBCHANNELS });
    const echo = scene.pool.client(TestServiceClient, scene.proxy.address);

    // A wave of concurrent calls, all admitted before any fails: each ends at its deadline.
    const wave = await Promise.all(Array.from({ length: 50 }, (_, i) => timed(deadlineMs, () => echo.Echo({ message: `${i}` }))));
    expect(untyped(wave)).toEqual([]);
    expect(histogram(wave)).toEqual({ 'StatusError DEADLINE_EXCEEDED': 50 });
    for (const o of wave) expect(o.ms).toBeGreaterThanOrEqual(deadlineMs - 5);
    expect(late(wave)).toEqual([]);

    // Then calls with their own, varied deadlines.
    // The circuit (default: 50 % of 20 calls) has opened on the wave's DEADLINE_EXCEEDED, so
    // these fail at once with CircuitOpenError: still typed, still well within the deadline.
    const varied = await Promise.all(
      [100, 250, 800, 1_500].map((ms) => timed(ms, () => echo.Echo({ message: `deadline-${ms}` }, { deadlineMs: ms }))),
    );
    expect(untyped(varied)).toEqual([]);
    expect(late(varied)).toEqual([]);
    for (const o of varied) expect(o.error).toMatchObject({ code: grpc.status.UNAVAILABLE });

    // Without the breaker, each call waits out its own deadline exactly.
    const plain = scene.pool.client(TestServiceClient, scene.proxy.address, { breaker: false });
    const own: Outcome[] = await Promise.all(
      [100, 250, 800, 1_500].map((ms) => timed(ms, () => plain.Echo({ message: `plain-${ms}` }, { deadlineMs: ms }))),
    );
    expect(untyped(own)).toEqual([]);
    for (const o of own) {
      expect(o.error).toMatchObject({ code: grpc.status.DEADLINE_EXCEEDED });
      expect(o.ms).toBeGreaterThanOrEqual(o.deadlineMs - 5);
    }
    expect(late(own)).toEqual([]);

    const stats = scene.pool.stats();
    console.info(
      `[chaos blackhole] 50 calls (deadline ${deadlineMs} ms): ${JSON.stringify(histogram(wave))}, ` +
        `settled after p50 ${percentileMs(wave, 50).toFixed(0)} ms, max ${maxMs(wave).toFixed(0)} ms; ` +
        `then, circuit open: ${JSON.stringify(histogram(varied))} after max ${maxMs(varied).toFixed(1)} ms; ` +
        `breaker off: ${own.map((o) => `${o.deadlineMs}→${o.ms.toFixed(0)} ms`).join(', ')}; ` +
        `proxy accepted ${scene.proxy.accepted} connection(s), server saw ${scene.server.calls.length} calls`,
    );
    expect(scene.server.calls).toHaveLength(0);
    expect(stats.channels).toBe(1);
    expect(stats.channelsCreated).toBe(1);
    expect(stats.inFlight).toBe(0);
    expect(stats.perChannel[0]).toMatchObject({ started: 58, failed: 58, succeeded: 0, replacements: 0 });
    expect(unhandled.reasons).toEqual([]);
  });

  it('replaces a channel stuck on a half-open peer (connectTimeoutMs 500): calls succeed afterwards, one channel', async () => {
    const unhandled = collectUnhandledRejections();
    scene.cleanups.push(unhandled.dispose);
    scene.server = await startTestServer();
    scene.proxy = await startFaultProxy({ port: scene.server.port }, { blackholeFirst: 1 });
    const deadlineMs = 3_000;
    scene.pool = new ChannelPool({ deadlineMs, connectTimeoutMs: 500, channelOptions: LOCAL_SUBCHANNELS });
    const replaced: ChannelReplaced[] = [];
    scene.pool.onChannelReplaced((event) => replaced.push(event));
    const echo = scene.pool.client(TestServiceClient, scene.proxy.address);

    // Calls made while the channel is stuck wait for the watchdog; the grpc-js channel it
    // closes fails them with UNAVAILABLE, and the default policy retries them on the new one.
    // (A few calls: retry throttling, gRFC A6, takes a token per failure and stops retrying at
    // half the bucket, 5 of the default 10 tokens; a larger burst is the next test.)
    const stuck = await Promise.all(Array.from({ length: 3 }, (_, i) => timed(deadlineMs, () => echo.Echo({ message: `stuck-${i}` }))));
    expect(untyped(stuck)).toEqual([]);
    expect(late(stuck)).toEqual([]);
    expect(replaced).toHaveLength(1);
    expect(replaced[0]).toMatchObject({ target: scene.proxy.address, reason: 'connect-timeout', replacements: 1 });
    expect((replaced[0] as ConnectTimeoutReplacement).connectingMs).toBeGreaterThanOrEqual(490);
    expect(histogram(stuck)).toEqual({ ok: 3 });
    // They waited for the watchdog (500 ms), not for their deadline (3 s).
    expect(maxMs(stuck)).toBeLessThan(deadlineMs);
    expect(scene.pool.stats().perChannel[0]).toMatchObject({ retries: 3, throttledRetries: 0 });

    // Afterwards, on the replacement channel: every call succeeds.
    const after = await Promise.all(Array.from({ length: 100 }, (_, i) => timed(deadlineMs, () => echo.Echo({ message: `after-${i}` }))));
    expect(histogram(after)).toEqual({ ok: 100 });
    expect(late(after)).toEqual([]);

    const stats = scene.pool.stats();
    console.info(
      `[chaos blackhole] half-open peer: replaced after ${(replaced[0] as ConnectTimeoutReplacement).connectingMs.toFixed(0)} ms connecting; ` +
        `3 calls made while stuck: ${JSON.stringify(histogram(stuck))} (max ${maxMs(stuck).toFixed(0)} ms; ` +
        `retries ${stats.perChannel[0]!.retries}, throttled ${stats.perChannel[0]!.throttledRetries}); ` +
        `100 calls after: ${JSON.stringify(histogram(after))}; proxy accepted ${scene.proxy.accepted}`,
    );
    expect(stats.channels).toBe(1);
    expect(stats.channelsCreated).toBe(1);
    expect(stats.perChannel[0]).toMatchObject({ replacements: 1, state: 'ready', inFlight: 0 });
    // The stuck grpc-js channel was closed: one grpc-js channel to the target is left.
    expect(await channelzChannels(scene.proxy.address)).toBe(1);
    expect(scene.proxy.accepted).toBe(2);
    expect(unhandled.reasons).toEqual([]);
  });

  it('a burst of 20 calls stuck on the half-open peer: all retried on the new channel, the circuit stays closed', async () => {
    const unhandled = collectUnhandledRejections();
    scene.cleanups.push(unhandled.dispose);
    scene.server = await startTestServer();
    scene.proxy = await startFaultProxy({ port: scene.server.port }, { blackholeFirst: 1 });
    const deadlineMs = 3_000;
    const resetTimeoutMs = 1_000;
    // Default policies, but a 1 s breaker reset so the scenario runs in seconds.
    scene.pool = new ChannelPool({ deadlineMs, connectTimeoutMs: 500, breaker: { resetTimeoutMs }, channelOptions: LOCAL_SUBCHANNELS });
    const changes: BreakerStateChange[] = [];
    scene.pool.onBreakerStateChange((change) => changes.push(change));
    const echo = scene.pool.client(TestServiceClient, scene.proxy.address);

    // The swap fails all 20 queued attempts at once with UNAVAILABLE. Those failures say
    // nothing about the backend (the watchdog closed their channel): the breaker does not count
    // them and they take no retry-throttling token, so all 20 are retried on the new channel.
    // (Counted, 20 failures of 20 would open the circuit just as the new channel could serve.)
    const stuck = await Promise.all(Array.from({ length: 20 }, (_, i) => timed(deadlineMs, () => echo.Echo({ message: `burst-${i}` }))));
    expect(untyped(stuck)).toEqual([]);
    expect(late(stuck)).toEqual([]);
    expect(maxMs(stuck)).toBeLessThan(deadlineMs);
    expect(histogram(stuck)).toEqual({ ok: 20 });
    expect(changes).toEqual([]);
    const during = scene.pool.stats().perChannel[0]!;
    expect(during).toMatchObject({ retries: 20, throttledRetries: 0 });

    // Once the circuit lets its probe through (after resetTimeoutMs), the healed channel serves.
    const probes: Outcome[] = [];
    const probingSince = performance.now();
    while (performance.now() - probingSince < resetTimeoutMs + 4_000 && !probes.at(-1)?.ok) {
      probes.push(await timed(deadlineMs, () => echo.Echo({ message: 'probe' })));
      if (!probes.at(-1)!.ok) await sleep(50);
    }
    expect(untyped(probes)).toEqual([]);
    expect(probes.at(-1)?.ok).toBe(true);
    const recoveredAfterMs = probes.at(-1)!.settledAt - probingSince;
    expect(recoveredAfterMs).toBeLessThan(resetTimeoutMs + 1_500);
    const after = await Promise.all(Array.from({ length: 50 }, (_, i) => timed(deadlineMs, () => echo.Echo({ message: `after-${i}` }))));
    expect(histogram(after)).toEqual({ ok: 50 });

    const stats = scene.pool.stats();
    console.info(
      `[chaos blackhole] half-open peer, burst of 20 stuck calls: ${JSON.stringify(histogram(stuck))} ` +
        `(max ${maxMs(stuck).toFixed(0)} ms; retries ${during.retries}, throttled ${during.throttledRetries}); ` +
        `breaker ${changes.map((c) => `${c.state}:${c.reason}`).join(' → ')}; ` +
        `served again ${recoveredAfterMs.toFixed(0)} ms after the burst (${probes.length} probes); 50 calls after: ${JSON.stringify(histogram(after))}`,
    );
    expect(stats).toMatchObject({ channels: 1, channelsCreated: 1 });
    expect(stats.perChannel[0]).toMatchObject({ replacements: 1, inFlight: 0 });
    expect(unhandled.reasons).toEqual([]);
  });
});
