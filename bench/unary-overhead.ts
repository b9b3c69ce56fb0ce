// What does resilient-grpc cost per call on the happy path, next to a raw grpc-js client and to
// nice-grpc with its deadline and retry middlewares?
//
// Unary Echo with a small message against the test server running in its own process (a fresh
// one per concurrency level), at concurrency 1, 32 and 256. Each contender runs in processes of
// its own (three by default), in interleaved rounds with a raw grpc-js client in the same
// process, each round a fixed number of calls in a closed loop; an A/A control (raw grpc-js
// beside raw grpc-js) shows how far a ratio strays with nothing to measure (see "Paired
// processes" in lib.ts for why one process per contender). Per contender: client CPU µs per
// call (process.cpuUsage, every thread of the process) and calls/s, medians over rounds, ratios
// vs raw grpc-js (medians of per-round ratios), then medians over the processes.
//
// Run alone: node --expose-gc --import tsx bench/unary-overhead.ts [--only=a-a,resilient,nice]
//   BENCH_ROUNDS (default 5, per process), BENCH_ROUND_SEC (default 0.6), BENCH_PROCESSES
//   (default 3), BENCH_CONCURRENCY (default 1,32,256)
// Profile one process: node --cpu-prof --cpu-prof-dir=.tmp/prof --expose-gc --import tsx bench/unary-overhead.ts
//   --child=resilient --address=127.0.0.1:PORT --concurrency=32 > .tmp/unary.out (a test server on PORT), then
//   npx tsx bench/profile-summary.ts .tmp/prof/<file>.cpuprofile --rounds=.tmp/unary.out --contender=resilient-grpc
import * as grpc from '@grpc/grpc-js';
import { createChannel, createClientFactory } from 'nice-grpc';
import { deadlineMiddleware } from 'nice-grpc-client-middleware-deadline';
import { retryMiddleware } from 'nice-grpc-client-middleware-retry';
import { TestServiceClient, testServiceDefinition } from '../test/helpers/protos.js';
import type { EchoRequest, EchoResponse } from '../test/helpers/protos.js';
import { startTestServerProcess } from '../test/helpers/test-server-process.js';
import { fileURLToPath } from 'node:url';
import { ARMED, cliArg, controlNote, fmt, loadPackage, loadStats, measurePairs, median, progress, promiseCall, report, runPairChild, type Contender, type PairBuilt, type Paired, type StartCall, type Target } from './lib.js';

const { ChannelPool } = await loadPackage();

const CONCURRENCY = (process.env.BENCH_CONCURRENCY ?? '1,32,256').split(',').map(Number);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 5);
/** Target length of a raw grpc-js round; the other contender runs the same number of calls. */
const ROUND_SEC = Number(process.env.BENCH_ROUND_SEC ?? 0.6);
const PROCESSES = Number(process.env.BENCH_PROCESSES ?? 3);
const WARMUP_SEC = 0.5;
const DEADLINE_MS = 10_000;
const REQUEST: EchoRequest = { message: 'hello', delayMs: 0, payload: Buffer.alloc(0) };

const RAW = 'raw grpc-js';
const CONTROL = 'raw grpc-js again (A/A control)';
const KEYS = ['a-a', 'resilient', 'nice'] as const;
type Key = (typeof KEYS)[number];
const RESILIENT = 'resilient-grpc';
const NICE = 'nice-grpc';
const ONLY = process.argv.find((a) => a.startsWith('--only='))?.slice('--only='.length).split(',');

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

