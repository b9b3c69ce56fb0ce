// No password from a target ever leaves the pool. Targets copied from configuration may carry
// userinfo (`http://admin:S3CRET@host:port`); they are refused at pool.client() with the password
// replaced, so no channel, call, event, stats entry, Prometheus label or OpenTelemetry attribute
// can carry it. Each surface is collected while a pool with every observer attached is handed
// such targets (and, were one accepted, calls on it), and while calls run on a clean target:
// each surface must name the clean target (it was populated and read) and never the password.
import * as grpc from '@grpc/grpc-js';
import { AggregationTemporality, MeterProvider, MetricReader } from '@opentelemetry/sdk-metrics';
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openTelemetry } from '../../src/adapters/opentelemetry.js';
import { prometheusMetrics } from '../../src/adapters/prometheus.js';
import { ChannelPool, type UnaryMethod } from '../../src/index.js';
import { startFleet, type Fleet } from '../helpers/endpoint-fleet.js';
import { TestServiceClient, type EchoRequest, type EchoResponse } from '../helpers/protos.js';

const SECRET = 'S3CRET';

interface Echo {
  Echo: UnaryMethod<Partial<EchoRequest>, EchoResponse>;
}

class TestReader extends MetricReader {
  constructor() {
    super({ aggregationTemporalitySelector: () => AggregationTemporality.CUMULATIVE });
  }
  protected async onForceFlush(): Promise<void> {}
  protected async onShutdown(): Promise<void> {}
}

let fleet: Fleet;
let pool: ChannelPool;
let meterProvider: MeterProvider;
let tracerProvider: BasicTracerProvider;
const surfaces: Record<string, string> = {};
let cleanTarget: string;
let refused: Array<{ target: string; error: unknown }>;

/** Every form a password can take in a target, as users copy them from configuration. */
function secretTargets(address: string): string[] {
  const port = address.slice(address.lastIndexOf(':') + 1);
  return [
    `http://admin:${SECRET}@${address}`,
    `https://admin:${SECRET}@${address}`,
    `https://${SECRET}@${address}`,
    `admin:${SECRET}@${address}`,
    `dns://user:${SECRET}@127.0.0.1/localhost:${port}`,
    `dns:///user:${SECRET}@localhost:${port}`,
    `dns:user:${SECRET}@localhost:${port}`,
    `ipv4:user:${SECRET}@${address}`,
    `ipv4:${address},user:${SECRET}@${address}`,
    `xds://user:${SECRET}@127.0.0.1/listener1`,
    `consul://user:${SECRET}@agent/users`,
  ];
}

beforeAll(async () => {
  // One healthy endpoint and one that answers UNAVAILABLE: retries, failures and an open circuit
  // all get reported, on the clean target and on any secret one that were accepted.
  fleet = await startFleet(['healthy', grpc.status.UNAVAILABLE]);
  const [healthy, sick] = fleet.endpoints as [Fleet['endpoints'][0], Fleet['endpoints'][0]];
  pool = new ChannelPool({ deadlineMs: 5_000, retry: { initialDelayMs: 1, maxDelayMs: 1 }, breaker: { volumeThreshold: 2 } });
  const registry = new Registry();
  prometheusMetrics(pool, { registry });
  const reader = new TestReader();
  const exporter = new InMemorySpanExporter();
  meterProvider = new MeterProvider({ readers: [reader] });
  tracerProvider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
  openTelemetry(pool, { meterProvider, tracerProvider });
  const events: unknown[] = [];
  for (const source of [
    pool.onCallStart,
    pool.onCallEnd,
    pool.onAttemptStart,
    pool.onAttemptEnd,
    pool.onBreakerStateChange,
    pool.onChannelStateChange,
    pool.onChannelReplaced,
    pool.onEndpointEjection,
    pool.onRetry,
  ] as Array<(listener: (event: unknown) => void) => unknown>) {
    source((event) => events.push(event));
  }

  const run = async (echo: Echo) => {
    for (let i = 0; i < 4; i++) await echo.Echo({ message: `${i}` }).catch(() => undefined);
  };
  cleanTarget = sick.address;
  await run(pool.client(TestServiceClient, cleanTarget) as unknown as Echo);
  await run(pool.client(TestServiceClient, healthy.address) as unknown as Echo);
  refused = [];
  const errors: unknown[] = [];
  for (const target of [...secretTargets(sick.address), ...secretTargets(healthy.address)]) {
    try {
      const echo = pool.client(TestServiceClient, target) as unknown as Echo;
      await run(echo); // only if a secret target were accepted: its calls would report it
    } catch (error) {
      refused.push({ target, error });
      errors.push(error);
    }
    errors.push(await (pool.client(TestServiceClient, cleanTarget) as unknown as Echo).Echo({ message: target }).catch((e: unknown) => e));
  }

  surfaces['error messages'] = errors.map((e) => `${String((e as Error).message)}\n${String((e as Error).stack)}`).join('\n');
  surfaces['error objects'] = JSON.stringify(errors.map((e) => ({ ...(e as object), message: (e as Error).message })));
  surfaces.events = JSON.stringify(events);
  surfaces['pool.stats()'] = JSON.stringify(pool.stats());
  surfaces['Prometheus exposition'] = await registry.metrics();
  const { resourceMetrics } = await reader.collect();
  surfaces['OpenTelemetry metric attributes'] = JSON.stringify(
    resourceMetrics.scopeMetrics.flatMap((s) => s.metrics.flatMap((m) => m.dataPoints.map((p) => p.attributes))),
  );
  surfaces['OpenTelemetry spans'] = JSON.stringify(
    exporter.getFinishedSpans().map((span) => ({ name: span.name, attributes: span.attributes, status: span.status, events: span.events })),
  );
});

afterAll(async () => {
  await pool?.close({ graceMs: 0 });
  await meterProvider?.shutdown();
  await tracerProvider?.shutdown();
  await fleet?.close();
});

describe('a password in a target', () => {
  // Found by this test (fixed): `http://admin:S3CRET@127.0.0.1:PORT` was accepted and the
  // password appeared in every error message and in the `grpc_target` Prometheus label.
  it('is refused at pool.client() with a RangeError naming target, the password shown as ***', () => {
    expect(refused.map((r) => r.target)).toEqual([
      ...secretTargets(fleet.endpoints[1]!.address),
      ...secretTargets(fleet.endpoints[0]!.address),
    ]);
    for (const { target, error } of refused) {
      expect(error, target).toBeInstanceOf(RangeError);
      expect(error, target).toMatchObject({ code: grpc.status.INVALID_ARGUMENT, option: 'target' });
      expect((error as Error).message, target).toContain('***@');
    }
    expect(pool.stats().perChannel.map((c) => c.target)).toEqual([cleanTarget, fleet.endpoints[0]!.address]);
  });

  it.each([
    'error messages',
    'error objects',
    'events',
    'pool.stats()',
    'Prometheus exposition',
    'OpenTelemetry metric attributes',
    'OpenTelemetry spans',
  ])('never reaches %s', (surface) => {
    const text = surfaces[surface]!;
    // The surface was populated and read: it names the clean target...
    expect(text).toContain(cleanTarget);
    // ...and never a password.
    expect(text).not.toContain(SECRET);
  });
});
