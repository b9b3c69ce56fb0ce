// What does resilient-grpc cost per call on the happy path, next to a raw grpc-js client and to
// nice-grpc with its deadline and retry middlewares?
//
// Unary Echo with a small message against the test server running in its own process (a fresh
// one per concurrency level). Contenders run side by side in interleaved rounds (A, B, C, A, B,
// C, ...), each round a fixed number of calls in a closed loop at concurrency 1, 32 and 256.
// Per contender: client CPU µs per call (process.cpuUsage, every thread of this process) and
// calls/s, medians over rounds, and ratios vs raw grpc-js (medians of per-round ratios).
//
// Run alone: node --expose-gc --import tsx bench/unary-overhead.ts [--only=raw,resilient,nice]
//   BENCH_ROUNDS (default 7), BENCH_ROUND_SEC (default 0.8), BENCH_CONCURRENCY (default 1,32,256)
// Profile: node --cpu-prof --cpu-prof-dir=.tmp/prof --import tsx bench/unary-overhead.ts > .tmp/unary.out
//   then npx tsx bench/profile-summary.ts .tmp/prof/<largest>.cpuprofile --rounds=.tmp/unary.out --contender=resilient-grpc
import * as grpc from '@grpc/grpc-js';
import { createChannel, createClientFactory } from 'nice-grpc';
import { deadlineMiddleware } from 'nice-grpc-client-middleware-deadline';
import { retryMiddleware } from 'nice-grpc-client-middleware-retry';
import { TestServiceClient, testServiceDefinition } from '../test/helpers/protos.js';
import type { EchoRequest, EchoResponse } from '../test/helpers/protos.js';
import { startTestServerProcess } from '../test/helpers/test-server-process.js';
import {
  ARMED,
  fmt,
  gc,
  interleavedRounds,
  loadStats,
  progress,
  promiseCall,
  report,
  runLoad,
  type Contender,
  type ContenderSummary,
  type StartCall,
  type Target,
  loadPackage,
} from './lib.js';

const { ChannelPool } = await loadPackage();

const CONCURRENCY = (process.env.BENCH_CONCURRENCY ?? '1,32,256').split(',').map(Number);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 7);
/** Target length of a raw grpc-js round; the others run the same number of calls. */
const ROUND_SEC = Number(process.env.BENCH_ROUND_SEC ?? 0.8);
const WARMUP_SEC = 0.5;
const DEADLINE_MS = 10_000;
const REQUEST: EchoRequest = { message: 'hello', delayMs: 0, payload: Buffer.alloc(0) };

const RAW = 'raw grpc-js';
const RESILIENT = 'resilient-grpc';
const NICE = 'nice-grpc';
const ONLY = process.argv.find((a) => a.startsWith('--only='))?.slice('--only='.length).split(',');
const wanted = (key: string): boolean => ONLY === undefined || ONLY.includes(key);

/** The raw grpc-js callback client's Echo (the loaded constructor is untyped). */
interface RawTestClient extends grpc.Client {
  Echo(
    request: EchoRequest,
    options: grpc.CallOptions,
    callback: (error: grpc.ServiceError | null, response?: EchoResponse) => void,
  ): grpc.ClientUnaryCall;
}

/** testServiceDefinition, typed for nice-grpc (the loaded one is untyped; the object is the same). */
const echoDefinition = testServiceDefinition as unknown as {
  Echo: grpc.MethodDefinition<EchoRequest, EchoResponse> & { requestStream: false; responseStream: false };
};

interface Built {
  contenders: Contender[];
  check(): Promise<void>;
  close(): Promise<void>;
}