function build(address: string, key: Key): PairBuilt {
  const contenders: Contender[] = [];
  const checks: Array<() => Promise<unknown>> = [];
  const closers: Array<() => unknown> = [];

  // (1) Raw grpc-js: the generated-style callback client, a deadline on each call; the baseline
  // of every process, and the A/A control's contender too.
  for (const name of key === 'a-a' ? [RAW, CONTROL] : [RAW]) {
    const raw = new TestServiceClient(address, grpc.credentials.createInsecure()) as unknown as RawTestClient;
    const start: StartCall = (done) => {
      raw.Echo(REQUEST, { deadline: Date.now() + DEADLINE_MS }, (error) => done(error === null ? undefined : error));
    };
    contenders.push({ name, start });
    checks.push(
      () =>
        new Promise((resolve, reject) =>
          raw.Echo(REQUEST, { deadline: Date.now() + DEADLINE_MS }, (e, r) => (e ? reject(e) : resolve(r))),
        ),
    );
    closers.push(() => raw.close());
  }

  if (key === 'resilient') {
    // (2) resilient-grpc, everything armed (see ARMED in lib.ts).
    const pool = new ChannelPool(ARMED);
    const client = pool.client(TestServiceClient, address);
    const call = (): Promise<EchoResponse> => client.Echo(REQUEST) as Promise<EchoResponse>;
    contenders.push({ name: RESILIENT, start: promiseCall(call) });
    checks.push(call);
    closers.push(() => pool.close({ graceMs: 0 }));
  }

  if (key === 'nice') {
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

interface LevelResult {
  concurrency: number;
  measured: Paired[];
}

const childKey = cliArg('child') as Key | undefined;
if (childKey !== undefined) {
  await runPairChild(build(cliArg('address')!, childKey), { concurrency: Number(cliArg('concurrency')), rounds: ROUNDS, roundSec: ROUND_SEC, warmupSec: WARMUP_SEC, label: childKey });
  // Every call of this process (warm-up, calibration, rounds): for per-call figures over a whole
  // profile (bench/profile-summary.ts --calls=N).
  progress(`calls made through runLoad: ${loadStats.calls}`);
  process.exit(0);
}

const startedAt = performance.now();
const levels: LevelResult[] = [];
const keys = KEYS.filter((k) => ONLY === undefined || ONLY.includes(k));
for (const concurrency of CONCURRENCY) {
  const server = await startTestServerProcess();
  try {
    const measured = await measurePairs(fileURLToPath(import.meta.url), keys, PROCESSES, (key) => [`--child=${key}`, `--address=${server.address}`, `--concurrency=${concurrency}`]);
    levels.push({ concurrency, measured });
  } finally {
    await server.kill();
  }
}

// ---------------------------------------------------------------------------------------------
// Report

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
      fmt.int(m.callsPerSec),
      fmt.ratio(m.rateRatio, 3),
      `${m.runs.length}×${m.runs[0]!.contender.rounds.length}×${fmt.int(median(m.runs.map((r) => r.callsPerRound)))}`,
    ]);
  }
  const ours = byName.get(RESILIENT);
  const nice = byName.get(NICE);
  if (ours !== undefined) {
    targets.push({ what: `c=${level.concurrency}: resilient-grpc CPU/call vs raw`, figure: fmt.ratio(ours.cpuRatio, 3), target: '≤ 1.10×', met: ours.cpuRatio <= 1.1 });
    targets.push({ what: `c=${level.concurrency}: resilient-grpc calls/s vs raw`, figure: fmt.ratio(ours.rateRatio, 3), target: '≥ 0.95×', met: ours.rateRatio >= 0.95 });
  }
  if (ours !== undefined && nice !== undefined) {
    // From different processes: compared as ratios to the raw client each ran beside.
    targets.push({
      what: `c=${level.concurrency}: resilient-grpc CPU/call vs nice-grpc (each × its own raw grpc-js)`,
      figure: `${fmt.ratio(ours.cpuRatio, 3)} vs ${fmt.ratio(nice.cpuRatio, 3)}`,
      target: 'cheaper',
      met: ours.cpuRatio < nice.cpuRatio,
    });
  }
}

report({
  name: 'unary-overhead',
  title: 'Unary overhead: client CPU per call and throughput (Echo, small message, server in its own process)',
  durationSec: (performance.now() - startedAt) / 1000,
  tables: [
    {
      title: 'unary-overhead (each contender in processes of its own, in interleaved rounds with raw grpc-js; per process, medians of rounds and of per-round ratios; shown, the median over processes and the lowest–highest process ratio)',
      header: ['conc', 'contender', 'CPU µs/call', 'raw grpc-js µs/call', '× raw', '× raw, by process', 'calls/s', 'calls/s × raw', 'processes×rounds×calls'],
      rows,
    },
  ],
  targets,
  notes: [
    'CPU is the client process only (user + system, all threads, GC included); the server runs in its own process, restarted for each concurrency level.',
    'raw grpc-js is driven through its callback API with no promise; the other two return promises (.then on each).',
    `resilient-grpc: new ChannelPool(${JSON.stringify(ARMED)}); nice-grpc: deadline ${DEADLINE_MS} ms (middleware timer), retry: true, retryMaxAttempts: 2 (3 attempts).`,
    'resilient-grpc is the tsup build in dist/ (what users run; npm run bench builds it first).',
    controlNote(levels, CONTROL, 'raw grpc-js beside raw grpc-js'),
  ],
  data: levels,
});
