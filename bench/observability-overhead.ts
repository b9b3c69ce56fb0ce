// What do the call events and the observability adapters cost per call on the happy path?
//
// Unary Echo with a small message against the test server running in its own process (a fresh
// one per concurrency level), at concurrency 1, 32 and 256. Each contender runs in a process of
// its own, in interleaved rounds with a pool that has no adapter (its baseline, measured in the
// same process): an application runs one adapter, and several adapters' listeners and SDK
// objects in one process make each other's shared code (the pool's event path, the SDK's)
// polymorphic and share one heap, which inflated every adapter's figure (measured: metrics only
// 1.04x alone, 1.12-1.23x beside the other contenders). The contenders:
//   - events compiled out: the same pool built from the same src/ with the two call sites that
//     make a call observed cut out, to see what an unobserved call pays for the events (an older
//     commit would differ in everything merged since);
//   - prometheus: prometheusMetrics(pool, { registry }) on a prom-client Registry of its own;
//   - opentelemetry: openTelemetry(pool, ...) with the SDK's MeterProvider (a reader that is never
//     collected) and BasicTracerProvider (every span sampled, a BatchSpanProcessor, the processor
//     the SDK documents for production, whose exporter drops the batches), the W3C propagator
//     registered, so every attempt's metadata gets a traceparent. No context manager is
//     registered: it is a process-wide cost any OpenTelemetry application pays whether or not it
//     uses this adapter;
//   - opentelemetry, 10 % sampled: the same with ParentBased(TraceIdRatioBased(0.1)), a common
//     production sampler (unsampled calls still carry a traceparent, flags 00);
//   - opentelemetry, metrics only: traces: false;
//   - SDK calls alone: no adapter, four listeners that make the OpenTelemetry calls the adapter
//     makes for a one-attempt unary call (two spans, the context set and injected, three
//     histogram records and the attempt count) and nothing else: the floor any adapter that
//     records this data with this SDK pays. opentelemetry vs this floor is the adapter's own cost.
// Client CPU µs per call (process.cpuUsage), calls/s, medians over rounds, ratios vs the
// contender's own baseline (median of per-round ratios).
//
// Run alone: node --expose-gc --import tsx bench/observability-overhead.ts
//   BENCH_ROUNDS (default 6, per process), BENCH_ROUND_SEC (default 0.6),
//   BENCH_PROCESSES (default 3: processes per contender and concurrency), BENCH_CONCURRENCY (default 1,32,256),
//   BENCH_ONLY (a comma-separated subset of the keys: no-events, prometheus, opentelemetry,
//   opentelemetry-sampled, opentelemetry-metrics, sdk-floor).
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { cpSync, mkdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { context, propagation, trace, SpanKind, type Context, type Span } from '@opentelemetry/api';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import { MeterProvider, MetricReader } from '@opentelemetry/sdk-metrics';
import { BasicTracerProvider, BatchSpanProcessor, ParentBasedSampler, TraceIdRatioBasedSampler, type ReadableSpan, type SpanExporter } from '@opentelemetry/sdk-trace-base';
import { Registry } from 'prom-client';
import { TestServiceClient } from '../test/helpers/protos.js';
import type { EchoRequest, EchoResponse } from '../test/helpers/protos.js';
import { startTestServerProcess } from '../test/helpers/test-server-process.js';
import { ARMED, cliArg, controlNote, fmt, loadPackage, measurePairs, median, progress, promiseCall, report, REPO_DIR, runPairChild, type Contender, type PairBuilt, type Paired, type Target } from './lib.js';

const { ChannelPool } = await loadPackage();
const { prometheusMetrics } = (await import(new URL('../dist/prometheus.js', import.meta.url).href)) as typeof import('../src/adapters/prometheus.js');
const { openTelemetry, RPC_DURATION_BUCKETS } = (await import(new URL('../dist/opentelemetry.js', import.meta.url).href)) as typeof import('../src/adapters/opentelemetry.js');

const CONCURRENCY = (process.env.BENCH_CONCURRENCY ?? '1,32,256').split(',').map(Number);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 6);
const ROUND_SEC = Number(process.env.BENCH_ROUND_SEC ?? 0.6);
const WARMUP_SEC = 0.5;
const KEYS = ['a-a', 'no-events', 'prometheus', 'opentelemetry', 'opentelemetry-sampled', 'opentelemetry-metrics', 'sdk-floor'] as const;
type Key = (typeof KEYS)[number];
const ONLY = process.env.BENCH_ONLY?.split(',');
const REQUEST: EchoRequest = { message: 'hello', delayMs: 0, payload: Buffer.alloc(0) };

