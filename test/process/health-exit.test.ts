// Client-side health checking in a process of its own: the Watch streams are calls, which keep
// a Node process alive while they are open; once the pool is closed, every stream and every
// retry timer is gone and the process ends by itself.
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startFleet, type Fleet } from '../helpers/endpoint-fleet.js';
import { CHILD_LIMIT_MS, CHILD_TEST_TIMEOUT_MS, FIXTURES, runNode } from './run-node.js';

let healthy: Fleet;
let failing: Fleet;

beforeAll(async () => {
  healthy = await startFleet(['healthy', 'healthy'], { health: true });
  failing = await startFleet(['healthy'], { health: true });
  failing.endpoints[0]!.health!.failWatches(grpc.status.INTERNAL);
});

afterAll(async () => {
  await healthy.close();
  await failing.close();
});

describe('health checking in a child process', { timeout: CHILD_TEST_TIMEOUT_MS }, () => {
  it.each(['esm', 'cjs'])('%s: close() releases every Watch stream and retry timer, and the process exits by itself', async (flavour) => {
    const result = await runNode(process.execPath, [`${FIXTURES}health-exit-after-close.mjs`, healthy.target, failing.target, flavour]);
    expect(result.stderr).toBe('');
    // Killed by runNode's limit means a stream or a timer kept the event loop alive.
    expect(result.signal).toBeNull();
    expect(result.code).toBe(0);
    const report = JSON.parse(result.stdout) as {
      outcomes: string[];
      events: string[];
      result: object;
      closedAt: number;
      resources: string[];
    };
    expect(report.outcomes).toEqual(['ok', 'ok', 'ok', 'ok']);
    expect(report.events).toEqual(['SERVING:true', 'SERVING:true', 'WATCH_FAILED:false']);
    expect(report.result).toMatchObject({ drained: 0, cancelled: 0 });
    expect(report.resources.filter((r) => r === 'Timeout')).toEqual([]);
    expect(result.exitedAt - report.closedAt).toBeLessThan(CHILD_LIMIT_MS / 3);
    // The child's streams are gone on the servers' side too (its sockets closed with it).
    await expect.poll(() => healthy.endpoints.map((e) => e.health!.openWatches)).toEqual([0, 0]);
  });
});
