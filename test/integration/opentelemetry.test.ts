// resilient-grpc/opentelemetry with the real SDK: an in-memory metric reader sees the exact
// instrument names, units, attributes and bucket boundaries; an in-memory span exporter sees a
// call span with one child span per attempt under the caller's span, and the server receives
// each attempt's W3C trace context.
import * as grpc from '@grpc/grpc-js';
import { context, propagation, trace, SpanKind, SpanStatusCode } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import {
  AggregationTemporality,
  DataPointType,
  MeterProvider,
  MetricReader,
  type HistogramMetricData,
  type MetricData,
} from '@opentelemetry/sdk-metrics';
import {
  BasicTracerProvider,
  InMemorySpanExporter,
  ParentBasedSampler,
  SimpleSpanProcessor,
  TraceIdRatioBasedSampler,
  type ReadableSpan,
} from '@opentelemetry/sdk-trace-base';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { type ChannelPool, CircuitOpenError, type ServerStreamMethod, type UnaryMethod } from '../../src/index.js';
import {
  canonicalTarget,
  GRPC_LATENCY_BUCKETS,
  openTelemetry,
  RPC_DURATION_BUCKETS,
  serverAddress,
} from '../../src/adapters/opentelemetry.js';
import { TestServiceClient, type EchoRequest, type EchoResponse, type StreamRequest } from '../helpers/protos.js';
import { startServerAndPools, type ServerAndPools } from '../helpers/server-and-pools.js';
import type { TestServer } from '../helpers/test-server.js';

interface Echo {
  Echo: UnaryMethod<Partial<EchoRequest>, EchoResponse>;
  ServerStream: ServerStreamMethod<Partial<StreamRequest>, EchoResponse>;
}

class TestReader extends MetricReader {
  constructor() {
    super({ aggregationTemporalitySelector: () => AggregationTemporality.CUMULATIVE });
  }
  protected async onForceFlush(): Promise<void> {}
  protected async onShutdown(): Promise<void> {}
}

const METHOD = 'resilient.test.v1.TestService/Echo';

let fixture: ServerAndPools;
let server: TestServer;
let pool: ChannelPool;
let reader: TestReader;
let meterProvider: MeterProvider;
let exporter: InMemorySpanExporter;
let tracerProvider: BasicTracerProvider;
let callIds = 0;

beforeAll(() => {
  context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
  propagation.setGlobalPropagator(new W3CTraceContextPropagator());
});

afterAll(() => {
  context.disable();
  propagation.disable();
});

beforeEach(async () => {
  fixture = await startServerAndPools();
  server = fixture.server;
  pool = fixture.newPool({ deadlineMs: 5_000, retry: { initialDelayMs: 5, maxDelayMs: 5 } });
  reader = new TestReader();
  meterProvider = new MeterProvider({ readers: [reader] });
  exporter = new InMemorySpanExporter();
  tracerProvider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
});

afterEach(async () => {
  // The pools first, while the providers they report to are still up.
  await fixture.cleanup();
  await meterProvider.shutdown();
  await tracerProvider.shutdown();
});

function script(headers: Record<string, string | number>): Record<string, string> {
  const metadata: Record<string, string> = { 'x-call-id': `otel-${++callIds}` };
  for (const [key, value] of Object.entries(headers)) metadata[`x-${key}`] = String(value);
  return metadata;
}

async function collected(): Promise<Map<string, MetricData>> {
  const { resourceMetrics, errors } = await reader.collect();
  expect(errors).toEqual([]);
  const byName = new Map<string, MetricData>();
  for (const scope of resourceMetrics.scopeMetrics) {
    expect(scope.scope.name).toBe('resilient-grpc');
    for (const metric of scope.metrics) byName.set(metric.descriptor.name, metric);
  }
  return byName;
}

function points(metric: MetricData | undefined): Array<{ attributes: Record<string, unknown>; value: unknown }> {
  return (metric?.dataPoints ?? []).map((p) => ({ attributes: p.attributes, value: p.value }));
}

