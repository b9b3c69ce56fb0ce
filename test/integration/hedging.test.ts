// Adaptive hedging on a real 3-endpoint fleet (loopback): a slow endpoint's calls are hedged to
// another endpoint and the loser is cancelled on the wire; a method that is not idempotent is
// never hedged; options that cannot hedge are refused before any call.
import * as grpc from '@grpc/grpc-js';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { TestServiceClient } from '../helpers/protos.js';
import { closeScenariosAfterEach, setUp, streamToEnd, type Test } from '../helpers/fleet-scenario.js';
import type { AttemptEndEvent, CallEndEvent } from '../../src/index.js';
import { Registry } from 'prom-client';
import { AggregationTemporality, MeterProvider, MetricReader, type HistogramMetricData } from '@opentelemetry/sdk-metrics';
import { prometheusMetrics } from '../../src/adapters/prometheus.js';
import { openTelemetry } from '../../src/adapters/opentelemetry.js';

class TestReader extends MetricReader {
  constructor() {
    super({ aggregationTemporalitySelector: () => AggregationTemporality.CUMULATIVE });
  }
  protected override onShutdown(): Promise<void> {
    return Promise.resolve();
  }
  protected override onForceFlush(): Promise<void> {
    return Promise.resolve();
  }
}

closeScenariosAfterEach();

/** Short window and refresh, so that the hedge delay is known after the warm-up. */
const HEDGING = { maxExtraLoad: 0.05, windowMs: 5_000, refreshMs: 1_000, minHedgesPerSec: 10 } as const;

/** Calls one after another until `n` attempts reached `endpoint` (the picker chooses at random), at most 60; returns how many. */
async function untilArrived(endpoint: { readonly arrived: number }, n: number, call: (i: number) => Promise<unknown>): Promise<number> {
  let i = 0;
  while (endpoint.arrived < n && i < 60) await call(i++);
  return i;
}

/** Enough fast calls for the window to trust its percentile (2 / maxExtraLoad = 40), then one refresh. */
async function warmUp(call: () => Promise<unknown>): Promise<void> {
  for (let i = 0; i < 60; i++) await call();
  await sleep(HEDGING.refreshMs + 50);
}

