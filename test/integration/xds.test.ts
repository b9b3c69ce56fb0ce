// xDS as a target: @grpc/grpc-js-xds with an in-process ADS control plane on loopback
// (test/helpers/xds-control-plane.ts) publishing real test servers over EDS. What the pool does
// on an xds: channel (deadlines, breakers, events, stats, close) and what it leaves to the mesh
// (endpoints, load balancing, retries), with attempts counted on the wire at the backends.
import * as grpc from '@grpc/grpc-js';
import { AggregationTemporality, MeterProvider, MetricReader } from '@opentelemetry/sdk-metrics';
import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { openTelemetry } from '../../src/adapters/opentelemetry.js';
import { prometheusMetrics } from '../../src/adapters/prometheus.js';
import { type CallEndEvent, StatusError, type UnaryMethod } from '../../src/index.js';
import { startFleet } from '../helpers/endpoint-fleet.js';
import { drive } from '../helpers/load.js';
import { TestServiceClient, type EchoRequest, type EchoResponse } from '../helpers/protos.js';
import { eventually, portOf, startMesh } from '../helpers/xds-mesh.js';

interface Echo {
  Echo: UnaryMethod<Partial<EchoRequest>, EchoResponse>;
}

describe('calls on an xds: channel', () => {
  // Found by this test (fixed): `xds:listener1` (scheme:path, as grpc-js reads it) threw a
  // RangeError about port "listener1" at pool.client().
  it.each(['xds:///listener1', 'xds:listener1'])('%s: 100 calls succeed, spread over both EDS endpoints', async (target) => {
    const mesh = await startMesh(['healthy', 'healthy']);
    const pool = mesh.newPool();
    const echo = pool.client(TestServiceClient, target, mesh.clientOptions()) as unknown as Echo;
    const result = await drive(() => echo.Echo({ message: 'x' }), { durationMs: 60_000, maxCalls: 100, concurrency: 5 });
    expect(result.codes).toEqual({ 0: 100 });
    const [a, b] = mesh.fleet.endpoints.map((e) => e.arrived);
    expect(a! + b!).toBe(100);
    // round_robin over two READY endpoints: about half each; any spread at all proves the mesh balances.
    expect(a).toBeGreaterThanOrEqual(10);
    expect(b).toBeGreaterThanOrEqual(10);
    expect(mesh.plane.nacks).toEqual([]);
  });

  it('follows an EDS update: a removed endpoint gets no more calls, an added one gets them', async () => {
    const mesh = await startMesh(['healthy', 'healthy']);
    const added = await startFleet(['healthy']);
    try {
      const pool = mesh.newPool();
      const echo = pool.client(TestServiceClient, mesh.target, mesh.clientOptions()) as unknown as Echo;
      for (let i = 0; i < 10; i++) await echo.Echo({ message: 'before' });
      const [gone, kept] = mesh.fleet.endpoints as [(typeof mesh.fleet.endpoints)[0], (typeof mesh.fleet.endpoints)[0]];
      mesh.plane.setBackends([portOf(kept), portOf(added.endpoints[0]!)]);
      // Calls until the first reaches the added endpoint: from then on the new picker is in place.
      for (let i = 0; added.endpoints[0]!.arrived === 0; i++) {
        if (i === 2_000) throw new Error('the EDS update was never followed');
        await echo.Echo({ message: 'during' });
      }
      const goneBefore = gone.arrived;
      for (let i = 0; i < 40; i++) await echo.Echo({ message: 'after' });
      expect(gone.arrived).toBe(goneBefore);
      expect(added.endpoints[0]!.arrived).toBeGreaterThanOrEqual(10);
      expect(mesh.plane.nacks).toEqual([]);
    } finally {
      await added.close();
    }
  });

  // The issue saw 300/300 with a backend killed, under both retry layers. With one owner the
  // truth is A6's: a call whose response headers had arrived when its connection was reset is
  // committed and retried by nobody; every other call is retried by the route's policy or never
  // touches the failed backend.
  it('a backend failing under load (connections reset, then refused): only calls committed on it fail, UNAVAILABLE; every call started after succeeds', async () => {
    const mesh = await startMesh(['healthy', 'healthy'], { retryPolicy: { numRetries: 2 }, proxied: true });
    const pool = mesh.newPool();
    const echo = pool.client(TestServiceClient, mesh.target, mesh.clientOptions()) as unknown as Echo;
    const victim = mesh.proxies[0]!;
    const CONCURRENCY = 10;
    let failing: Promise<void> | undefined;
    let failed = false;
    const failures: Array<{ code: unknown; startedAfter: boolean }> = [];
    const result = await drive(
      async (index) => {
        // A crashed backend: its open connections are reset, new connections refused.
        if (index === 100) {
          failing = victim.setMode('refuse').then(() => {
            victim.cutAll();
            failed = true;
          });
        }
        const startedAfter = failed;
        try {
          await echo.Echo({ message: 'load', delayMs: 2 });
        } catch (error) {
          failures.push({ code: (error as StatusError).code, startedAfter });
          throw error;
        }
      },
      { durationMs: 120_000, maxCalls: 300, concurrency: CONCURRENCY },
    );
    await failing;
    expect(failed).toBe(true);
    expect(mesh.fleet.endpoints[0]!.arrived).toBeGreaterThan(0);
    expect(failures.filter((f) => f.startedAfter)).toEqual([]);
    expect(failures.length).toBeLessThanOrEqual(CONCURRENCY);
    for (const f of failures) expect(f.code).toBe(grpc.status.UNAVAILABLE);
    expect(result.ok).toBe(300 - failures.length);
    expect(pool.stats().perChannel[0]).toMatchObject({ succeeded: result.ok, retries: 0, grpcOwnsRetries: true });
  });
});