describe('openTelemetry metrics', () => {
  it('grpc.client.attempt.started counts attempts between collections under delta temporality, and per target and method', async () => {
    const deltaReader = new (class extends MetricReader {
      constructor() {
        super({ aggregationTemporalitySelector: () => AggregationTemporality.DELTA });
      }
      protected async onForceFlush(): Promise<void> {}
      protected async onShutdown(): Promise<void> {}
    })();
    const deltaProvider = new MeterProvider({ readers: [deltaReader] });
    try {
      using _ = openTelemetry(pool, { meterProvider: deltaProvider, traces: false });
      const echo = pool.client(TestServiceClient, server.address, { breaker: false }) as unknown as Echo;
      const started = async (): Promise<unknown> => {
        const { resourceMetrics } = await deltaReader.collect();
        const metric = resourceMetrics.scopeMetrics
          .flatMap((s) => s.metrics)
          .find((m) => m.descriptor.name === 'grpc.client.attempt.started');
        return points(metric);
      };
      const grpcBase = { 'grpc.method': METHOD, 'grpc.target': canonicalTarget(server.address) };
      await echo.Echo({ message: 'ok' });
      await echo.Echo({ message: 'retried' }, { metadata: script({ 'fail-times': 1 }) });
      expect(await started()).toEqual([{ attributes: grpcBase, value: 3 }]);
      await echo.Echo({ message: 'ok' });
      expect(await started()).toEqual([{ attributes: grpcBase, value: 1 }]);
      expect(await started()).toEqual([{ attributes: grpcBase, value: 0 }]);
    } finally {
      await deltaProvider.shutdown();
    }
  });

  it('records the semantic-conventions and gRFC A66 / A96 instruments with their units, attributes and buckets', async () => {
    using _ = openTelemetry(pool, { meterProvider, traces: false });
    const echo = pool.client(TestServiceClient, server.address, { breaker: false }) as unknown as Echo;
    await echo.Echo({ message: 'ok' });
    await echo.Echo({ message: 'retried' }, { metadata: script({ 'fail-times': 1 }) });
    await expect(echo.Echo({ message: 'x' }, { metadata: script({ 'fail-code': grpc.status.NOT_FOUND }) })).rejects.toMatchObject({
      code: grpc.status.NOT_FOUND,
    });

    const metrics = await collected();
    const target = `dns:///${server.address}`;
    const rpc = metrics.get('rpc.client.call.duration') as HistogramMetricData;
    expect(rpc.descriptor).toMatchObject({ unit: 's', type: 'HISTOGRAM' });
    expect(rpc.dataPointType).toBe(DataPointType.HISTOGRAM);
    const rpcBase = { 'rpc.system.name': 'grpc', 'rpc.method': METHOD, 'server.address': '127.0.0.1', 'server.port': server.port };
    expect(rpc.dataPoints.map((p) => [p.attributes, p.value.count])).toEqual([
      [{ ...rpcBase, 'rpc.status_code': 'OK' }, 2],
      [{ ...rpcBase, 'rpc.status_code': 'NOT_FOUND', 'error.type': 'NOT_FOUND' }, 1],
    ]);
    expect(rpc.dataPoints[0]!.value.buckets.boundaries).toEqual(RPC_DURATION_BUCKETS);

    const grpcBase = { 'grpc.method': METHOD, 'grpc.target': target };
    expect(points(metrics.get('grpc.client.attempt.started'))).toEqual([{ attributes: grpcBase, value: 4 }]);
    // An observable counter (the adapter counts, the SDK reads the count at collection): exported
    // as the same monotonic sum a synchronous counter gives.
    expect(metrics.get('grpc.client.attempt.started')!.descriptor).toMatchObject({ unit: '{attempt}', type: 'OBSERVABLE_COUNTER' });
    expect(metrics.get('grpc.client.attempt.started')).toMatchObject({ dataPointType: DataPointType.SUM, isMonotonic: true });

    const attempt = metrics.get('grpc.client.attempt.duration') as HistogramMetricData;
    expect(attempt.descriptor.unit).toBe('s');
    expect(attempt.dataPoints.map((p) => [p.attributes, p.value.count])).toEqual([
      [{ ...grpcBase, 'grpc.status': 'OK' }, 2],
      [{ ...grpcBase, 'grpc.status': 'UNAVAILABLE' }, 1],
      [{ ...grpcBase, 'grpc.status': 'NOT_FOUND' }, 1],
    ]);
    expect(attempt.dataPoints[0]!.value.buckets.boundaries).toEqual(GRPC_LATENCY_BUCKETS);

    const call = metrics.get('grpc.client.call.duration') as HistogramMetricData;
    expect(call.descriptor.unit).toBe('s');
    expect(call.dataPoints.map((p) => [p.attributes, p.value.count])).toEqual([
      [{ ...grpcBase, 'grpc.status': 'OK' }, 2],
      [{ ...grpcBase, 'grpc.status': 'NOT_FOUND' }, 1],
    ]);

    // gRFC A96: one call retried once; calls without retries record nothing.
    const retries = metrics.get('grpc.client.call.retries') as HistogramMetricData;
    expect(retries.descriptor.unit).toBe('{retry}');
    expect(retries.dataPoints.map((p) => [p.attributes, p.value.count, p.value.sum, p.value.buckets.boundaries])).toEqual([
      [grpcBase, 1, 1, [1, 2, 3, 4, 5]],
    ]);
    const delay = metrics.get('grpc.client.call.retry_delay') as HistogramMetricData;
    expect(delay.descriptor.unit).toBe('s');
    expect(delay.dataPoints.map((p) => [p.attributes, p.value.count])).toEqual([[grpcBase, 1]]);
    // In seconds, and part of its call: the retried call's backoff (0 to 5 ms planned, however
    // long a loaded machine's timer took) fits in the duration of the OK calls, the retried one
    // among them.
    expect(delay.dataPoints[0]!.value.sum).toBeGreaterThanOrEqual(0);
    expect(delay.dataPoints[0]!.value.sum).toBeLessThanOrEqual(call.dataPoints[0]!.value.sum!);

    expect(points(metrics.get('resilient_grpc.client.retries.throttled'))).toEqual([{ attributes: { 'grpc.target': target }, value: 0 }]);
    expect(points(metrics.get('resilient_grpc.client.retries.budget'))).toEqual([{ attributes: { 'grpc.target': target }, value: 0 }]);
    expect(points(metrics.get('resilient_grpc.client.call.in_flight'))).toEqual([{ attributes: { 'grpc.target': target }, value: 0 }]);
  });

  it('records adaptive throttling: its local rejections as refusals and as a counter, and its reject probability', async () => {
    using _ = openTelemetry(pool, { meterProvider, traces: false });
    const echo = pool.client(TestServiceClient, server.address, {
      retry: false,
      breaker: false,
      adaptiveThrottling: { maxRejectPercent: 100 },
    }) as unknown as Echo;
    const failing = script({ 'fail-code': grpc.status.UNAVAILABLE });
    let throttled = 0;
    for (let i = 0; i < 40; i++) {
      const error = await echo.Echo({ message: 'x' }, { metadata: failing }).then(
        () => undefined,
        (e: unknown) => e as { code: number; throttled?: boolean },
      );
      expect(error?.code).toBe(grpc.status.UNAVAILABLE);
      if (error?.throttled === true) throttled++;
    }
    expect(throttled).toBeGreaterThan(0);
    const metrics = await collected();
    const target = `dns:///${server.address}`;
    expect(points(metrics.get('resilient_grpc.client.call.refused'))).toEqual([
      { attributes: { 'grpc.method': METHOD, 'grpc.target': target, 'resilient_grpc.refusal': 'throttle' }, value: throttled },
    ]);
    expect(points(metrics.get('resilient_grpc.client.adaptive_throttling.rejected'))).toEqual([
      { attributes: { 'grpc.target': target }, value: throttled },
    ]);
    const [probability] = points(metrics.get('resilient_grpc.client.adaptive_throttling.reject_probability'));
    expect(probability).toMatchObject({ attributes: { 'grpc.target': target } });
    expect(probability!.value).toBe(pool.stats().perChannel[0]!.adaptiveThrottling!.rejectProbability);
    expect(probability!.value).toBeGreaterThan(0.5);
  });

  it('records refusals, circuit state and openings under resilient_grpc.', async () => {
    using _ = openTelemetry(pool, { meterProvider, traces: false });
    const echo = pool.client(TestServiceClient, server.address, {
      retry: false,
      // One circuit per channel, as these expectations were written (the default scope is 'method').
      breaker: { scope: 'channel', volumeThreshold: 2, errorThresholdPercentage: 50, windowMs: 10_000, resetTimeoutMs: 60_000 },
    }) as unknown as Echo;
    const failing = script({ 'fail-code': grpc.status.UNAVAILABLE });
    for (let i = 0; i < 2; i++)
      await expect(echo.Echo({ message: 'x' }, { metadata: failing })).rejects.toMatchObject({ code: grpc.status.UNAVAILABLE });
    await expect(echo.Echo({ message: 'x' })).rejects.toBeInstanceOf(CircuitOpenError);
    const metrics = await collected();
    const target = `dns:///${server.address}`;
    expect(points(metrics.get('resilient_grpc.client.call.refused'))).toEqual([
      { attributes: { 'grpc.method': METHOD, 'grpc.target': target, 'resilient_grpc.refusal': 'circuit' }, value: 1 },
    ]);
    expect(points(metrics.get('resilient_grpc.client.circuit.opened'))).toEqual([{ attributes: { 'grpc.target': target }, value: 1 }]);
    expect(points(metrics.get('resilient_grpc.client.circuit.state'))).toEqual([
      { attributes: { 'grpc.target': target, 'resilient_grpc.circuit.state': 'closed' }, value: 0 },
      { attributes: { 'grpc.target': target, 'resilient_grpc.circuit.state': 'open' }, value: 1 },
      { attributes: { 'grpc.target': target, 'resilient_grpc.circuit.state': 'half-open' }, value: 0 },
    ]);
  });

  it('server.address and grpc.target follow the conventions for each target form', () => {
    expect(serverAddress('grpc.io:50051')).toEqual({ address: 'grpc.io', port: 50051 });
    expect(serverAddress('dns://1.2.3.4/grpc.io:50051')).toEqual({ address: 'grpc.io', port: 50051 });
    expect(serverAddress('dns:///grpc.io:50051')).toEqual({ address: 'grpc.io', port: 50051 });
    expect(serverAddress('[::1]:50051')).toEqual({ address: '::1', port: 50051 });
    expect(serverAddress('unix:///run/containerd/containerd.sock')).toEqual({
      address: '/run/containerd/containerd.sock',
      port: undefined,
    });
    expect(serverAddress('ipv4:198.51.100.123:50051,198.51.100.124:50051')).toEqual({
      address: 'ipv4:198.51.100.123:50051,198.51.100.124:50051',
      port: undefined,
    });
    expect(canonicalTarget('localhost:50051')).toBe('dns:///localhost:50051');
    expect(canonicalTarget('xds:///helloworld:8000')).toBe('xds:///helloworld:8000');
    expect(canonicalTarget('xds:helloworld')).toBe('xds:helloworld');
    // A resolver plugin's scheme, which pool.client() passes through when written with `//`.
    expect(canonicalTarget('consul:///users')).toBe('consul:///users');
    expect(canonicalTarget('consul://agent:8500/users')).toBe('consul://agent:8500/users');
  });
});

