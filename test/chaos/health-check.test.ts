// Client-side health checking (gRFC A17) under load (slow tier: it measures time). Issue 19's
// rows: an endpoint that reports NOT_SERVING gets no new picks within 1 s and 0 calls fail with
// two or more endpoints; SERVING brings it back. Pool defaults plus `healthCheck: {}`, 8 callers
// in a tight loop (about 1,000 calls/s on an idle machine), real grpc-js servers on 127.0.0.1
// each serving the standard health service.
//
// The worst case: the endpoint stops serving (every call UNAVAILABLE) at the very moment it says
// NOT_SERVING. Calls already on their way to it in that moment fail their attempt, and are
// retried on another endpoint (the pool's default retry of UNAVAILABLE): no call fails.
import * as grpc from '@grpc/grpc-js';
import { afterEach, describe, expect, it } from 'vitest';
import { startFleet, type Fleet } from '../helpers/endpoint-fleet.js';
import { describeLoad, drive } from '../helpers/load.js';
import { TestServiceClient } from '../helpers/protos.js';
import { ChannelPool, type EndpointHealthChange } from '../../src/index.js';
import type { Test } from '../helpers/fleet-scenario.js';
import { sleep } from './support.js';

/** Issue 19: no new picks this long after the endpoint says NOT_SERVING. */
const NO_PICKS_AFTER_MS = 1_000;
/** How long the load runs after the onset, and after the recovery. */
const AFTER_ONSET_MS = 3_000;

let fleet: Fleet | undefined;
let pool: ChannelPool | undefined;
afterEach(async () => {
  await pool?.close({ graceMs: 0 });
  await fleet?.close();
  pool = fleet = undefined;
});

describe('an endpoint that says NOT_SERVING under load (8 callers)', () => {
  for (const n of [2, 3]) {
    it(`1 of ${n}: no call started ${NO_PICKS_AFTER_MS} ms after the onset reaches it, 0 calls fail, and SERVING brings it back`, async () => {
      fleet = await startFleet(
        Array.from({ length: n }, () => 'healthy' as const),
        { health: true },
      );
      pool = new ChannelPool();
      const events: Array<EndpointHealthChange & { at: number }> = [];
      pool.onEndpointHealth((event) => events.push({ ...event, at: performance.now() }));
      const test = pool.client(TestServiceClient, fleet.target, { healthCheck: {} }) as unknown as Test;
      const sick = fleet.endpoints[0]!;
      await test.Echo({ message: 'warm' });
      await expect.poll(() => events.filter((e) => e.status === 'SERVING').length).toBe(n);

      const startedAt = new Map<string, number>();
      let stop = false;
      const load = drive(
        async (i) => {
          const id = `c${i}`;
          startedAt.set(id, performance.now());
          await test.Echo({ message: 'x' }, { metadata: { 'x-call-id': id } });
        },
        { durationMs: 120_000, maxCalls: 10_000_000, concurrency: 8, until: () => stop },
      );
      try {
        await scenario();
      } finally {
        stop = true;
      }
      const result = await load;
      console.log(`1 of ${n}: ${describeLoad(result)}`);
      expect(result.ok, describeLoad(result)).toBe(result.calls);

      async function scenario(): Promise<void> {
        await expect.poll(() => sick.arrived, { message: 'the endpoint has its share before the onset' }).toBeGreaterThan(50);

        const onset = performance.now();
        sick.setMode(grpc.status.UNAVAILABLE);
        sick.health!.set('', 'NOT_SERVING');
        await sleep(AFTER_ONSET_MS);
        const reported = events.find((e) => e.address === sick.address && e.status === 'NOT_SERVING');
        expect(reported, 'the NOT_SERVING report').toBeDefined();
        const late = sick.callIds.filter((id) => id !== undefined && startedAt.get(id)! >= onset + NO_PICKS_AFTER_MS);
        const callsAfter = [...startedAt.values()].filter((t) => t >= onset + NO_PICKS_AFTER_MS).length;
        console.log(
          `1 of ${n}: NOT_SERVING reported ${(reported!.at - onset).toFixed(1)} ms after the onset; ` +
            `${callsAfter} calls started from ${NO_PICKS_AFTER_MS} ms after it, ${late.length} of them reached the endpoint`,
        );
        expect(reported!.at - onset, 'ms from the onset to the report').toBeLessThan(NO_PICKS_AFTER_MS);
        expect(late, `calls started ${NO_PICKS_AFTER_MS} ms or more after the onset that reached the NOT_SERVING endpoint`).toEqual([]);
        // About 2,000 on an idle machine; a few hundred on a loaded one.
        expect(callsAfter).toBeGreaterThan(100);

        // SERVING again: it gets calls again.
        sick.setMode('healthy');
        const recovered = performance.now();
        sick.health!.set('', 'SERVING');
        const arrivedBefore = sick.arrived;
        await expect.poll(() => sick.arrived - arrivedBefore, { timeout: 10_000 }).toBeGreaterThan(50);
        console.log(`1 of ${n}: 50 calls reached it again ${(performance.now() - recovered).toFixed(0)} ms after SERVING`);
      }
    });
  }
});