describe('one retry owner under xDS: attempts counted on the wire', () => {
  const CALLS = 4;

  /** Attempts that reached the backends for each of CALLS calls, every backend answering UNAVAILABLE. */
  async function attemptsPerCall(
    routeRetries: number | undefined,
    channelOptions: grpc.ChannelOptions = {},
  ): Promise<{ attempts: number[]; grpcOwnsRetries: boolean }> {
    const mesh = await startMesh([grpc.status.UNAVAILABLE, grpc.status.UNAVAILABLE], {
      ...(routeRetries === undefined ? {} : { retryPolicy: { numRetries: routeRetries } }),
    });
    // The pool's defaults: retry { maxAttempts: 3 }, throttling and breaker on. Throttling is off
    // here only so that each call can show its full count (4 failing calls would otherwise
    // drain the bucket and hide our retries, as 9, 6, 3 did before).
    const pool = mesh.newPool({ retryThrottling: false });
    const echo = pool.client(TestServiceClient, mesh.target, mesh.clientOptions({ channelOptions })) as unknown as Echo;
    const counts: number[] = [];
    for (let i = 0; i < CALLS; i++) {
      const before = mesh.fleet.arrived();
      const error = await echo.Echo({ message: 'x' }).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(StatusError);
      expect((error as StatusError).code).toBe(grpc.status.UNAVAILABLE);
      counts.push(mesh.fleet.arrived() - before);
    }
    return { attempts: counts, grpcOwnsRetries: pool.stats().perChannel[0]!.grpcOwnsRetries };
  }

  // Found by this test (fixed): with a route retry policy of 2 retries, each call made 9
  // attempts (our 3 times the mesh's 3) where 3 were intended.
  it('a route retry policy of 2 retries: 3 attempts per call (the mesh retries, the pool does not)', async () => {
    expect(await attemptsPerCall(2)).toEqual({ attempts: Array(CALLS).fill(3), grpcOwnsRetries: true });
  });

  it('no route retry policy: 1 attempt per call (the mesh says no retries, the pool adds none)', async () => {
    expect(await attemptsPerCall(undefined)).toEqual({ attempts: Array(CALLS).fill(1), grpcOwnsRetries: true });
  });

  it("grpc.enable_retries 0 opts in to the pool's retries: 3 attempts per call, with or without a route policy", async () => {
    const optedIn = { attempts: Array(CALLS).fill(3), grpcOwnsRetries: false };
    expect(await attemptsPerCall(2, { 'grpc.enable_retries': 0 })).toEqual(optedIn);
    expect(await attemptsPerCall(undefined, { 'grpc.enable_retries': 0 })).toEqual(optedIn);
  });
});

describe('what the pool reports about an xds: channel', () => {
  it('stats(), call events, Prometheus and OpenTelemetry name the xds: target; the endpoints are the mesh’s', async () => {
    const mesh = await startMesh([grpc.status.UNAVAILABLE, grpc.status.UNAVAILABLE]);
    const pool = mesh.newPool();
    const registry = new Registry();
    using _prometheus = prometheusMetrics(pool, { registry });
    const reader = new (class extends MetricReader {
      constructor() {
        super({ aggregationTemporalitySelector: () => AggregationTemporality.CUMULATIVE });
      }
      protected async onForceFlush(): Promise<void> {}
      protected async onShutdown(): Promise<void> {}
    })();
    const meterProvider = new MeterProvider({ readers: [reader] });
    using _otel = openTelemetry(pool, { meterProvider, traces: false });
    const ends: CallEndEvent[] = [];
    using _events = pool.onCallEnd((event) => ends.push(event));

    // A breaker that opens after 2 failed calls, so the circuit metric (labelled by target) moves.
    const echo = pool.client(
      TestServiceClient,
      mesh.target,
      mesh.clientOptions({ breaker: { volumeThreshold: 2, errorThresholdPercentage: 50 } }),
    ) as unknown as Echo;
    for (let i = 0; i < 3; i++) await echo.Echo({ message: 'x' }).catch(() => undefined);

    const stats = pool.stats();
    expect(stats.channels).toBe(1);
    expect(stats.perChannel[0]).toMatchObject({
      target: 'xds:///listener1',
      grpcOwnsRetries: true,
      // The mesh balances and ejects: the pool does not wrap xDS's load balancing.
      endpoints: [],
      failed: 3,
    });
    expect(ends.map((e) => e.target)).toEqual(['xds:///listener1', 'xds:///listener1', 'xds:///listener1']);
    const text = await registry.metrics();
    expect(text).toMatch(/grpc_client_circuit_opened_total\{grpc_target="xds:\/\/\/listener1",[^}]*\} 1/);
    const { resourceMetrics } = await reader.collect();
    const attempts = resourceMetrics.scopeMetrics
      .flatMap((s) => s.metrics)
      .find((m) => m.descriptor.name === 'grpc.client.attempt.started');
    expect(attempts?.dataPoints.map((p) => p.attributes['grpc.target'])).toEqual(['xds:///listener1']);
    await meterProvider.shutdown();
  });

  it('close() releases the ADS stream', async () => {
    const mesh = await startMesh(['healthy']);
    const pool = mesh.newPool();
    const echo = pool.client(TestServiceClient, mesh.target, mesh.clientOptions()) as unknown as Echo;
    await echo.Echo({ message: 'x' });
    expect(mesh.plane.openStreams).toBe(1);
    await pool.close();
    await eventually(() => mesh.plane.openStreams === 0, 'released');
    expect(mesh.plane.streamsOpened).toBe(1);
  });
});
