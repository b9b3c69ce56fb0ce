// Chaos: a flapping backend, up 1 s, down 1 s, for 20 s, under steady load. The fault proxy
// in front of the server does the flapping: 'refuse' (the port is closed, connects fail with
// ECONNREFUSED) plus cutAll() (every open connection reset mid-call) for down, 'pass' for up.
//
// Policies: the pool's defaults for retries (3 attempts, UNAVAILABLE, throttled) and for the
// breaker (50 % of at least 20 calls), with a 1 s call deadline and these settings, chosen so
// the pool can recover within a 1 s up phase:
// - breaker windowMs 1000 (default 10000): the rate is measured over the last second, so one
//   down phase opens the circuit, and the successes of the previous up phase do not hide it;
// - channel reconnect backoff 100-300 ms (grpc-js default 1-120 s): grpc-js's backoff grows
//   across down phases, and at its default would miss whole up phases; with a 300 ms cap
//   (plus 20 % jitter) the channel is READY again within ~0.4 s of an up phase's start;
// - breaker resetTimeoutMs 500 (default 10000): probes come every ~0.5 s while the circuit
//   is open, so one lands between that reconnection and the end of the up phase. (With 700
//   or more, the probes can fall just before the reconnection and just after the phase.)
// With these, at least one breaker transition is expected: the first down phase fails every
// call, well over 20 calls within a second.
import * as grpc from '@grpc/grpc-js';
import { describe, expect, it } from 'vitest';
import { ChannelPool, type BreakerStateChange } from '../../src/index.js';
import { startFaultProxy } from '../helpers/fault-proxy.js';
import { TestServiceClient } from '../helpers/protos.js';
import { startTestServer } from '../helpers/test-server.js';
import {
  collectUnhandledRejections,
  histogram,
  late,
  maxMs,
  percentileMs,
  runWorkers,
  sleep,
  timed,
  untyped,
  useScene,
  type Outcome,
} from './support.js';

const PHASE_MS = 1_000;
const PHASES = 20; // up, down, up, down, ...: 20 s
const WORKERS = 50;
const PAUSE_MS = 20; // between a worker's calls: steady load, not a busy loop on fast failures
const MAX_CALLS = 200_000;
const DEADLINE_MS = 1_000;

function countBy(keys: readonly string[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const key of keys) counts[key] = (counts[key] ?? 0) + 1;
  return counts;
}

const scene = useScene();

