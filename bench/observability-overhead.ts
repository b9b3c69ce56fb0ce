// What do the call events and the observability adapters cost per call on the happy path?
//
// Unary Echo with a small message against the test server running in its own process (a fresh
// one per concurrency level), contenders in interleaved rounds at concurrency 1, 32 and 256:
//   - no adapter: the pool with nobody listening to its events (the baseline);
//   - before events: the same pool built from the commit before the call events existed
//     (BENCH_BASE_REF, default 5e070f9), to see what an unobserved call pays for them;
//   - prometheus: prometheusMetrics(pool, { registry }) on a prom-client Registry of its own;
//   - opentelemetry, and opentelemetry with metrics only: openTelemetry(pool, ...) with the SDK's MeterProvider (a reader that is
//     never collected) and BasicTracerProvider (every span sampled, a SimpleSpanProcessor whose
//     exporter drops them), the W3C propagator registered, so every attempt's metadata
//     gets a traceparent. No context manager is registered: it is a process-wide cost any
//     OpenTelemetry application pays whether or not it uses this adapter.
// Client CPU µs per call (process.cpuUsage), calls/s, medians over rounds, ratios vs no adapter.
//
// Run alone: node --expose-gc --import tsx bench/observability-overhead.ts
//   BENCH_ROUNDS (default 7), BENCH_ROUND_SEC (default 0.8), BENCH_CONCURRENCY (default 1,32,256)
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, rmSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';
import { propagation } from '@opentelemetry/api';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import { MeterProvider, MetricReader } from '@opentelemetry/sdk-metrics';
import { BasicTracerProvider, SimpleSpanProcessor, type ReadableSpan, type SpanExporter } from '@opentelemetry/sdk-trace-base';
import { Registry } from 'prom-client';
import { TestServiceClient } from '../test/helpers/protos.js';
import type { EchoRequest, EchoResponse } from '../test/helpers/protos.js';
import { startTestServerProcess } from '../test/helpers/test-server-process.js';
import { ARMED, fmt, interleavedRounds, loadPackage, progress, promiseCall, report, REPO_DIR, runLoad, type Contender, type ContenderSummary, type Target } from './lib.js';

const { ChannelPool } = await loadPackage();
const { prometheusMetrics } = (await import(new URL('../dist/prometheus.js', import.meta.url).href)) as typeof import('../src/prometheus.js');
const { openTelemetry } = (await import(new URL('../dist/opentelemetry.js', import.meta.url).href)) as typeof import('../src/opentelemetry.js');

const CONCURRENCY = (process.env.BENCH_CONCURRENCY ?? '1,32,256').split(',').map(Number);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 7);
const ROUND_SEC = Number(process.env.BENCH_ROUND_SEC ?? 0.8);
const WARMUP_SEC = 0.5;
const BASE_REF = process.env.BENCH_BASE_REF ?? '5e070f9';
/** BENCH_ONLY=none,before,prometheus,opentelemetry,opentelemetry-metrics: a subset of the contenders (the baseline always runs). */
const ONLY = process.env.BENCH_ONLY?.split(',');
const wanted = (key: string): boolean => ONLY === undefined || ONLY.includes(key);
const REQUEST: EchoRequest = { message: 'hello', delayMs: 0, payload: Buffer.alloc(0) };

const NONE = 'no adapter';
const BEFORE = `before events (${BASE_REF})`;
const PROM = 'prometheus';
const OTEL = 'opentelemetry';
const OTEL_METRICS = 'opentelemetry, metrics only';

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
const base = await loadBase();

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

