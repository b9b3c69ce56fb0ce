// What do the call events and the observability adapters cost per call on the happy path?
//
// Unary Echo with a small message against the test server running in its own process (a fresh
// one per concurrency level), at concurrency 1, 32 and 256. Each contender runs in a process of
// its own, in interleaved rounds with a pool that has no adapter (its baseline, measured in the
// same process): an application runs one adapter, and several adapters' listeners and SDK
// objects in one process make each other's shared code (the pool's event path, the SDK's)
// polymorphic and share one heap, which inflated every adapter's figure (measured: metrics only
// 1.04x alone, 1.12-1.23x beside the other contenders). The contenders:
//   - before events: the same pool built from the commit before the call events existed
//     (BENCH_BASE_REF, default 5e070f9), to see what an unobserved call pays for them;
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
//   BENCH_ROUNDS (default 7), BENCH_ROUND_SEC (default 0.8), BENCH_CONCURRENCY (default 1,32,256),
//   BENCH_ONLY (a comma-separated subset of the keys: before, prometheus, opentelemetry,
//   opentelemetry-sampled, opentelemetry-metrics, sdk-floor).
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { existsSync, mkdirSync, rmSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';
import { context, propagation, trace, SpanKind, type Context, type Span } from '@opentelemetry/api';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import { MeterProvider, MetricReader } from '@opentelemetry/sdk-metrics';
import { BasicTracerProvider, BatchSpanProcessor, ParentBasedSampler, TraceIdRatioBasedSampler, type ReadableSpan, type SpanExporter } from '@opentelemetry/sdk-trace-base';
import { Registry } from 'prom-client';
import { TestServiceClient } from '../test/helpers/protos.js';
import type { EchoRequest, EchoResponse } from '../test/helpers/protos.js';
import { startTestServerProcess } from '../test/helpers/test-server-process.js';
import { ARMED, fmt, interleavedRounds, loadPackage, markedJson, progress, promiseCall, report, REPO_DIR, runLoad, runNodeChild, type Contender, type ContenderSummary, type Target } from './lib.js';

const { ChannelPool } = await loadPackage();
const { prometheusMetrics } = (await import(new URL('../dist/prometheus.js', import.meta.url).href)) as typeof import('../src/prometheus.js');
const { openTelemetry } = (await import(new URL('../dist/opentelemetry.js', import.meta.url).href)) as typeof import('../src/opentelemetry.js');

const CONCURRENCY = (process.env.BENCH_CONCURRENCY ?? '1,32,256').split(',').map(Number);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 7);
const ROUND_SEC = Number(process.env.BENCH_ROUND_SEC ?? 0.8);
const WARMUP_SEC = 0.5;
const BASE_REF = process.env.BENCH_BASE_REF ?? '5e070f9';
const KEYS = ['before', 'prometheus', 'opentelemetry', 'opentelemetry-sampled', 'opentelemetry-metrics', 'sdk-floor'] as const;
type Key = (typeof KEYS)[number];
const ONLY = process.env.BENCH_ONLY?.split(',');
const CHILD_MARKER = '@@obs-child@@ ';
const CHILD_TIMEOUT_MS = 180_000;
const arg = (name: string): string | undefined => process.argv.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3);
const REQUEST: EchoRequest = { message: 'hello', delayMs: 0, payload: Buffer.alloc(0) };

const NONE = 'no adapter';
const BEFORE = `before events (${BASE_REF})`;
const PROM = 'prometheus';
const OTEL = 'opentelemetry';
const OTEL_SAMPLED = 'opentelemetry, 10 % sampled';
const OTEL_METRICS = 'opentelemetry, metrics only';
const SDK_FLOOR = 'SDK calls alone';