describe('chaos: flapping backend (1 s up, 1 s down) under steady load', () => {
  it('settles every call in time, keeps one channel, and serves in the up phases', { timeout: 60_000 }, async () => {
    const unhandled = collectUnhandledRejections();
    scene.cleanups.push(unhandled.dispose);
    scene.server = await startTestServer();
    scene.proxy = await startFaultProxy({ port: scene.server.port });
    scene.pool = new ChannelPool({
      deadlineMs: DEADLINE_MS,
      breaker: { windowMs: 1_000, resetTimeoutMs: 500 },
      channelOptions: { 'grpc.initial_reconnect_backoff_ms': 100, 'grpc.max_reconnect_backoff_ms': 300 },
    });
    const transitions: Array<BreakerStateChange & { at: number }> = [];
    scene.pool.onBreakerStateChange((change) => transitions.push({ ...change, at: performance.now() }));
    const echo = scene.pool.client(TestServiceClient, scene.proxy.address);
    await expect(echo.Echo({ message: 'warm-up' }, { deadlineMs: 5_000 })).resolves.toMatchObject({ message: 'warm-up' });

    const startedAt = performance.now();
    const endsAt = startedAt + PHASES * PHASE_MS;
    const phaseOf = (at: number): number => Math.min(PHASES - 1, Math.floor((at - startedAt) / PHASE_MS));
    const isUp = (phase: number): boolean => phase % 2 === 0;

    // The flapper: switches the proxy at each phase boundary, on a fixed schedule (no drift).
    const flapper = (async () => {
      for (let phase = 1; phase < PHASES; phase++) {
        await sleep(Math.max(0, startedAt + phase * PHASE_MS - performance.now()));
        if (isUp(phase)) {
          await scene.proxy!.setMode('pass');
        } else {
          await scene.proxy!.setMode('refuse');
          scene.proxy!.cutAll();
        }
      }
    })();

    const outcomes: Outcome[] = [];
    const issued = await runWorkers({ workers: WORKERS, maxCalls: MAX_CALLS, untilMs: endsAt, pauseMs: PAUSE_MS }, async (i) => {
      outcomes.push(await timed(DEADLINE_MS, () => echo.Echo({ message: `load-${i}` })));
    });
    await flapper;
    await scene.proxy.setMode('pass');

    const stats = scene.pool.stats();
    const channel = stats.perChannel[0]!;
    const successesByPhase = Array.from({ length: PHASES }, () => 0);
    const failuresByPhase = Array.from({ length: PHASES }, () => 0);
    for (const o of outcomes) (o.ok ? successesByPhase : failuresByPhase)[phaseOf(o.settledAt)]!++;
    const upPhases = successesByPhase.filter((_, phase) => isUp(phase));
    const upPhasesServed = upPhases.filter((n) => n > 0).length;
    const failures = outcomes.filter((o) => !o.ok);
    const codes: Record<string, number> = {};
    for (const o of failures) {
      const code = (o.error as { code: number }).code;
      codes[code] = (codes[code] ?? 0) + 1;
    }
    const opened = transitions.filter((t) => t.state === 'open').length;
    const retries = stats.perChannel.reduce((sum, c) => sum + c.retries, 0);
    const throttledRetries = stats.perChannel.reduce((sum, c) => sum + c.throttledRetries, 0);
    const rejected = stats.perChannel.reduce((sum, c) => sum + c.breakers.reduce((n, b) => n + b.rejected, 0), 0);

    console.info(
      `[chaos flapping] ${(PHASES * PHASE_MS) / 1000} s, ${WORKERS} workers: ${issued} calls, ` +
        `${outcomes.filter((o) => o.ok).length} succeeded, ${failures.length} failed ${JSON.stringify(histogram(failures))} ` +
        `(by code ${JSON.stringify(codes)}); retries ${retries}, throttled retries ${throttledRetries}; ` +
        `breaker transitions ${transitions.length} ${JSON.stringify(countBy(transitions.map((t) => `${t.state}:${t.reason}`)))}, ` +
        `first: ${transitions
          .slice(0, 3)
          .map((t) => `${((t.at - startedAt) / 1000).toFixed(2)} s ${t.state}`)
          .join(', ')}; ` +
        `calls refused by the open circuit ${rejected}; ` +
        `successes per up phase [${upPhases.join(', ')}], ${upPhasesServed}/${upPhases.length} up phases served, ` +
        `${successesByPhase.filter((_, phase) => !isUp(phase)).reduce((a, b) => a + b, 0)} successes settled in down phases; ` +
        `ok/failed per phase ${successesByPhase.map((ok, phase) => `${ok}/${failuresByPhase[phase]}`).join(' ')}; ` +
        `settle time p50 ${percentileMs(outcomes, 50).toFixed(0)} ms, p99 ${percentileMs(outcomes, 99).toFixed(0)} ms, max ${maxMs(outcomes).toFixed(0)} ms (deadline ${DEADLINE_MS} ms); ` +
        `channels ${stats.channels}, channelsCreated ${stats.channelsCreated}, replacements ${channel.replacements}`,
    );

    // Every call settled (each worker awaited each of its calls), with a result or a typed error.
    expect(outcomes).toHaveLength(issued);
    expect(channel.started).toBe(issued + 1);
    expect(channel.succeeded + channel.failed).toBe(issued + 1);
    expect(stats.inFlight).toBe(0);
    expect(untyped(failures)).toEqual([]);
    // Nothing outlived its deadline.
    expect(late(outcomes)).toEqual([]);
    // One channel, never re-created.
    expect(stats.channels).toBe(1);
    expect(stats.channelsCreated).toBe(1);
    // The pool served in the up phases: in most of them (a probe may just miss a short one).
    expect(upPhasesServed).toBeGreaterThanOrEqual(7);
    // And failed in the down phases with outage codes only: UNAVAILABLE (refused, reset, or
    // an open circuit) or DEADLINE_EXCEEDED (a call caught connecting when the phase changed).
    expect(failures.length).toBeGreaterThan(0);
    for (const code of Object.keys(codes).map(Number)) {
      expect([grpc.status.UNAVAILABLE, grpc.status.DEADLINE_EXCEEDED]).toContain(code);
    }
    // The breaker opened in a down phase, and closed again after a successful probe.
    expect(opened).toBeGreaterThanOrEqual(1);
    expect(transitions.some((t) => t.state === 'closed' && t.reason === 'probe-succeeded')).toBe(true);
    // After the storm, the pool serves again on the same channel.
    // (Polled: the circuit may be open, waiting for its next probe, when the load stops.)
    const after: Outcome[] = [];
    const recoveryStartedAt = performance.now();
    while (performance.now() - recoveryStartedAt < 5_000 && !after.at(-1)?.ok) {
      after.push(await timed(1_000, () => echo.Echo({ message: 'after' })));
      if (!after.at(-1)!.ok) await sleep(100);
    }
    expect(after.at(-1)?.ok, JSON.stringify(histogram(after))).toBe(true);
    expect(untyped(after)).toEqual([]);
    expect(scene.pool.stats()).toMatchObject({ channels: 1, channelsCreated: 1 });
    await sleep(0);
    expect(unhandled.reasons).toEqual([]);
  });
});