describe('openTelemetry traces', () => {
  it("one call span with a child span per attempt under the caller's span; the server gets each attempt's traceparent", async () => {
    using _ = openTelemetry(pool, { tracerProvider, metrics: false });
    const echo = pool.client(TestServiceClient, server.address, { breaker: false }) as unknown as Echo;
    const tracer = tracerProvider.getTracer('test');
    const metadata = script({ 'fail-times': 2 });
    await tracer.startActiveSpan('caller', async (caller) => {
      await echo.Echo({ message: 'retried' }, { metadata });
      caller.end();
    });
    const spans = exporter.getFinishedSpans();
    const byName = (name: string): ReadableSpan[] => spans.filter((s) => s.name === name);
    const [caller] = byName('caller');
    const [call] = byName(METHOD);
    const attempts = byName('Attempt.resilient.test.v1.TestService.Echo');
    expect(spans).toHaveLength(5);
    expect(call!.kind).toBe(SpanKind.CLIENT);
    expect(call!.parentSpanContext?.spanId).toBe(caller!.spanContext().spanId);
    expect(call!.attributes).toEqual({
      'rpc.system.name': 'grpc',
      'rpc.method': METHOD,
      'server.address': '127.0.0.1',
      'server.port': server.port,
      'rpc.status_code': 'OK',
      'resilient_grpc.attempts': 3,
      'resilient_grpc.backoff_ms': expect.any(Number),
    });
    expect(call!.status.code).toBe(SpanStatusCode.UNSET);
    expect(
      call!.events.map((e) => [e.name, e.attributes?.['resilient_grpc.retry.failed_attempt'], e.attributes?.['rpc.status_code']]),
    ).toEqual([
      ['resilient_grpc.retry', 1, 'UNAVAILABLE'],
      ['resilient_grpc.retry', 2, 'UNAVAILABLE'],
    ]);
    expect(
      attempts.map((a) => [
        a.kind,
        a.parentSpanContext?.spanId,
        a.attributes['previous-rpc-attempts'],
        a.attributes['rpc.status_code'],
        a.status.code,
      ]),
    ).toEqual([
      [SpanKind.CLIENT, call!.spanContext().spanId, 0, 'UNAVAILABLE', SpanStatusCode.ERROR],
      [SpanKind.CLIENT, call!.spanContext().spanId, 1, 'UNAVAILABLE', SpanStatusCode.ERROR],
      [SpanKind.CLIENT, call!.spanContext().spanId, 2, 'OK', SpanStatusCode.UNSET],
    ]);
    expect(attempts[0]!.attributes).toMatchObject({
      'network.peer.address': '127.0.0.1',
      'network.peer.port': server.port,
      'transparent-retry': false,
    });
    for (const span of spans) expect(span.spanContext().traceId).toBe(caller!.spanContext().traceId);
    // The server joined each attempt's span: traceparent 00-<trace>-<attempt span>-01.
    const received = server.calls.filter((c) => c.callId === metadata['x-call-id']).map((c) => c.metadata.get('traceparent')[0]);
    expect(received).toEqual(attempts.map((a) => `00-${a.spanContext().traceId}-${a.spanContext().spanId}-01`));
  });

  it('a failed call span has the status, error.type and A72 description; a refused one its circuit event; streams are spanned too', async () => {
    using _ = openTelemetry(pool, { tracerProvider, metrics: false });
    const echo = pool.client(TestServiceClient, server.address, {
      retry: false,
      breaker: { volumeThreshold: 1, errorThresholdPercentage: 50, windowMs: 10_000, resetTimeoutMs: 60_000 },
    }) as unknown as Echo;
    const plain = pool.client(TestServiceClient, server.address, { breaker: false }) as unknown as Echo;
    for await (const _m of plain.ServerStream({ message: 's', count: 2 }));
    await expect(echo.Echo({ message: 'x' }, { metadata: script({ 'fail-code': grpc.status.UNAVAILABLE }) })).rejects.toMatchObject({
      code: 14,
    });
    await expect(echo.Echo({ message: 'x' })).rejects.toBeInstanceOf(CircuitOpenError);
    const calls = exporter.getFinishedSpans().filter((s) => !s.name.startsWith('Attempt.'));
    expect(
      calls.map((s) => [s.name, s.attributes['rpc.status_code'], s.attributes['error.type'], s.status, s.events.map((e) => e.name)]),
    ).toEqual([
      ['resilient.test.v1.TestService/ServerStream', 'OK', undefined, { code: SpanStatusCode.UNSET }, []],
      [METHOD, 'UNAVAILABLE', 'UNAVAILABLE', { code: SpanStatusCode.ERROR, message: 'UNAVAILABLE, scripted failure' }, []],
      [
        METHOD,
        'UNAVAILABLE',
        'UNAVAILABLE',
        { code: SpanStatusCode.ERROR, message: expect.stringMatching(/^UNAVAILABLE, /) },
        ['resilient_grpc.circuit_open'],
      ],
    ]);
    // No orphans: every attempt span's parent is a call span that was exported.
    const ids = new Set(calls.map((s) => s.spanContext().spanId));
    const attempts = exporter.getFinishedSpans().filter((s) => s.name.startsWith('Attempt.'));
    expect(attempts).toHaveLength(2);
    for (const attempt of attempts) expect(ids.has(attempt.parentSpanContext!.spanId)).toBe(true);
  });

  it('an unsampled call makes no attempt span; the server still gets its traceparent, flags 00, and its attempts are counted', async () => {
    const unsampledExporter = new InMemorySpanExporter();
    const unsampled = new BasicTracerProvider({
      sampler: new ParentBasedSampler({ root: new TraceIdRatioBasedSampler(0) }),
      spanProcessors: [new SimpleSpanProcessor(unsampledExporter)],
    });
    try {
      using _ = openTelemetry(pool, { tracerProvider: unsampled, meterProvider });
      const echo = pool.client(TestServiceClient, server.address, { breaker: false }) as unknown as Echo;
      const metadata = script({ 'fail-times': 1 });
      await echo.Echo({ message: 'retried' }, { metadata });
      expect(unsampledExporter.getFinishedSpans()).toEqual([]);
      const received = server.calls.filter((c) => c.callId === metadata['x-call-id']).map((c) => c.metadata.get('traceparent')[0]);
      expect(received).toHaveLength(2);
      for (const value of received) expect(value).toMatch(/^00-[0-9a-f]{32}-[0-9a-f]{16}-00$/);
      // Both attempts carry the call span's context: one trace, one parent.
      expect(new Set(received).size).toBe(1);
      expect(points((await collected()).get('grpc.client.attempt.started'))).toEqual([
        { attributes: { 'grpc.method': METHOD, 'grpc.target': canonicalTarget(server.address) }, value: 2 },
      ]);
    } finally {
      await unsampled.shutdown();
    }
  });

  it('dispose() stops recording', async () => {
    const subscription = openTelemetry(pool, { tracerProvider, meterProvider });
    subscription.dispose();
    await (pool.client(TestServiceClient, server.address) as unknown as Echo).Echo({ message: 'x' });
    expect(exporter.getFinishedSpans()).toEqual([]);
    expect(server.calls[0]!.metadata.get('traceparent')).toEqual([]);
    const metrics = await collected();
    expect([...metrics.values()].flatMap((m): unknown[] => m.dataPoints)).toEqual([]);
    expect(trace.getActiveSpan()).toBeUndefined();
  });
});
