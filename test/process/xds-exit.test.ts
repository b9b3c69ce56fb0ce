// An xds: channel in a process of its own: once the pool is closed, the ADS stream to the
// control plane is released and the process ends by itself (grpc-js-xds keeps its xDS client
// and its timers only while a channel watches resources).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startFleet, type Fleet } from '../helpers/endpoint-fleet.js';
import { startControlPlane, type ControlPlane } from '../helpers/xds-control-plane.js';
import { eventually, portOf } from '../helpers/xds-mesh.js';
import { CHILD_LIMIT_MS, CHILD_TEST_TIMEOUT_MS, FIXTURES, runNode } from './run-node.js';

let fleet: Fleet;
let plane: ControlPlane;

beforeAll(async () => {
  fleet = await startFleet(['healthy', 'healthy']);
  plane = await startControlPlane({ backends: fleet.endpoints.map(portOf) });
});

afterAll(async () => {
  await plane.close();
  await fleet.close();
});

describe('an xds: target in a child process', { timeout: CHILD_TEST_TIMEOUT_MS }, () => {
  it.each(['esm', 'cjs'])('%s: calls succeed, close() releases the ADS stream, and the process exits by itself', async (flavour) => {
    const opened = plane.streamsOpened;
    const result = await runNode(process.execPath, [`${FIXTURES}xds-exit-after-close.mjs`, 'xds:///listener1', plane.bootstrap, flavour]);
    expect(result.stderr).toBe('');
    // Killed by runNode's 60 s limit means something kept the event loop alive.
    expect(result.signal).toBeNull();
    expect(result.code).toBe(0);
    const report = JSON.parse(result.stdout) as {
      outcomes: string[];
      stats: object[];
      result: object;
      closedAt: number;
      resources: string[];
    };
    expect(report.outcomes).toEqual(['ok', 'ok', 'ok', 'ok', 'ok']);
    expect(report.stats).toEqual([{ target: 'xds:///listener1', grpcOwnsRetries: true, succeeded: 5 }]);
    expect(report.result).toMatchObject({ drained: 0, cancelled: 0 });
    expect(plane.streamsOpened).toBe(opened + 1);
    // The child is gone; its stream ends on the plane's side once the socket's close is read.
    await eventually(() => plane.openStreams === 0, 'released');
    // No timer is left once close() has resolved, grpc-js-xds's included (sockets may still be closing).
    expect(report.resources.filter((r) => r === 'Timeout')).toEqual([]);
    expect(result.exitedAt - report.closedAt).toBeLessThan(CHILD_LIMIT_MS / 3);
  });
});