function build(address: string): Built {
  const contenders: Contender[] = [];
  const checks: Array<() => Promise<unknown>> = [];
  const closers: Array<() => unknown> = [];

  if (wanted('raw')) {
    // (1) Raw grpc-js: the generated-style callback client, a deadline on each call.
    const raw = new TestServiceClient(address, grpc.credentials.createInsecure()) as unknown as RawTestClient;
    const start: StartCall = (done) => {
      raw.Echo(REQUEST, { deadline: Date.now() + DEADLINE_MS }, (error) => done(error === null ? undefined : error));
    };
    contenders.push({ name: RAW, start });
    checks.push(
      () =>
        new Promise((resolve, reject) =>
          raw.Echo(REQUEST, { deadline: Date.now() + DEADLINE_MS }, (e, r) => (e ? reject(e) : resolve(r))),
        ),
    );
    closers.push(() => raw.close());
  }

  if (wanted('resilient')) {
    // (2) resilient-grpc, everything armed (see ARMED in lib.ts).
    const pool = new ChannelPool(ARMED);
    const client = pool.client(TestServiceClient, address);
    const call = (): Promise<EchoResponse> => client.Echo(REQUEST) as Promise<EchoResponse>;
    contenders.push({ name: RESILIENT, start: promiseCall(call) });
    checks.push(call);
    closers.push(() => pool.close({ graceMs: 0 }));
  }

  if (wanted('nice')) {
    // (3) nice-grpc with its deadline and retry middlewares. The middleware attached last runs
    // first: the deadline wraps every attempt, as resilient-grpc's does. retryMaxAttempts counts
    // retries (nice-grpc stops once attempt index >= retryMaxAttempts): 2 means 3 attempts in
    // all, as ARMED's maxAttempts 3.
    const channel = createChannel(address);
    const client = createClientFactory().use(retryMiddleware).use(deadlineMiddleware).create(echoDefinition, channel);
    const options = { deadline: DEADLINE_MS, retry: true, retryMaxAttempts: 2 };
    const call = (): Promise<EchoResponse> => client.Echo(REQUEST, options);
    contenders.push({ name: NICE, start: promiseCall(call) });
    checks.push(call);
    closers.push(() => channel.close());
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

/** Calls per second of `start` over about `seconds`, at `concurrency`. */
async function rateOf(start: StartCall, concurrency: number, seconds: number): Promise<number> {
  let calls = Math.max(concurrency, 200);
  for (;;) {
    gc();
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
    // Warm-up: every contender for ~WARMUP_SEC (JIT, connection, buffers), then size the rounds
    // on the first contender's (the baseline's) rate.
    const warmRates: number[] = [];
    for (const c of built.contenders) warmRates.push(await rateOf(c.start, concurrency, WARMUP_SEC));
    const warmupCalls = warmRates.map((r) => Math.ceil(r * WARMUP_SEC));
    // Two looks at the baseline's rate, keeping the higher: a slow moment during calibration must
    // not make every round short. Baseline rounds then take about ROUND_SEC or more.
    const rate = Math.max(warmRates[0]!, await rateOf(built.contenders[0]!.start, concurrency, ROUND_SEC / 2));
    const callsPerRound = Math.max(concurrency * 4, Math.round(rate * ROUND_SEC));
    progress(`c=${concurrency}: ${callsPerRound} calls per round, ${ROUNDS} rounds per contender`);
    const summaries = await interleavedRounds({
      contenders: built.contenders,
      baseline: built.contenders[0]!.name,
      rounds: ROUNDS,
      callsPerRound,
      concurrency,
      warmupCalls: Math.min(...warmupCalls),
      onRound: (round, name, f) =>
        progress(`c=${concurrency} round ${round + 1} ${name.padEnd(14)} ${fmt.fixed(f.cpuUsPerCall)} µs/call  ${fmt.int(f.callsPerSec)} calls/s`),
    });
    levels.push({ concurrency, callsPerRound, summaries });
  } finally {
    await built.close();
    await server.kill();
  }
}

// Every call of this run (warm-up, calibration, rounds): for per-call figures over a whole
// profile (bench/profile-summary.ts --calls=N).
progress(`calls made through runLoad: ${loadStats.calls}`);

// ---------------------------------------------------------------------------------------------
// Report

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
      fmt.ratio(s.cpuRatio),
      fmt.int(s.callsPerSec),
      fmt.pct(s.rateSpread),
      fmt.ratio(s.rateRatio),
      `${s.rounds.length}×${fmt.int(level.callsPerRound)}`,
    ]);
  }
  const ours = byName.get(RESILIENT);
  const raw = byName.get(RAW);
  const nice = byName.get(NICE);
  if (ours !== undefined && raw !== undefined) {
    targets.push({
      what: `c=${level.concurrency}: resilient-grpc CPU/call vs raw`,
      figure: fmt.ratio(ours.cpuRatio, 3),
      target: '≤ 1.10×',
      met: ours.cpuRatio <= 1.1,
    });
    targets.push({
      what: `c=${level.concurrency}: resilient-grpc calls/s vs raw`,
      figure: fmt.ratio(ours.rateRatio, 3),
      target: '≥ 0.95×',
      met: ours.rateRatio >= 0.95,
    });
  }
  if (ours !== undefined && nice !== undefined) {
    targets.push({
      what: `c=${level.concurrency}: resilient-grpc CPU/call vs nice-grpc`,
      figure: `${fmt.fixed(ours.cpuUsPerCall)} vs ${fmt.fixed(nice.cpuUsPerCall)} µs`,
      target: 'cheaper',
      met: ours.cpuUsPerCall < nice.cpuUsPerCall,
    });
  }
}

report({
  name: 'unary-overhead',
  title: 'Unary overhead: client CPU per call and throughput (Echo, small message, server in its own process)',
  durationSec: (performance.now() - startedAt) / 1000,
  tables: [
    {
      title: 'unary-overhead (medians over interleaved rounds; ±: half the interquartile range; ×: vs raw grpc-js, median of per-round ratios)',
      header: ['conc', 'contender', 'CPU µs/call', '±', '× raw', 'calls/s', '±', '× raw', 'rounds×calls'],
      rows,
    },
  ],
  targets,
  notes: [
    'CPU is the client process only (user + system, all threads, GC included); the server runs in its own process, restarted for each concurrency level.',
    'raw grpc-js is driven through its callback API with no promise; the other two return promises (.then on each).',
    `resilient-grpc: new ChannelPool(${JSON.stringify(ARMED)}); nice-grpc: deadline ${DEADLINE_MS} ms (middleware timer), retry: true, retryMaxAttempts: 2 (3 attempts).`,
    'resilient-grpc is the tsup build in dist/ (what users run; npm run bench builds it first), loaded by the same process that runs the other contenders.',
  ],
  data: levels,
});