/** The package as built from BASE_REF, under .tmp/ (built once; its imports resolve to our node_modules). */
async function loadBase(): Promise<typeof import('../src/index.js') | undefined> {
  const dir = join(REPO_DIR, '.tmp', `obs-base-${BASE_REF}`);
  const entry = join(dir, 'dist', 'index.js');
  try {
    if (!existsSync(entry)) {
      progress(`building ${BASE_REF} into ${dir}`);
      rmSync(dir, { recursive: true, force: true });
      mkdirSync(dir, { recursive: true });
      const archive = execFileSync('git', ['archive', BASE_REF, 'src', 'tsup.config.ts', 'package.json', 'tsconfig.json'], { cwd: REPO_DIR });
      execFileSync('tar', ['-x', '-C', dir], { input: archive });
      symlinkSync(join(REPO_DIR, 'node_modules'), join(dir, 'node_modules'), 'dir');
      execFileSync(join(REPO_DIR, 'node_modules', '.bin', 'tsup'), ['--no-dts'], { cwd: dir, stdio: 'ignore' });
    }
    return (await import(entry)) as typeof import('../src/index.js');
  } catch (error) {
    progress(`no "${BEFORE}" contender: ${error instanceof Error ? error.message : String(error)}`);
    return undefined;
  }
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

interface Built {
  contenders: Contender[];
  check(): Promise<void>;
  close(): Promise<void>;
}

async function build(address: string, key: Key): Promise<Built> {
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
  if (key === 'before') {
    const base = await loadBase();
    if (base !== undefined) add(BEFORE, new base.ChannelPool(ARMED) as unknown as InstanceType<typeof ChannelPool>);
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
    const buckets = { advice: { explicitBucketBoundaries: [0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10] } };
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

async function rateOf(start: Contender['start'], concurrency: number, seconds: number): Promise<number> {
  let calls = Math.max(concurrency, 200);
  for (;;) {
    const t0 = performance.now();
    const result = await runLoad(start, calls, concurrency);
    const elapsed = (performance.now() - t0) / 1000;
    if (result.errors > 0) throw new Error(`calibration: ${result.errors} calls failed`);
    if (elapsed >= seconds / 2) return calls / elapsed;
    calls = Math.ceil((calls * seconds) / Math.max(elapsed, 0.01));
  }
}

interface LevelResult {
  concurrency: number;
  /** One per contender, each measured in its own process beside its own baseline. */
  pairs: Array<{ key: Key; callsPerRound: number; baseline: ContenderSummary; contender: ContenderSummary }>;
}

/** A child: the baseline and one contender, interleaved, in this process; prints the summaries. */
async function runChild(key: Key, address: string, concurrency: number): Promise<void> {
  const built = await build(address, key);
  try {
    await built.check();
    if (built.contenders.length < 2) throw new Error(`${key}: no contender was built`);
    const warmRates: number[] = [];
    for (const c of built.contenders) warmRates.push(await rateOf(c.start, concurrency, WARMUP_SEC));
    const rate = Math.max(warmRates[0]!, await rateOf(built.contenders[0]!.start, concurrency, ROUND_SEC / 2));
    const callsPerRound = Math.max(concurrency * 4, Math.round(rate * ROUND_SEC));
    progress(`c=${concurrency} ${key}: ${callsPerRound} calls per round, ${ROUNDS} rounds per contender`);
    const summaries = await interleavedRounds({
      contenders: built.contenders,
      baseline: NONE,
      rounds: ROUNDS,
      callsPerRound,
      concurrency,
      warmupCalls: Math.min(...warmRates.map((r) => Math.ceil(r * WARMUP_SEC))),
      onRound: (round, name, f) => progress(`c=${concurrency} round ${round + 1} ${name.padEnd(28)} ${fmt.fixed(f.cpuUsPerCall)} µs/call  ${fmt.int(f.callsPerSec)} calls/s`),
    });
    process.stdout.write(`${CHILD_MARKER}${JSON.stringify({ callsPerRound, baseline: summaries[0], contender: summaries[1] })}\n`);
  } finally {
    await built.close();
  }
}

const childKey = arg('child') as Key | undefined;
if (childKey !== undefined) {
  await runChild(childKey, arg('address')!, Number(arg('concurrency')));
  process.exit(0);
}

const startedAt = performance.now();
const levels: LevelResult[] = [];
const keys = KEYS.filter((k) => ONLY === undefined || ONLY.includes(k));
for (const concurrency of CONCURRENCY) {
  const server = await startTestServerProcess();
  const level: LevelResult = { concurrency, pairs: [] };
  try {
    for (const key of keys) {
      const run = await runNodeChild(fileURLToPath(import.meta.url), [`--child=${key}`, `--address=${server.address}`, `--concurrency=${concurrency}`], { timeoutMs: CHILD_TIMEOUT_MS });
      const result = markedJson<{ callsPerRound: number; baseline: ContenderSummary; contender: ContenderSummary }>(run.lines, CHILD_MARKER);
      if (run.code !== 0 || result === undefined) {
        // "before" needs git and a build of an old commit: missing it is reported, not fatal.
        if (key === 'before') continue;
        throw new Error(`c=${concurrency} ${key}: the child exited with ${run.code ?? run.signal}${run.timedOut ? ' (timed out)' : ''}`);
      }
      level.pairs.push({ key, ...result });
    }
  } finally {
    await server.kill();
  }
  levels.push(level);
}

const rows: string[][] = [];
const targets: Target[] = [];
for (const level of levels) {
  const byName = new Map(level.pairs.map((p) => [p.contender.name, p]));
  for (const { baseline, contender, callsPerRound } of level.pairs) {
    rows.push([
      String(level.concurrency),
      contender.name,
      fmt.fixed(contender.cpuUsPerCall),
      fmt.pct(contender.cpuSpread),
      fmt.fixed(baseline.cpuUsPerCall),
      fmt.ratio(contender.cpuRatio, 3),
      fmt.int(contender.callsPerSec),
      fmt.ratio(contender.rateRatio, 3),
      `${contender.rounds.length}×${fmt.int(callsPerRound)}`,
    ]);
  }
  const before = byName.get(BEFORE)?.contender;
  if (before !== undefined) {
    // The baseline is "no adapter": before/none < 1 would mean the events cost something.
    const eventsCost = 1 / before.cpuRatio;
    targets.push({ what: `c=${level.concurrency}: events with no listener (no adapter vs ${BEFORE}), CPU/call`, figure: fmt.ratio(eventsCost, 3), target: '≤ 1.01×', met: eventsCost <= 1.01 });
  }
  for (const name of [PROM, OTEL, OTEL_SAMPLED, OTEL_METRICS]) {
    const s = byName.get(name)?.contender;
    if (s !== undefined) targets.push({ what: `c=${level.concurrency}: ${name} adapter CPU/call vs no adapter`, figure: fmt.ratio(s.cpuRatio, 3), target: '≤ 1.05×', met: s.cpuRatio <= 1.05 });
  }
  const otel = byName.get(OTEL)?.contender;
  const floor = byName.get(SDK_FLOOR)?.contender;
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
      title: 'observability-overhead (each contender in its own process, in interleaved rounds with a pool with no adapter; medians; ±: half the interquartile range; ×: vs that baseline, median of per-round ratios)',
      header: ['conc', 'contender', 'CPU µs/call', '±', 'no adapter µs/call', '× none', 'calls/s', '× none', 'rounds×calls'],
      rows,
    },
  ],
  targets,
  notes: [
    `Every pool: new ChannelPool(${JSON.stringify(ARMED)}), the tsup build in dist/; "${BEFORE}" is the same options on the build of ${BASE_REF} (before the call events).`,
    'prometheus: its own prom-client Registry, never scraped (scraping is the scraper\'s cost, not the call\'s). opentelemetry: SDK 2.x MeterProvider with a reader that never collects, BasicTracerProvider sampling every span (10 % sampled: ParentBased(TraceIdRatioBased(0.1))) into a BatchSpanProcessor whose exporter drops the batches, W3C propagator (a traceparent on every attempt); no context manager. SDK calls alone: two spans, the context set and injected, three histogram records and a count per call, made by four bare listeners.',
    'CPU is the client process only (user + system, all threads, GC included); the server runs in its own process, restarted for each concurrency level. Each contender runs in a process of its own beside its own no-adapter baseline (one adapter per application; adapters side by side in one process inflate each other through shared polymorphic code and one heap).',
  ],
  data: levels,
});