const NONE = 'no adapter';
const BEFORE = 'events compiled out';
const PROM = 'prometheus';
const OTEL = 'opentelemetry';
const OTEL_SAMPLED = 'opentelemetry, 10 % sampled';
const OTEL_METRICS = 'opentelemetry, metrics only';
const SDK_FLOOR = 'SDK calls alone';
const CONTROL = 'no adapter either (A/A control)';
/** Child processes per contender and concurrency: a process's own luck (its sockets, its heap) shows as a ratio of up to ±10 % between two identical pools, which more rounds in one process do not average out. */
const PROCESSES = Number(process.env.BENCH_PROCESSES ?? 3);

/** Where the build without the call events goes (rebuilt by each run from the current src/). */
const NO_EVENTS_DIR = join(REPO_DIR, '.tmp', 'obs-no-events');
/** The call sites that make a call observed, and what replaces each: with them gone, nothing reads the events. */
const EVENT_SITES: Array<[file: string, from: string, to: string]> = [
  ['call/call.ts', 'if (events.watchingCalls) this.observer = new CallObserver(this.bound, events);', ''],
  ['call/admission.ts', 'bound.pool.callEvents.notStarted(bound.channel.target, bound.method, error, refused);', ''],
];

/**
 * Builds the current src/ with the events' call sites cut out (no call is ever observed, so
 * nothing reads `watchingCalls` or makes a CallObserver; only checks of an always-undefined
 * field stay), into NO_EVENTS_DIR. Throws if a call site is not where this expects it.
 */
function buildWithoutEvents(): void {
  rmSync(NO_EVENTS_DIR, { recursive: true, force: true });
  mkdirSync(NO_EVENTS_DIR, { recursive: true });
  cpSync(join(REPO_DIR, 'src'), join(NO_EVENTS_DIR, 'src'), { recursive: true });
  for (const file of ['tsup.config.ts', 'package.json', 'tsconfig.json']) cpSync(join(REPO_DIR, file), join(NO_EVENTS_DIR, file));
  for (const [file, from, to] of EVENT_SITES) {
    const path = join(NO_EVENTS_DIR, 'src', file);
    const source = readFileSync(path, 'utf8');
    if (!source.includes(from)) throw new Error(`bench: the events' call site moved: ${file} no longer has "${from}"`);
    writeFileSync(path, source.replace(from, to));
  }
  symlinkSync(join(REPO_DIR, 'node_modules'), join(NO_EVENTS_DIR, 'node_modules'), 'dir');
  execFileSync(join(REPO_DIR, 'node_modules', '.bin', 'tsup'), ['--no-dts'], { cwd: NO_EVENTS_DIR, stdio: 'ignore' });
}

async function loadWithoutEvents(): Promise<typeof import('../src/index.js')> {
  return (await import(join(NO_EVENTS_DIR, 'dist', 'index.js'))) as typeof import('../src/index.js');
}

class IdleReader extends MetricReader {
  protected async onForceFlush(): Promise<void> {}
  protected async onShutdown(): Promise<void> {}
}

/** Receives every batch and drops it: the cost of spans up to the exporter. */
class DroppingExporter implements SpanExporter {
  spans = 0;
  export(spans: ReadableSpan[], done: (result: { code: 0 }) => void): void {
    this.spans += spans.length;
    done({ code: 0 });
  }
  async shutdown(): Promise<void> {}
}

propagation.setGlobalPropagator(new W3CTraceContextPropagator());

