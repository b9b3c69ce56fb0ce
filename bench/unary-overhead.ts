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
// Run alone: node --expose-gc --import tsx bench/unary-overhead.ts [--only=a-a,raw-nostack,raw-promise,resilient,nice]
//   BENCH_ROUNDS (default 6, per process), BENCH_ROUND_SEC (default 0.6), BENCH_PROCESSES
//   (default 3), BENCH_CONCURRENCY (default 1,32,256)
// Profile one process: node --cpu-prof --cpu-prof-dir=.tmp/prof --expose-gc --import tsx bench/unary-overhead.ts
//   --child=resilient --address=127.0.0.1:PORT --concurrency=32 > .tmp/unary.out (a test server on PORT), then
//   npx tsx bench/profile-summary.ts .tmp/prof/<file>.cpuprofile --rounds=.tmp/unary.out --contender=resilient-grpc
import { startTestServerProcess } from '../test/helpers/test-server-process.js';
import { fileURLToPath } from 'node:url';
import { CONTROL, NICE, NICE_OPTIONS_NOTE, niceEcho, RAW, RAW_NO_STACK, RAW_PROMISE, rawEcho, rawPromiseEcho, RESILIENT, resilientEcho, type EchoContender } from './contenders.js';
import { ARMED, cliArg, controlNote, fmt, loadPackage, loadStats, measurePairs, median, progress, report, runPairChild, type PairBuilt, type Paired, type Target } from './lib.js';

const { ChannelPool } = await loadPackage();

const CONCURRENCY = (process.env.BENCH_CONCURRENCY ?? '1,32,256').split(',').map(Number);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 6);
/** Target length of a raw grpc-js round; the other contender runs the same number of calls. */
const ROUND_SEC = Number(process.env.BENCH_ROUND_SEC ?? 0.6);
const PROCESSES = Number(process.env.BENCH_PROCESSES ?? 3);
const WARMUP_SEC = 0.5;

const KEYS = ['a-a', 'raw-nostack', 'raw-promise', 'resilient', 'nice'] as const;
type Key = (typeof KEYS)[number];
const ONLY = process.argv.find((a) => a.startsWith('--only='))?.slice('--only='.length).split(',');

/**
 * The baseline and one contender (bench/contenders.ts): (1) raw grpc-js, the callback client with
 * a deadline on each call, the baseline of every process and the A/A control's contender too;
 * (2) raw grpc-js making its calls with Error.stackTraceLimit 0, as resilient-grpc does (grpc-js
 * then captures no caller stack: what is left of resilient-grpc's gap to it is the pool's own
 * work); (2b) the same with each call a promise settled by its callback (a promisified client);
 * (3) resilient-grpc, everything armed (ARMED in lib.ts); (4) nice-grpc with its deadline and
 * retry middlewares.
 */
function build(address: string, key: Key): PairBuilt {
  const built: EchoContender[] = [rawEcho([address], RAW)];
  if (key === 'a-a') built.push(rawEcho([address], CONTROL));
  if (key === 'raw-nostack') built.push(rawEcho([address], RAW_NO_STACK));
  if (key === 'raw-promise') built.push(rawPromiseEcho([address]));
  if (key === 'resilient') built.push(resilientEcho(ChannelPool, [address], ARMED));
  if (key === 'nice') built.push(niceEcho([address]));
  return {
    contenders: built.map(({ name, start }) => ({ name, start })),
    async check() {
      for (const c of built) await c.check();
    },
    async close() {
      for (const c of built) await c.close();
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
    targets.push({ what: `c=${level.concurrency}: resilient-grpc CPU/call vs raw`, figure: fmt.ratio(ours.cpuRatio, 3), target: '≤ 1.05×', met: ours.cpuRatio <= 1.05 });
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
    'raw grpc-js and raw grpc-js with the caller stack off are driven through the callback API with no promise; the promisified raw client, resilient-grpc and nice-grpc return promises (.then on each).',
    `resilient-grpc: new ChannelPool(${JSON.stringify(ARMED)}); nice-grpc: ${NICE_OPTIONS_NOTE}.`,
    'resilient-grpc is the tsup build in dist/ (what users run; npm run bench builds it first).',
    `${RAW_PROMISE}: the same, each call a promise settled by its callback (a promisified client): resilient-grpc's ratio to it, both × raw grpc-js, is the pool's own work.`,
    `${RAW_NO_STACK}: raw grpc-js making each call with Error.stackTraceLimit at 0, as resilient-grpc does, so that grpc-js captures no caller stack (its new Error() per call); resilient-grpc's ratio to it is the pool's own work.`,
    controlNote(levels, CONTROL, 'raw grpc-js beside raw grpc-js'),
  ],
  data: levels,
});