describe('adaptive hedging on a 3-endpoint fleet', () => {
  it('a slow endpoint: its calls are hedged to another endpoint, the hedge wins, and the slow attempt is cancelled at the server', async () => {
    const { fleet, pool } = await setUp(['healthy', 'healthy', 'healthy']);
    const test = pool.client(TestServiceClient, fleet.target, {
      hedging: HEDGING,
      methods: { Echo: { idempotent: true } },
    }) as unknown as Test;
    await warmUp(() => test.Echo({ message: 'warm' }));
    const slow = fleet.endpoints[0]!;
    slow.setSlow(5_000);
    fleet.resetCounts();
    const ends: AttemptEndEvent[] = [];
    const calls: CallEndEvent[] = [];
    pool.onAttemptEnd((event) => ends.push(event));
    pool.onCallEnd((event) => calls.push(event));
    // One after another: only the calls that land on the slow endpoint are slower than the
    // window's p95 (concurrent calls would all be, and spend the hedge budget).
    const made = await untilArrived(slow, 3, (i) =>
      expect(test.Echo({ message: `m${i}` }, { deadlineMs: 8_000 })).resolves.toMatchObject({ message: `m${i}` }),
    );
    // The picker sent some first attempts to the slow endpoint: each of those calls was hedged.
    // (On a busy machine a fast call may run past the p95 and be hedged too, and its hedge may
    // land on the slow endpoint: it then loses, and is cancelled, like a first attempt there.)
    const onSlow = ends.filter((e) => e.peer === slow.address);
    expect(onSlow.length).toBe(slow.arrived);
    for (const attempt of onSlow) expect([attempt.won, attempt.code]).toEqual([false, grpc.status.CANCELLED]);
    const slowFirsts = onSlow.filter((e) => !e.hedge);
    expect(slowFirsts.length).toBeGreaterThan(0);
    for (const first of slowFirsts) {
      expect(first.won).toBe(false);
      expect(first.code).toBe(grpc.status.CANCELLED);
      const hedge = ends.find((e) => e.callId === first.callId && e.hedge);
      expect(hedge, `call ${first.callId} has a hedge`).toBeDefined();
      expect(hedge!.won).toBe(true);
      expect(hedge!.code).toBe(grpc.status.OK);
      // Never to the endpoint the first attempt is on.
      expect(hedge!.peer).not.toBe(slow.address);
      expect(calls.find((c) => c.callId === first.callId)?.hedges).toBe(1);
    }
    // The server saw each loser cancelled (bounded wait: the RST_STREAM is on its way).
    for (let i = 0; i < 100 && slow.cancelledWhileHeld < slow.arrived; i++) await sleep(20);
    expect(slow.cancelledWhileHeld).toBe(slow.arrived);
    // Every call settled once, with one result.
    expect(calls.filter((c) => c.code === grpc.status.OK)).toHaveLength(made);
  });

  it('a server stream is hedged before its first message; the first message commits it', async () => {
    const { fleet, pool } = await setUp(['healthy', 'healthy', 'healthy']);
    const test = pool.client(TestServiceClient, fleet.target, {
      hedging: HEDGING,
      methods: { ServerStream: { idempotent: true } },
    }) as unknown as Test;
    await warmUp(() => streamToEnd(test.ServerStream({ message: 'w', count: 1 })));
    const slow = fleet.endpoints[1]!;
    slow.setSlow(5_000);
    fleet.resetCounts();
    await untilArrived(slow, 2, async () => {
      const { messages, error } = await streamToEnd(test.ServerStream({ message: 's', count: 3 }, { deadlineMs: 8_000 }));
      expect(error).toBeUndefined();
      expect(messages).toBe(3);
    });
    expect(slow.arrived).toBeGreaterThan(0);
    for (let i = 0; i < 100 && slow.cancelledWhileHeld < slow.arrived; i++) await sleep(20);
    expect(slow.cancelledWhileHeld).toBe(slow.arrived);
  });

  it('a method that is not idempotent is never hedged: each call runs once at the server', async () => {
    const { fleet, pool } = await setUp(['healthy', 'healthy', 'healthy'], { hedging: HEDGING });
    // Pool-wide hedging: the client's Echo is not idempotent, ServerStream is (so hedging is in force on the client).
    const test = pool.client(TestServiceClient, fleet.target, { methods: { ServerStream: { idempotent: true } } }) as unknown as Test;
    await warmUp(() => test.Echo({ message: 'warm' }));
    fleet.endpoints[0]!.setSlow(300);
    fleet.resetCounts();
    const attempts: AttemptEndEvent[] = [];
    pool.onAttemptEnd((event) => attempts.push(event));
    await Promise.all(Array.from({ length: 12 }, (_, i) => test.Echo({ message: `n${i}` })));
    expect(fleet.arrived()).toBe(12);
    expect(attempts.filter((e) => e.hedge)).toHaveLength(0);
  });

  it('refuses hedging on a method that cannot be hedged, naming the option and the method, before any call', async () => {
    const { fleet, pool } = await setUp(['healthy']);
    expect(() => pool.client(TestServiceClient, fleet.target, { methods: { Echo: { hedging: {} } } })).toThrow(
      /methods\.Echo\.hedging must be set only on an idempotent unary or server-stream method.*TestService\/Echo, a method not marked idempotent/,
    );
    expect(() => pool.client(TestServiceClient, fleet.target, { methods: { ClientStream: { idempotent: true, hedging: {} } } })).toThrow(
      /methods\.ClientStream\.hedging .*client-stream method/,
    );
    expect(() => pool.client(TestServiceClient, fleet.target, { hedging: {} })).toThrow(
      /hedging must be set on a client with an idempotent/,
    );
    const serviceConfig = JSON.stringify({
      methodConfig: [
        {
          name: [{ service: 'resilient.test.v1.TestService' }],
          hedgingPolicy: { maxAttempts: 2, hedgingDelay: '0.01s', nonFatalStatusCodes: [] },
        },
      ],
    });
    expect(() =>
      pool.client(TestServiceClient, fleet.target, {
        channelOptions: { 'grpc.service_config': serviceConfig },
        methods: { Echo: { idempotent: true, hedging: {} } },
      }),
    ).toThrow(/methods\.Echo\.hedging must be left out where grpc-js owns retries and hedging/);
    expect(() => pool.client(TestServiceClient, fleet.target, { hedging: { maxExtraLoad: 0.9 } })).toThrow(/hedging\.maxExtraLoad/);
    expect(pool.stats().channels).toBe(0);
    // The pool stays usable.
    const test = pool.client(TestServiceClient, fleet.target) as unknown as Test;
    await expect(test.Echo({ message: 'ok' })).resolves.toMatchObject({ message: 'ok' });
  });

  it("the adapters: A96's grpc.client.call.hedges and grpc_client_hedges_total count the hedges, and retries leave them out", async () => {
    const { fleet, pool } = await setUp(['healthy', 'healthy', 'healthy']);
    const registry = new Registry();
    const prometheus = prometheusMetrics(pool, { registry });
    const reader = new TestReader();
    const meterProvider = new MeterProvider({ readers: [reader] });
    const otel = openTelemetry(pool, { meterProvider, traces: false });
    try {
      const test = pool.client(TestServiceClient, fleet.target, {
        hedging: HEDGING,
        methods: { Echo: { idempotent: true } },
      }) as unknown as Test;
      // Listening from the start: the adapters count the warm-up's hedges too (on a busy machine
      // a warm-up call may run past the p95).
      const calls: CallEndEvent[] = [];
      const ends: AttemptEndEvent[] = [];
      pool.onCallEnd((event) => calls.push(event));
      pool.onAttemptEnd((event) => ends.push(event));
      await warmUp(() => test.Echo({ message: 'warm' }));
      const slow = fleet.endpoints[2]!;
      slow.setSlow(5_000);
      fleet.resetCounts();
      const measuredFrom = ends.length;
      await untilArrived(slow, 2, (i) => test.Echo({ message: `a${i}` }, { deadlineMs: 8_000 }));
      const hedged = calls.reduce((n, c) => n + c.hedges, 0);
      // Each call whose first attempt went to the slow endpoint was hedged, and its hedge won.
      const slowFirsts = ends.slice(measuredFrom).filter((e) => e.peer === slow.address && !e.hedge).length;
      expect(slowFirsts).toBeGreaterThan(0);
      expect(hedged).toBeGreaterThanOrEqual(slowFirsts);
      const text = await registry.metrics();
      const won = Number(/grpc_client_hedges_total\{[^}]*grpc_method="Echo",won="true"\} (\d+)/.exec(text)?.[1] ?? 0);
      const lost = Number(/grpc_client_hedges_total\{[^}]*grpc_method="Echo",won="false"\} (\d+)/.exec(text)?.[1] ?? 0);
      expect(won + lost).toBe(hedged);
      expect(won).toBe(ends.filter((e) => e.hedge && e.won === true).length);
      expect(won).toBeGreaterThanOrEqual(slowFirsts);
      const { resourceMetrics } = await reader.collect();
      const metrics = new Map(resourceMetrics.scopeMetrics.flatMap((s) => s.metrics).map((m) => [m.descriptor.name, m]));
      const hedges = metrics.get('grpc.client.call.hedges') as HistogramMetricData;
      expect(hedges.descriptor.unit).toBe('{hedge}');
      expect(hedges.dataPoints.reduce((n, p) => n + p.value.count, 0)).toBe(hedged);
      // A hedge is not a retry: no call retried here.
      const retries = metrics.get('grpc.client.call.retries') as HistogramMetricData | undefined;
      expect(retries?.dataPoints.reduce((n, p) => n + p.value.count, 0) ?? 0).toBe(0);
    } finally {
      prometheus.dispose();
      otel.dispose();
      await meterProvider.shutdown();
    }
  });
});