async function build(address: string, key: Key): Promise<PairBuilt> {
  const contenders: Contender[] = [];
  const checks: Array<() => Promise<unknown>> = [];
  const closers: Array<() => unknown> = [];
  const add = (name: string, pool: InstanceType<typeof ChannelPool>, close: () => unknown = () => {}): void => {
    const client = pool.client(TestServiceClient, address);
    const call = (): Promise<EchoResponse> => client.Echo(REQUEST) as Promise<EchoResponse>;
    contenders.push({ name, start: promiseCall(call) });
    checks.push(call);
    closers.push(async () => {
      await close();
      await pool.close({ graceMs: 0 });
    });
  };

  add(NONE, new ChannelPool(ARMED));
  if (key === 'a-a') add(CONTROL, new ChannelPool(ARMED));
  if (key === 'no-events') {
    const base = await loadWithoutEvents();
    add(BEFORE, new base.ChannelPool(ARMED) as unknown as InstanceType<typeof ChannelPool>);
  }
  if (key === 'prometheus') {
    const promPool = new ChannelPool(ARMED);
    const prom = prometheusMetrics(promPool, { registry: new Registry() });
    add(PROM, promPool, () => prom.dispose());
  }
  if (key === 'opentelemetry') addOpenTelemetry(OTEL, true, 1);
  if (key === 'opentelemetry-sampled') addOpenTelemetry(OTEL_SAMPLED, true, 0.1);
  if (key === 'opentelemetry-metrics') addOpenTelemetry(OTEL_METRICS, false, 1);
  if (key === 'sdk-floor') addSdkFloor();

  /** The SDK providers of one contender: spans batched (the production processor) to an exporter that drops them. */
  function providers(ratio: number): { meterProvider: MeterProvider; tracerProvider: BasicTracerProvider; exporter: DroppingExporter } {
    const exporter = new DroppingExporter();
    // A batch is exported when 512 spans are queued (or after 5 s): within the round that made them at these rates.
    const tracerProvider = new BasicTracerProvider({
      spanProcessors: [new BatchSpanProcessor(exporter)],
      ...(ratio < 1 ? { sampler: new ParentBasedSampler({ root: new TraceIdRatioBasedSampler(ratio) }) } : {}),
    });
    return { meterProvider: new MeterProvider({ readers: [new IdleReader()] }), tracerProvider, exporter };
  }

  function addOpenTelemetry(name: string, traces: boolean, ratio: number): void {
    const otelPool = new ChannelPool(ARMED);
    const { meterProvider, tracerProvider, exporter } = providers(ratio);
    const otel = openTelemetry(otelPool, { meterProvider, tracerProvider, traces });
    add(name, otelPool, async () => {
      otel.dispose();
      await tracerProvider.shutdown();
      await meterProvider.shutdown();
      if (traces) progress(`${name}: ${exporter.spans} spans exported (and dropped)`);
    });
  }

  function addSdkFloor(): void {
    const floorPool = new ChannelPool(ARMED);
    const { meterProvider, tracerProvider, exporter } = providers(1);
    const tracer = tracerProvider.getTracer('floor');
    const meter = meterProvider.getMeter('floor');
    const buckets = { advice: { explicitBucketBoundaries: RPC_DURATION_BUCKETS } };
    const rpcDuration = meter.createHistogram('rpc.client.call.duration', buckets);
    const attemptDuration = meter.createHistogram('grpc.client.attempt.duration', buckets);
    const callDuration = meter.createHistogram('grpc.client.call.duration', buckets);
    const rpcAttributes = { 'rpc.system.name': 'grpc', 'rpc.method': 'resilient.test.v1.TestService/Echo', 'server.address': '127.0.0.1', 'server.port': 1, 'rpc.status_code': 'OK' };
    const grpcAttributes = { 'grpc.method': 'resilient.test.v1.TestService/Echo', 'grpc.target': 'dns:///127.0.0.1:1', 'grpc.status': 'OK' };
    const setter = { set: (carrier: { set(k: string, v: string): void }, k: string, v: string) => carrier.set(k, v) };
    const calls = new Map<number, { span: Span; context: Context; attempt?: Span }>();
    let attemptsStarted = 0;
    const subscriptions = [
      floorPool.onCallStart((e) => {
        const span = tracer.startSpan('resilient.test.v1.TestService/Echo', { kind: SpanKind.CLIENT, attributes: rpcAttributes });
        calls.set(e.callId, { span, context: trace.setSpan(context.active(), span) });
      }),
      floorPool.onAttemptStart((e) => {
        attemptsStarted++;
        const call = calls.get(e.callId)!;
        call.attempt = tracer.startSpan('Attempt.resilient.test.v1.TestService.Echo', { kind: SpanKind.CLIENT, attributes: rpcAttributes }, call.context);
        propagation.inject(trace.setSpan(call.context, call.attempt), e.metadata, setter);
      }),
      floorPool.onAttemptEnd((e) => {
        attemptDuration.record(e.durationMs / 1000, grpcAttributes);
        calls.get(e.callId)!.attempt!.end();
      }),
      floorPool.onCallEnd((e) => {
        rpcDuration.record(e.durationMs / 1000, rpcAttributes);
        callDuration.record(e.durationMs / 1000, grpcAttributes);
        calls.get(e.callId)!.span.end();
        calls.delete(e.callId);
      }),
    ];
    add(SDK_FLOOR, floorPool, async () => {
      for (const s of subscriptions) s.dispose();
      await tracerProvider.shutdown();
      await meterProvider.shutdown();
      progress(`${SDK_FLOOR}: ${attemptsStarted} attempts, ${exporter.spans} spans exported (and dropped)`);
    });
  }

  return {
    contenders,
    async check() {
      for (const [i, check] of checks.entries()) {
        const response = (await check()) as EchoResponse;
        if (response.message !== REQUEST.message) throw new Error(`${contenders[i]!.name}: unexpected response ${JSON.stringify(response)}`);
      }
    },
    async close() {
      for (const close of closers) await close();
    },
  };
}

interface LevelResult {
  concurrency: number;
  measured: Paired[];
}

const childKey = cliArg('child') as Key | undefined;
if (childKey !== undefined) {
  await runPairChild(await build(cliArg('address')!, childKey), { concurrency: Number(cliArg('concurrency')), rounds: ROUNDS, roundSec: ROUND_SEC, warmupSec: WARMUP_SEC, label: childKey });
  process.exit(0);
}