function build(address: string): Built {
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
  if (base !== undefined && wanted('before')) add(BEFORE, new base.ChannelPool(ARMED) as unknown as InstanceType<typeof ChannelPool>);

  if (wanted('prometheus')) {
    const promPool = new ChannelPool(ARMED);
    const prom = prometheusMetrics(promPool, { registry: new Registry() });
    add(PROM, promPool, () => prom.dispose());
  }
  if (wanted('opentelemetry')) addOpenTelemetry(OTEL, true);
  if (wanted('opentelemetry-metrics')) addOpenTelemetry(OTEL_METRICS, false);

  function addOpenTelemetry(name: string, traces: boolean): void {
  const otelPool = new ChannelPool(ARMED);
  const meterProvider = new MeterProvider({ readers: [new IdleReader()] });
  const exporter = new DroppingExporter();
  // SimpleSpanProcessor: each span is exported as it ends, so its cost falls in its own round
  // (a BatchSpanProcessor's timer would export during the other contenders' rounds).
  const tracerProvider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
  const otel = openTelemetry(otelPool, { meterProvider, tracerProvider, traces });
  add(name, otelPool, async () => {
    otel.dispose();
    await tracerProvider.shutdown();
    await meterProvider.shutdown();
    if (traces) progress(`${name}: ${exporter.spans} spans exported (and dropped)`);
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
  callsPerRound: number;
  summaries: ContenderSummary[];
}

const startedAt = performance.now();
const levels: LevelResult[] = [];
for (const concurrency of CONCURRENCY) {
  const server = await startTestServerProcess();
  const built = build(server.address);
  try {
    await built.check();
    const warmRates: number[] = [];
    for (const c of built.contenders) warmRates.push(await rateOf(c.start, concurrency, WARMUP_SEC));
    const rate = Math.max(warmRates[0]!, await rateOf(built.contenders[0]!.start, concurrency, ROUND_SEC / 2));
    const callsPerRound = Math.max(concurrency * 4, Math.round(rate * ROUND_SEC));
    progress(`c=${concurrency}: ${callsPerRound} calls per round, ${ROUNDS} rounds per contender`);
    const summaries = await interleavedRounds({
      contenders: built.contenders,
      baseline: NONE,
      rounds: ROUNDS,
      callsPerRound,
      concurrency,
      warmupCalls: Math.min(...warmRates.map((r) => Math.ceil(r * WARMUP_SEC))),
      onRound: (round, name, f) => progress(`c=${concurrency} round ${round + 1} ${name.padEnd(24)} ${fmt.fixed(f.cpuUsPerCall)} µs/call  ${fmt.int(f.callsPerSec)} calls/s`),
    });
    levels.push({ concurrency, callsPerRound, summaries });
  } finally {
    await built.close();
    await server.kill();
  }
}

const rows: string[][] = [];
const targets: Target[] = [];
for (const level of levels) {
  const byName = new Map(level.summaries.map((s) => [s.name, s]));
  for (const s of level.summaries) {
    rows.push([
      String(level.concurrency),
      s.name,
      fmt.fixed(s.cpuUsPerCall),
      fmt.pct(s.cpuSpread),
      fmt.ratio(s.cpuRatio, 3),
      fmt.int(s.callsPerSec),
      fmt.ratio(s.rateRatio, 3),
      `${s.rounds.length}×${fmt.int(level.callsPerRound)}`,
    ]);
  }
  const before = byName.get(BEFORE);
  if (before !== undefined) {
    // The baseline is "no adapter": before/none < 1 would mean the events cost something.
    const eventsCost = 1 / before.cpuRatio;
    targets.push({ what: `c=${level.concurrency}: events with no listener (no adapter vs ${BEFORE}), CPU/call`, figure: fmt.ratio(eventsCost, 3), target: '≤ 1.01×', met: eventsCost <= 1.01 });
  }
  for (const name of [PROM, OTEL, OTEL_METRICS]) {
    const s = byName.get(name);
    if (s !== undefined) targets.push({ what: `c=${level.concurrency}: ${name} adapter CPU/call vs no adapter`, figure: fmt.ratio(s.cpuRatio, 3), target: '≤ 1.05×', met: s.cpuRatio <= 1.05 });
  }
}

report({
  name: 'observability-overhead',
  title: 'Observability overhead: client CPU per unary call with no adapter, the Prometheus adapter and the OpenTelemetry adapter',
  durationSec: (performance.now() - startedAt) / 1000,
  tables: [
    {
      title: 'observability-overhead (medians over interleaved rounds; ±: half the interquartile range; ×: vs no adapter, median of per-round ratios)',
      header: ['conc', 'contender', 'CPU µs/call', '±', '× none', 'calls/s', '× none', 'rounds×calls'],
      rows,
    },
  ],
  targets,
  notes: [
    `Every pool: new ChannelPool(${JSON.stringify(ARMED)}), the tsup build in dist/; "${BEFORE}" is the same options on the build of ${BASE_REF} (before the call events).`,
    'prometheus: its own prom-client Registry, never scraped (scraping is the scraper\'s cost, not the call\'s). opentelemetry: SDK 2.x MeterProvider with a reader that never collects, BasicTracerProvider sampling every span into a SimpleSpanProcessor whose exporter drops them, W3C propagator (a traceparent on every attempt); no context manager.',
    'CPU is the client process only (user + system, all threads, GC included); the server runs in its own process, restarted for each concurrency level.',
  ],
  data: levels,
});
