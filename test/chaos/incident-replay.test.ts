// Chaos: the incident that motivated the package, at scale. The backend is dead (nothing
// listens on its port) and the application keeps calling it: 100,000 failed calls, 200 at a
// time. What a user would notice: one channel for the whole storm (channelsCreated 1, one
// grpc-js channel in channelz), every call failing fast with a typed error, and a heap that
// stays flat (measured after a forced full GC).
//
// The scenario runs in a child process (node --expose-gc --import tsx): vitest's workers have
// no global.gc, and a fresh process measures the pool's heap alone, not the test runner's.
import * as grpc from '@grpc/grpc-js';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { closedPort } from '../helpers/net.js';
import { runNode } from '../process/run-node.js';

const SCRIPT = fileURLToPath(new URL('./fixtures/incident-replay.ts', import.meta.url));
const TOTAL = 100_000;
const CONCURRENCY = 200;
const MAX_HEAP_GROWTH_MB = 20;

interface Figures {
  node: string;
  breaker: boolean;
  calls: number;
  succeeded: number;
  codes: Record<string, number>;
  untyped: number;
  unhandled: number;
  late: number;
  maxMs: number;
  durationMs: number;
  warmUpCalls: number;
  heapBeforeMb: number;
  heapAfterMb: number;
  heapGrowthMb: number;
  heapAfterCloseMb: number;
  rssBeforeMb: number;
  rssAfterMb: number;
  channels: number;
  channelsCreated: number;
  grpcChannels: number;
  inFlight: number;
  started: number;
  failed: number;
  retries: number;
  throttledRetries: number;
}

async function replay(breaker: 'on' | 'off'): Promise<Figures> {
  const port = await closedPort();
  const child = await runNode(
    process.execPath,
    ['--expose-gc', '--import', 'tsx', SCRIPT, String(port), String(TOTAL), String(CONCURRENCY), breaker],
    90_000,
  );
  // It ends by itself once the pool is closed: no timer, socket or listener left behind.
  expect(child, child.stderr).toMatchObject({ code: 0, signal: null });
  const line = child.stdout.trim().split('\n').at(-1)!;
  return JSON.parse(line) as Figures;
}

function report(label: string, f: Figures): void {
  console.info(
    `[chaos incident-replay] ${label} (node ${f.node}): ${f.calls} failed calls, ${CONCURRENCY} at a time, in ${(f.durationMs / 1000).toFixed(1)} s: ` +
      `${JSON.stringify(f.codes)}; heap after full GC ${f.heapBeforeMb.toFixed(1)} → ${f.heapAfterMb.toFixed(1)} MB ` +
      `(growth ${f.heapGrowthMb.toFixed(2)} MB over ${f.calls - f.warmUpCalls} calls after a ${f.warmUpCalls}-call warm-up), ` +
      `RSS ${f.rssBeforeMb.toFixed(0)} → ${f.rssAfterMb.toFixed(0)} MB; channels ${f.channels}, channelsCreated ${f.channelsCreated}, ` +
      `grpc-js channels ${f.grpcChannels}; retries ${f.retries}, throttled ${f.throttledRetries}; slowest call ${f.maxMs} ms`,
  );
}

function expectTheIncidentContained(f: Figures): void {
  expect(f.calls).toBe(TOTAL);
  expect(f.started).toBe(TOTAL);
  expect(f.failed).toBe(TOTAL);
  expect(f.succeeded).toBe(0);
  expect(f.inFlight).toBe(0);
  // Every call failed with a typed error carrying UNAVAILABLE, nothing unhandled, nothing late.
  expect(f.untyped).toBe(0);
  expect(f.unhandled).toBe(0);
  expect(f.late).toBe(0);
  for (const key of Object.keys(f.codes)) expect(key).toMatch(new RegExp(` ${grpc.status.UNAVAILABLE}$`));
  // One channel, never re-created, and grpc-js agrees.
  expect(f.channels).toBe(1);
  expect(f.channelsCreated).toBe(1);
  expect(f.grpcChannels).toBe(1);
  // A flat heap.
  expect(f.heapGrowthMb).toBeLessThan(MAX_HEAP_GROWTH_MB);
}

describe('chaos: incident replay, 100,000 calls against a dead backend', () => {
  it('breaker off (every call goes to grpc-js): one channel and a flat heap', { timeout: 100_000 }, async () => {
    const figures = await replay('off');
    report('breaker off', figures);
    expectTheIncidentContained(figures);
    expect(figures.codes).toEqual({ [`StatusError ${grpc.status.UNAVAILABLE}`]: TOTAL });
    // Retry throttling keeps the outage from multiplying the load: a handful of retries only.
    expect(figures.retries).toBeLessThanOrEqual(10);
  });

  it('default policies (the breaker opens): one channel and a flat heap', { timeout: 100_000 }, async () => {
    const figures = await replay('on');
    report('default policies', figures);
    expectTheIncidentContained(figures);
    // After the first failures the circuit is open: nearly every call is refused off the network.
    expect(figures.codes[`CircuitOpenError ${grpc.status.UNAVAILABLE}`]).toBeGreaterThan(TOTAL * 0.9);
  });
});