const startedAt = performance.now();
const levels: LevelResult[] = [];
const keys = KEYS.filter((k) => ONLY === undefined || ONLY.includes(k));
if (keys.includes('no-events')) {
  progress(`building src/ without the events' call sites into ${NO_EVENTS_DIR}`);
  buildWithoutEvents();
}
for (const concurrency of CONCURRENCY) {
  const server = await startTestServerProcess();
  try {
    const measured = await measurePairs(fileURLToPath(import.meta.url), keys, PROCESSES, (key) => [`--child=${key}`, `--address=${server.address}`, `--concurrency=${concurrency}`]);
    levels.push({ concurrency, measured });
  } finally {
    await server.kill();
  }
}

const rows: string[][] = [];
const targets: Target[] = [];
for (const level of levels) {
  const byName = new Map(level.measured.map((m) => [m.name, m]));
  for (const m of level.measured) {
    rows.push([
      String(level.concurrency),
      m.name,
      fmt.fixed(m.cpuUsPerCall),
      fmt.fixed(m.baselineCpuUsPerCall),
      fmt.ratio(m.cpuRatio, 3),
      `${fmt.ratio(m.cpuRatioMin, 2)}–${fmt.ratio(m.cpuRatioMax, 2)}`,
      fmt.ratio(m.rateRatio, 3),
      `${m.runs.length}×${m.runs[0]!.contender.rounds.length}×${fmt.int(median(m.runs.map((r) => r.callsPerRound)))}`,
    ]);
  }
  const before = byName.get(BEFORE);
  if (before !== undefined) {
    // The baseline is "no adapter": compiled-out/none < 1 would mean the events cost something.
    const eventsCost = 1 / before.cpuRatio;
    targets.push({ what: `c=${level.concurrency}: events with no listener (no adapter vs the same build with ${BEFORE}), CPU/call`, figure: fmt.ratio(eventsCost, 3), target: '≤ 1.01×', met: eventsCost <= 1.01 });
  }
  for (const name of [PROM, OTEL, OTEL_SAMPLED, OTEL_METRICS]) {
    const s = byName.get(name);
    if (s !== undefined) targets.push({ what: `c=${level.concurrency}: ${name} adapter CPU/call vs no adapter`, figure: fmt.ratio(s.cpuRatio, 3), target: '≤ 1.05×', met: s.cpuRatio <= 1.05 });
  }
  const otel = byName.get(OTEL);
  const floor = byName.get(SDK_FLOOR);
  if (otel !== undefined && floor !== undefined) {
    // Each vs its own baseline, divided: the adapter's own cost over the SDK's.
    const own = otel.cpuRatio / floor.cpuRatio;
    targets.push({ what: `c=${level.concurrency}: opentelemetry adapter vs ${SDK_FLOOR} (its own cost; our proposed target)`, figure: fmt.ratio(own, 3), target: '≤ 1.05×', met: own <= 1.05 });
  }
}

report({
  name: 'observability-overhead',
  title: 'Observability overhead: client CPU per unary call with no adapter, the Prometheus adapter and the OpenTelemetry adapter',
  durationSec: (performance.now() - startedAt) / 1000,
  tables: [
    {
      title: 'observability-overhead (each contender in processes of its own, in interleaved rounds with a pool with no adapter; per process, medians of rounds and of per-round ratios; shown, the median over processes and the lowest–highest process ratio)',
      header: ['conc', 'contender', 'CPU µs/call', 'no adapter µs/call', '× none', '× none, by process', 'calls/s × none', 'processes×rounds×calls'],
      rows,
    },
  ],
  targets,
  notes: [
    controlNote(levels, CONTROL, 'two pools with no adapter, the same code'),
    `Every pool: new ChannelPool(${JSON.stringify(ARMED)}), the tsup build in dist/; "${BEFORE}" is the same options on a build of the same src/ with the two call sites that make a call observed cut out (call-run.ts, call-admission.ts).`,
    'prometheus: its own prom-client Registry, never scraped (scraping is the scraper\'s cost, not the call\'s). opentelemetry: SDK 2.x MeterProvider with a reader that never collects, BasicTracerProvider sampling every span (10 % sampled: ParentBased(TraceIdRatioBased(0.1))) into a BatchSpanProcessor whose exporter drops the batches, W3C propagator (a traceparent on every attempt); no context manager. SDK calls alone: two spans, the context set and injected, three histogram records and a count per call, made by four bare listeners.',
    'CPU is the client process only (user + system, all threads, GC included); the server runs in its own process, restarted for each concurrency level. Each contender runs in a process of its own beside its own no-adapter baseline (one adapter per application; adapters side by side in one process inflate each other through shared polymorphic code and one heap).',
  ],
  data: levels,
});
