// How the pool's LB policy picks endpoints and takes them out and back (issue 19), against real
// grpc-js servers on 127.0.0.1 (test/helpers/endpoint-fleet.ts). Only what holds whatever the
// machine's speed: sequential calls, counts of arrivals, events. The rates and onset timings
// (1,000 calls/s with 8 callers, a process that is SIGSTOPped) are in
// test/chaos/endpoint-picking.test.ts.
import * as grpc from '@grpc/grpc-js';
import { AggregationTemporality, MeterProvider, MetricReader } from '@opentelemetry/sdk-metrics';
import { Registry } from 'prom-client';
import { afterEach, describe, expect, it } from 'vitest';
import { openTelemetry } from '../../src/adapters/opentelemetry.js';
import { prometheusMetrics } from '../../src/adapters/prometheus.js';
import { ChannelPool, type EndpointEjection } from '../../src/index.js';
import { closeScenariosAfterEach, RECOVERY_LIMIT_MS, setUp, type Test } from '../helpers/fleet-scenario.js';
import { TestServiceClient } from '../helpers/protos.js';

closeScenariosAfterEach();

/** Waits (bounded) until `done()`; fails with `what` if it never is. */
async function until(done: () => boolean, what: string, limitMs = RECOVERY_LIMIT_MS): Promise<void> {
  const stopAt = Date.now() + limitMs;
  while (!done()) {
    if (Date.now() > stopAt) throw new Error(`never: ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

describe('least-request picking', () => {
  it('spreads calls over every endpoint; outstanding counts go back to 0 and each endpoint was heard from', async () => {
    const { fleet, pool } = await setUp(['healthy', 'healthy', 'healthy']);
    const test = pool.client(TestServiceClient, fleet.target) as unknown as Test;
    for (let i = 0; i < 90; i++) await test.Echo({ message: 'x' });
    const before = Date.now();
    for (const endpoint of fleet.endpoints) expect(endpoint.arrived).toBeGreaterThan(0);
    const endpoints = pool.stats().perChannel[0]!.endpoints;
    expect(endpoints).toHaveLength(3);
    for (const e of endpoints) {
      expect(e).toMatchObject({ outstanding: 0, ejected: false, ejectionReason: undefined, probe: 'none', serving: true });
      expect(e.lastHeardAt).toBeLessThanOrEqual(before);
      expect(e.lastHeardAt).toBeGreaterThan(before - 60_000);
    }
  });

  it('a hung endpoint keeps its one attempt outstanding and gets no other of 40 sequential calls', async () => {
    const { fleet, pool } = await setUp(['hang', 'healthy', 'healthy'], { deadlineMs: 60_000, retry: false });
    const test = pool.client(TestServiceClient, fleet.target) as unknown as Test;
    const hung = fleet.endpoints[0]!;
    const pending: Promise<unknown>[] = [];
    for (let i = 0; i < 40; i++) {
      const arrivedBefore = hung.arrived;
      const call = test.Echo({ message: 'x' });
      pending.push(call.catch(() => undefined));
      // Each call ends before the next starts, unless it went to the hung endpoint.
      let settled = false;
      void call.then(
        () => (settled = true),
        () => (settled = true),
      );
      await until(() => settled || hung.arrived > arrivedBefore, 'the call settled or reached the hung endpoint');
    }
    expect(hung.arrived).toBe(1);
    const stats = pool.stats().perChannel[0]!.endpoints.find((e) => e.address === hung.address)!;
    expect(stats).toMatchObject({ outstanding: 1, lastHeardAt: undefined });
    expect(fleet.endpoints[1]!.arrived + fleet.endpoints[2]!.arrived).toBe(39);
    await pool.close({ graceMs: 0 });
    await Promise.all(pending);
  });
});

describe('consecutive failures and the probe back', () => {
  it('5 failures in a row eject at once; after the ejection time exactly one probe goes; a failed probe ejects it for twice as long, a good one returns it', async () => {
    // A failure-percentage interval longer than the test, so that only the consecutive rule acts.
    const { fleet, pool } = await setUp([grpc.status.UNAVAILABLE, 'healthy'], {
      retry: false,
      breaker: false,
      endpointEjection: { intervalMs: 3_600_000, baseEjectionTimeMs: 300 },
    });
    const sick = fleet.endpoints[0]!;
    const events: Array<EndpointEjection & { arrived: number }> = [];
    pool.onEndpointEjection((event) => events.push({ ...event, arrived: sick.arrived }));
    const test = pool.client(TestServiceClient, fleet.target) as unknown as Test;
    const call = (): Promise<unknown> => test.Echo({ message: 'x' }).catch(() => undefined);
    while (events.length === 0 && sick.arrived < 100) await call();
    expect(events[0]).toMatchObject({
      address: sick.address,
      ejected: true,
      reason: 'consecutive-failures',
      ejectedForMs: 300,
      arrived: 5,
    });
    expect(pool.stats().perChannel[0]!.endpoints.find((e) => e.address === sick.address)).toMatchObject({
      ejected: true,
      ejectionReason: 'consecutive-failures',
      ejections: 1,
    });
    // Still sick: its probe fails and it is out again, for 600 ms. One attempt reached it meanwhile.
    const stopAt = Date.now() + RECOVERY_LIMIT_MS;
    while (events.length < 2 && Date.now() < stopAt) await call();
    expect(events[1]).toMatchObject({ ejected: true, reason: 'consecutive-failures', ejectedForMs: 600, arrived: 6 });
    // Recovered: the next probe returns it.
    sick.setMode('healthy');
    while (events.length < 3 && Date.now() < stopAt) await call();
    expect(events[2]).toMatchObject({ ejected: false, reason: 'consecutive-failures', ejectedForMs: 0, arrived: 7 });
    const before = sick.arrived;
    for (let i = 0; i < 40; i++) await call();
    expect(sick.arrived).toBeGreaterThan(before);
  });

  it('consecutiveFailures 0 turns the rule off; a bad value is refused naming the option and the value', async () => {
    expect(() => new ChannelPool({ endpointEjection: { consecutiveFailures: -1 } })).toThrow(/endpointEjection\.consecutiveFailures.*-1/);
    expect(() => new ChannelPool({ endpointEjection: { consecutiveFailures: 2.5 } })).toThrow(
      /endpointEjection\.consecutiveFailures.*2\.5/,
    );
    expect(() => new ChannelPool({ endpointEjection: { consecutiveFailures: '5' as unknown as number } })).toThrow(
      /endpointEjection\.consecutiveFailures/,
    );
    const { fleet, pool } = await setUp([grpc.status.UNAVAILABLE, 'healthy'], {
      retry: false,
      breaker: false,
      endpointEjection: { intervalMs: 3_600_000, consecutiveFailures: 0 },
    });
    const test = pool.client(TestServiceClient, fleet.target) as unknown as Test;
    while (fleet.endpoints[0]!.arrived < 20) await test.Echo({ message: 'x' }).catch(() => undefined);
    expect(pool.stats().perChannel[0]!.endpoints.every((e) => !e.ejected)).toBe(true);
  });

  it('Prometheus and OpenTelemetry count ejections by reason', async () => {
    const { fleet, pool } = await setUp([grpc.status.UNAVAILABLE, 'healthy'], { retry: false, breaker: false });
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
    try {
      using _otel = openTelemetry(pool, { meterProvider, traces: false });
      const test = pool.client(TestServiceClient, fleet.target) as unknown as Test;
      while (!pool.stats().perChannel[0]?.endpoints.some((e) => e.ejected) && fleet.endpoints[0]!.arrived < 100)
        await test.Echo({ message: 'x' }).catch(() => undefined);
      expect(await registry.metrics()).toContain(
        `grpc_client_endpoint_ejections_total{grpc_target="${fleet.target}",reason="consecutive-failures"} 1`,
      );
      const { resourceMetrics } = await reader.collect();
      const metric = resourceMetrics.scopeMetrics
        .flatMap((s) => s.metrics)
        .find((m) => m.descriptor.name === 'resilient_grpc.client.endpoint.ejections');
      expect(metric?.dataPoints.map((p) => ({ attributes: p.attributes, value: p.value }))).toEqual([
        { attributes: { 'grpc.target': fleet.target, 'resilient_grpc.ejection.reason': 'consecutive-failures' }, value: 1 },
      ]);
    } finally {
      await meterProvider.shutdown();
    }
  });
});

describe("the user's own pick_first", () => {
  const warnings: Error[] = [];
  const onWarning = (warning: Error): void => {
    warnings.push(warning);
  };
  afterEach(() => {
    process.off('warning', onWarning);
    warnings.length = 0;
  });

  it('warns when the channel is built that ejection cannot act; round_robin and the default do not warn', async () => {
    process.on('warning', onWarning);
    const { fleet, pool } = await setUp(['healthy', 'healthy']);
    const serviceConfig = (lb: object[]): string => JSON.stringify({ loadBalancingConfig: lb });
    const picked = (channelOptions?: grpc.ChannelOptions): Test =>
      pool.client(TestServiceClient, fleet.target, channelOptions === undefined ? {} : { channelOptions }) as unknown as Test;
    await picked().Echo({ message: 'default' });
    await picked({ 'grpc.service_config': serviceConfig([{ round_robin: {} }]) }).Echo({ message: 'rr' });
    await picked({ 'grpc.service_config': serviceConfig([{ pick_first: {} }]) }).Echo({ message: 'pf' });
    // process.emitWarning is delivered on a later tick.
    await new Promise((resolve) => setImmediate(resolve));
    const ours = warnings.filter((w) => (w as { code?: string }).code === 'RESILIENT_GRPC_PICK_FIRST');
    expect(ours).toHaveLength(1);
    expect(ours[0]!.message).toContain(fleet.target);
    expect(ours[0]!.message).toMatch(/pick_first.*endpoint ejection cannot/);
  });
});
