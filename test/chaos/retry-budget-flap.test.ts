// Chaos: one of three endpoints flips sick (UNAVAILABLE) / healthy every 700 ms under a tight
// loop of 8 callers (~1,000 calls/s on loopback), pool defaults: issue 19's flap row. Retries
// land on the healthy endpoints (they avoid the endpoint that just failed), so every call can
// succeed; what this test proves is that the channel's retry allowance (retryThrottling's A6
// bucket, plus the retryBudget's share of the traffic) is never what fails a call while two
// endpoints serve. Goal: >= 99.5 % of calls succeed, none refused by throttling.
//
// And the other side of the budget: when every endpoint turns sick right after such healthy
// traffic (a full budget), the retries still stop at once: < 1.05 attempts per call.
import * as grpc from '@grpc/grpc-js';
import { describe, expect, it } from 'vitest';
import type { Fleet } from '../helpers/endpoint-fleet.js';
import { closeScenariosAfterEach, setUp, type Test } from '../helpers/fleet-scenario.js';
import { describeLoad, drive } from '../helpers/load.js';
import { TestServiceClient } from '../helpers/protos.js';
import { sleep } from './support.js';

closeScenariosAfterEach();

const FLIP_MS = 700;
const DURATION_MS = 12_000;
const CALLERS = 8;
const MAX_CALLS = 60_000;

/** Flips endpoint 0 of `fleet` sick / healthy every FLIP_MS until `stop()`; returns the flip count. */
function flapper(fleet: Fleet): { stop(): Promise<number> } {
  let running = true;
  const loop = (async () => {
    let flips = 0;
    const startedAt = performance.now();
    while (running) {
      flips++;
      // On a fixed schedule (no drift): flip n happens at n * FLIP_MS.
      await sleep(Math.max(0, startedAt + flips * FLIP_MS - performance.now()));
      if (!running) break;
      fleet.endpoints[0]!.setMode(flips % 2 === 1 ? grpc.status.UNAVAILABLE : 'healthy');
    }
    fleet.endpoints[0]!.setMode('healthy');
    return flips;
  })();
  return {
    stop: async () => {
      running = false;
      return loop;
    },
  };
}

describe('chaos: 1 of 3 endpoints flips sick / healthy every 700 ms, 8 callers in a tight loop', () => {
  it('>= 99.5 % of calls succeed, and no retry is refused for want of budget', { timeout: 60_000 }, async () => {
    const { fleet, pool } = await setUp(['healthy', 'healthy', 'healthy']);
    const test = pool.client(TestServiceClient, fleet.target) as unknown as Test;
    // Warm-up: every endpoint connected and serving before the flapping starts.
    for (let i = 0; i < 300 && fleet.endpoints.some((e) => e.arrived === 0); i++) await test.Echo({ message: 'warm-up' });
    expect(fleet.endpoints.every((e) => e.arrived > 0)).toBe(true);
    fleet.resetCounts();

    const flaps = flapper(fleet);
    const result = await drive(() => test.Echo({ message: 'x' }), { durationMs: DURATION_MS, maxCalls: MAX_CALLS, concurrency: CALLERS });
    const flips = await flaps.stop();

    const channel = pool.stats().perChannel[0]!;
    console.info(
      `[chaos retry-budget flap] ${DURATION_MS / 1000} s, ${CALLERS} callers, ${flips} flips: ${describeLoad(result)}; ` +
        `${(result.calls / (DURATION_MS / 1000)).toFixed(0)} calls/s; attempts ${fleet.arrived()} (${(fleet.arrived() / result.calls).toFixed(3)} per call), ` +
        `sick endpoint: ${fleet.endpoints[0]!.arrived} arrived, ${fleet.endpoints[0]!.failed} failed; ` +
        `retries ${channel.retries}, throttled retries ${channel.throttledRetries}, retry tokens ${channel.retryTokens}, ` +
        `${JSON.stringify({ ...channel, breakers: undefined, endpoints: channel.endpoints.map((e) => ({ ...e })) })}`,
    );
    // The scenario ran: a tight loop of calls (~1,000/s on a quiet 2-core machine; the log gives
    // the rate of this run) through every flip.
    expect(flips).toBeGreaterThanOrEqual(DURATION_MS / FLIP_MS - 1);
    expect(result.calls).toBeGreaterThan(1_000);
    // The sick endpoint was really sick for part of the run: attempts failed there.
    expect(fleet.endpoints[0]!.failed).toBeGreaterThan(0);
    expect(result.successPercent, describeLoad(result)).toBeGreaterThanOrEqual(99.5);
    expect(channel.throttledRetries).toBe(0);
  });

  it('a total outage right after healthy traffic still costs < 1.05 attempts per call', { timeout: 60_000 }, async () => {
    // The breaker is off: an open circuit would refuse the calls before any attempt, and hide
    // what the retry layer alone costs.
    const { fleet, pool } = await setUp(['healthy', 'healthy', 'healthy'], { breaker: false });
    const test = pool.client(TestServiceClient, fleet.target) as unknown as Test;
    // Counted in calls, not time: the bucket's few retries are a fixed number, and the share of
    // 1,000 calls they are does not depend on how fast this machine is today.
    const healthy = await drive(() => test.Echo({ message: 'x' }), { durationMs: 30_000, maxCalls: 1_000, concurrency: CALLERS });
    expect(healthy.successPercent, describeLoad(healthy)).toBe(100);
    const before = pool.stats().perChannel[0]!;
    for (const endpoint of fleet.endpoints) endpoint.setMode(grpc.status.UNAVAILABLE);
    fleet.resetCounts();
    const outage = await drive(() => test.Echo({ message: 'x' }), { durationMs: 30_000, maxCalls: 1_000, concurrency: CALLERS });
    const after = pool.stats().perChannel[0]!;
    const perCall = fleet.arrived() / outage.calls;
    console.info(
      `[chaos retry-budget outage] healthy: ${describeLoad(healthy)}, budget ${before.retryBudget} tokens; ` +
        `outage: ${describeLoad(outage)}, ${fleet.arrived()} attempts (${perCall.toFixed(4)} per call), ` +
        `retries ${after.retries - before.retries}, paid by the budget ${after.budgetRetries - before.budgetRetries}, ` +
        `throttled ${after.throttledRetries - before.throttledRetries}, budget left ${after.retryBudget}`,
    );
    // The budget held tokens when the outage began (its reserve, 100, and a share of the 1,000
    // successes): what held the retries back is the budget's own rules, not an empty budget.
    expect(before.retryBudget).toBeGreaterThan(100);
    expect(outage.ok).toBe(0);
    expect(outage.calls).toBe(1_000);
    expect(perCall).toBeLessThan(1.05);
  });
});
