// Instructions per unary call, counted by valgrind's callgrind: a figure that, unlike CPU time,
// does not move with the machine's load, so that one change to the call path can be measured on
// a busy machine. An A/A control (raw grpc-js measured twice) shows how far it strays.
//
// Contenders (bench/contenders.ts): raw grpc-js (callback client, a deadline per call), the A/A
// control (raw grpc-js again, in a process of its own), resilient-grpc (`new ChannelPool()`, the
// pool defaults: deadline 10 s, 3 attempts, retry throttling, circuit breaker, connect watchdog,
// stall detector) and nice-grpc with its deadline and retry middlewares (as unary-overhead.ts).
// Unary Echo with a small message against the test server, which runs natively in its own
// process; each contender's client runs alone in a process under `valgrind --tool=callgrind`,
// the package being the build in dist/ as in the other benchmarks. The child is this script,
// bundled with esbuild into .tmp/instructions/child.mjs first: started through tsx, the valgrind
// process would spend most of a minute loading tsx.
//
// The difference method: after a warm-up, the child runs a window of N calls, then one of 5N (a
// closed loop at the concurrency), at each concurrency in turn, and calls process.cpuUsage() at
// each window's edges; callgrind dumps its counters each time that reaches uv_getrusage
// (--dump-before), so each window is a file of its own. Per call = (Ir(5N) - Ir(N)) / 4N: what
// a window costs besides its calls (the loop's start and end, the marker) cancels out.
//
// What is counted, and why these node flags. Each was tried on this machine with raw grpc-js at
// c=1 and windows of 200 calls one after another ("M": millions of instructions per window):
// - The JS thread only (--separate-threads=yes, thread 1). Counting every thread, TurboFan's
//   background compiles land in the windows at random: 99 M to 338 M per window after 2,000
//   calls. They are the JIT warming up, not the call's cost.
// - --single-threaded-gc: the garbage collector's work all on the counted thread (by default,
//   scavenges are shared with helper threads in a split that depends on timing).
// - --no-memory-reducer, --heap-growing-percent=1000, --min/max-semi-space-size=4: a GC schedule
//   that follows allocation only. By default, the memory reducer starts full GCs on timers (under
//   valgrind, where a call takes ~50x longer, the process looks idle to it) and the new space is
//   resized on survival rates. With V8's own --predictable-gc-schedule, a full GC came every ~800
//   calls and cost ~95 M: windows read 92-103 M, or ~190 M with one in them. Allowed to grow
//   11-fold after the full GC that ends the warm-up, the old generation needs no full GC in the
//   windows; its growth per call is reported instead. Scavenges are counted, apart ("in GC"):
//   at c=1 grpc-js promotes ~12 KB per call, so a scavenge costs ~10 M with 4 MB semi-spaces
//   (~43 M with 16 MB, the most V8 grows them to, which left the GC rate exact to ±24 K/call,
//   against ±5 K/call at 4 MB). Never cleared by a full GC, promoted garbage makes scavenges
//   dearer as a run goes on: "in GC" compares contenders; it is not a production figure.
// - After that full GC, v8.getHeapCodeStatistics() finishes its sweeping, which allocation would
//   otherwise do in the first window (~13 M). It was the window marker at first, for 10-18 M per
//   window; process.cpuUsage() costs almost nothing.
// - --interrupt-budget=8192 (V8's default 67584): functions reach TurboFan after an eighth of
//   the work. Windows read 155 M, 192 M (a full GC), 109 M, then a 92-103 M plateau from ~600
//   calls on; at the default budget, 192 M, 263 M, 169 M, ... still 98-121 M and falling after
//   3,000 calls, so the plateau is no lower, only later.
// - Rejected: --single-threaded (no background compiles at all): 244-840 M per window, and no
//   plateau in 3,000 calls. valgrind --smc-check=stack (instead of all-non-file): no faster.
// With these flags, 800 warm-up calls and windows of 250 and 1,250 calls: A/A 1.0000× at c=1 and
// 0.9997× at c=32 outside GC (1.013× and 1.012× in all: one scavenge more in the control). Three
// runs minutes apart read raw grpc-js 358.1, 358.7 and 358.2 K instructions/call at c=1, and
// resilient-grpc 381.0, 381.1 and 382.4 K. Earlier runs with windows of 300 and 1,500 calls read
// raw grpc-js 350.3, 350.8, then 354.9 K: figures from runs far apart can differ by ~1 %, as the
// load on the machine changes how the server's answers arrive (in fewer or more reads); the
// ratio to raw grpc-js in the same run is the figure to compare.
//
// Limits: work driven by the clock is inflated (a timer firing every second fires every ~100
// calls under valgrind, not every ~10,000); at concurrency > 1, how responses batch into reads
// depends on the client's speed against the server's, and so does the count (A/A at c=32: 0.983×
// in one early run, 0.997× and 1.000× since). Instructions are not time: a cache miss counts as
// one instruction. For CPU time, see unary-overhead.ts.
//
// What hedging and adaptive throttling add (issue 22: "<= 2 µs per call added at c = 256"): two
// more pools beside the plain one (resilient-grpc on defaults): `resilient-throttle` (adaptive
// throttling on, at its defaults) and `resilient-hedging` (hedging on an idempotent Echo whose
// calls never last the hedge delay: configured, armed on every call, never fired; the child
// reports the pool's hedge count, which must be 0), with `resilient-again` (the plain pool again,
// in a process of its own) as their A/A control. Their added instructions per call are read as
// µs through the plain pool's instructions per µs of CPU: the same child run natively (no
// valgrind) measures the plain pool's CPU per call by the same two windows (--native-runs, 3).
// At a concurrency c, each window has at least 4c calls (at c=256: 1,024 and 5,120), so that the
// closed loop runs at its concurrency, and each level's warm-up at least 4c calls.
//
// Run alone: npx tsx bench/instructions.ts [--only=raw,a-a,raw-nostack,resilient,resilient-again,resilient-throttle,resilient-hedging,nice]
//   [--concurrency=1,32] [--calls=250] [--warmup=800] [--parallel=2] [--native-runs=3] [--verbose] [--keep]
//   --only picks contenders (raw grpc-js, the baseline, always runs); --calls is N (the big
//   window is 5N); --parallel, the children at a time; --native-runs, the plain pool's native
//   runs (0: none, no µs); --verbose prints each valgrind command line; --keep keeps the
//   callgrind dumps (cg.out.<2j+2>-01 is the j-th window, from 0; read them with
//   callgrind_annotate --inclusive=yes).
//   Hedging and the throttle at c=1 and c=256: --only=resilient,resilient-again,resilient-throttle,resilient-hedging --concurrency=1,256
// Time, on a shared 2-core machine (load 3 to 6): everything 4 min (each child 85-145 s, two at a
//   time); `--only=resilient` (with raw grpc-js beside it) 1.5 min. With c=256 (load 3 to 11):
//   each child 3 to 10 min. At c=256 a count moves with the client's speed against the server's
//   (how responses batch into reads): children run side by side agree (A/A 0.999x), children
//   run at different times of a busy machine differed by up to 16 K instructions per call.
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir, cpus } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { getHeapCodeStatistics, getHeapSpaceStatistics } from 'node:v8';
import { CONTROL, NICE, NICE_OPTIONS_NOTE, niceEcho, RAW, RAW_NO_STACK, rawEcho, RESILIENT, resilientEcho, type EchoContender } from './contenders.js';
import { cliArg, onlyContenders, fmt, gc, childOrMain, loadPackage, median, progress, REPO_DIR, report, runLoad, type Table, type Target } from './lib.js';

const KEYS = ['raw', 'a-a', 'raw-nostack', 'resilient', 'resilient-again', 'resilient-throttle', 'resilient-hedging', 'nice'] as const;
type Key = (typeof KEYS)[number];
const NAMES: Record<Key, string> = {
  raw: RAW,
  'a-a': CONTROL,
  'raw-nostack': RAW_NO_STACK,
  resilient: RESILIENT,
  'resilient-again': `${RESILIENT} again (A/A control)`,
  'resilient-throttle': `${RESILIENT} + adaptiveThrottling`,
  'resilient-hedging': `${RESILIENT} + hedging (not triggered)`,
  nice: NICE,
};

/** The node flags of the counted process (see the header for what each does to the counts). */
export const NODE_FLAGS = [
  '--single-threaded-gc',
  '--no-memory-reducer',
  '--min-semi-space-size=4',
  '--max-semi-space-size=4',
  '--heap-growing-percent=1000',
  '--interrupt-budget=8192',
] as const;

const CHILD_MARKER = '@@instructions-child@@ ';
const BUNDLE = join(REPO_DIR, '.tmp', 'instructions', 'child.mjs');
/** Per child; far above what one takes (~4 min idle, ~10 min on a loaded machine), only so that a hung one cannot hang the run. */
const CHILD_TIMEOUT_MS = 1_800_000;

/**
 * Every contender's deadline per call, here: under valgrind at c=256 a call takes seconds, too
 * close to the 10 s of the other benchmarks. Its value costs nothing per call (grpc-js arms one
 * deadline timer per call whatever it is); the pools get it as `deadlineMs`.
 */
const DEADLINE_MS = 120_000;

/**
 * Hedging configured on Echo but never triggered: the hedge delay's floor (minDelayMs) is far
 * above any call's latency here, valgrind's included (at c=256 a call under valgrind takes
 * seconds), and the deadline leaves room for it, so that every call arms its hedge timer
 * (the delay plus the window's median fits in the time left) and clears it when it ends.
 */
export const HEDGING_NOT_TRIGGERED = {
  pool: { deadlineMs: DEADLINE_MS },
  client: { methods: { Echo: { idempotent: true, hedging: { maxExtraLoad: 0.05, minDelayMs: 60_000 } } } },
} as const;

/** One window as the child saw it: its calls, the old generation's size and the process's CPU time around it. */
interface ChildWindow {
  calls: number;
  oldBytesBefore: number;
  oldBytesAfter: number;
  /** process.cpuUsage() user CPU µs (every thread) at the window's edges (its markers): meaningful in a native run only. */
  cpuUsBefore: number;
  cpuUsAfter: number;
  wallMs: number;
}

/** What the child reports: per concurrency level, in order, its two windows (N then 5N). */
interface ChildReport {
  levels: Array<{ concurrency: number; windows: ChildWindow[] }>;
  errors: number;
  /** Hedges the pool sent over the child's whole run (resilient-grpc + hedging), else undefined. */
  hedges: number | undefined;
}

/** Calls in the small window at `concurrency`: `calls`, but at least 4 per caller, so that the loop runs at its concurrency. */
export function windowCalls(calls: number, concurrency: number): number {
  return Math.max(calls, 4 * concurrency);
}

// ---------------------------------------------------------------------------------------------
// The child: runs under valgrind.

/** The edge of a window: callgrind dumps its counters when this reaches uv_getrusage. Returns the user CPU µs so far (a native run's figure). */
function mark(): number {
  const { user } = process.cpuUsage();
  return user;
}

/** Bytes in the old generation (old space, code, large objects). */
function oldBytes(): number {
  let bytes = 0;
  for (const s of getHeapSpaceStatistics()) {
    if (s.space_name !== 'new_space' && s.space_name !== 'new_large_object_space') bytes += s.space_used_size;
  }
  return bytes;
}

async function runChild(key: Key): Promise<void> {
  const address = cliArg('address')!;
  const levels = cliArg('concurrency')!.split(',').map(Number);
  const calls = Number(cliArg('calls'));
  const warmup = Number(cliArg('warmup'));
  let built: EchoContender;
  let hedges: (() => number) | undefined;
  if (key === 'resilient' || key === 'resilient-again') {
    const { ChannelPool } = await loadPackage();
    built = resilientEcho(ChannelPool, [address], { deadlineMs: DEADLINE_MS }, NAMES[key]);
  } else if (key === 'resilient-throttle') {
    // The pool defaults plus adaptive throttling at its defaults: what a healthy call pays for it.
    const { ChannelPool } = await loadPackage();
    built = resilientEcho(ChannelPool, [address], { deadlineMs: DEADLINE_MS, adaptiveThrottling: {} }, NAMES[key]);
  } else if (key === 'resilient-hedging') {
    // The pool defaults plus hedging on an idempotent Echo whose calls end long before the hedge
    // delay: what a call pays for hedging that does not fire.
    const { ChannelPool } = await loadPackage();
    const echo = resilientEcho(ChannelPool, [address], HEDGING_NOT_TRIGGERED.pool, NAMES[key], HEDGING_NOT_TRIGGERED.client);
    hedges = () => echo.pool.stats().perChannel.reduce((sum, c) => sum + c.hedges, 0);
    built = echo;
  } else if (key === 'nice') {
    built = niceEcho([address], NAMES[key], DEADLINE_MS);
  } else {
    built = rawEcho([address], NAMES[key], {}, DEADLINE_MS);
  }
  try {
    // A first call may wait seconds for its connection under valgrind on a busy machine.
    await built.check(120_000);
    const result: ChildReport = { levels: [], errors: 0, hedges: undefined };
    for (const [i, concurrency] of levels.entries()) {
      // The whole warm-up before the first level; a quarter of it at each next level's
      // concurrency, and at least 4 calls per caller.
      const warmupCalls = Math.max(i === 0 ? warmup : Math.ceil(warmup / 4), 4 * concurrency);
      result.errors += (await runLoad(built.start, warmupCalls, concurrency)).errors;
      // Outside the windows: the warm-up's garbage, and the old generation's limit set from here.
      // The full GC leaves old-space pages to sweep, which allocation would sweep lazily in the
      // windows (~13 M); getHeapCodeStatistics() finishes the sweeping (MakeHeapIterable).
      gc();
      getHeapCodeStatistics();
      const windows: ChildWindow[] = [];
      const small = windowCalls(calls, concurrency);
      for (const n of [small, 5 * small]) {
        const oldBytesBefore = oldBytes();
        const t0 = performance.now();
        const cpuUsBefore = mark();
        const load = await runLoad(built.start, n, concurrency);
        const cpuUsAfter = mark();
        const wallMs = performance.now() - t0;
        result.errors += load.errors;
        windows.push({ calls: n, oldBytesBefore, oldBytesAfter: oldBytes(), cpuUsBefore, cpuUsAfter, wallMs });
      }
      result.levels.push({ concurrency, windows });
    }
    result.hedges = hedges?.();
    process.stdout.write(`${CHILD_MARKER}${JSON.stringify(result)}\n`);
  } finally {
    await built.close();
  }
}

// ---------------------------------------------------------------------------------------------
// The parent

/** Bundles this script into one ES module (packages stay imports), each file's import.meta.url kept. */
async function bundleChild(): Promise<void> {
  const { build } = await import('esbuild');
  await build({
    entryPoints: [fileURLToPath(import.meta.url)],
    outfile: BUNDLE,
    bundle: true,
    format: 'esm',
    platform: 'node',
    target: 'node20',
    packages: 'external',
    logLevel: 'warning',
    plugins: [
      {
        name: 'import-meta-url',
        setup(b) {
          b.onLoad({ filter: /\.ts$/ }, (args) => ({
            contents: readFileSync(args.path, 'utf8').replaceAll('import.meta.url', JSON.stringify(pathToFileURL(args.path).href)),
            loader: 'ts',
          }));
        },
      },
    ],
  });
}

/** Whether `valgrind` runs here. */
async function valgrindVersion(): Promise<string | undefined> {
  try {
    const child = spawn('valgrind', ['--version'], { stdio: ['ignore', 'pipe', 'ignore'] });
    let out = '';
    child.stdout.on('data', (c: Buffer) => (out += c.toString()));
    const [code] = (await once(child, 'exit')) as [number | null];
    return code === 0 ? out.trim() : undefined;
  } catch {
    return undefined;
  }
}

/** What one callgrind dump (one window, the JS thread) says. */
interface WindowCount {
  /** Instructions in all. */
  ir: number;
  /** Instructions in the garbage collector (calls to Heap::CollectGarbage, inclusive). */
  gcIr: number;
  scavenges: number;
  fullGcs: number;
}

/**
 * Reads one callgrind dump: its total (the `summary:` line), the inclusive cost of the calls to
 * Heap::CollectGarbage, and how many times the scavenger and the full collector ran (call counts
 * to their entry functions). A call is `cfn=(id) name` (the name only at its first mention in
 * the file), `calls=<count> <target>`, then a line ending with the call's inclusive cost.
 */
function readDump(path: string): WindowCount {
  const text = readFileSync(path, 'utf8');
  const summary = /^summary: (\d+)/m.exec(text) ?? /^totals: (\d+)/m.exec(text);
  if (summary === null) throw new Error(`${path}: no summary line`);
  const names = new Map<string, string>();
  const name = (value: string): string => {
    const m = /^(\(\d+\))?\s*(.*)$/.exec(value)!;
    if (m[1] !== undefined && m[2]) names.set(m[1], m[2]);
    return m[2] || (names.get(m[1] ?? '') ?? '');
  };
  const lines = text.split('\n');
  let cfn = '';
  const count: WindowCount = { ir: Number(summary[1]), gcIr: 0, scavenges: 0, fullGcs: 0 };
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!;
    if (line.startsWith('cfn=')) cfn = name(line.slice(4));
    else if (line.startsWith('fn=')) name(line.slice(3));
    else if (line.startsWith('calls=')) {
      const calls = Number(line.slice(6).split(' ')[0]);
      if (cfn.startsWith('v8::internal::ScavengerCollector::CollectGarbage(')) count.scavenges += calls;
      else if (cfn.startsWith('v8::internal::MarkCompactCollector::CollectGarbage(')) count.fullGcs += calls;
      else if (cfn.startsWith('v8::internal::Heap::CollectGarbage(')) count.gcIr += Number(lines[i + 1]!.trim().split(/\s+/).at(-1));
    }
  }
  return count;
}

interface Measured {
  key: Key;
  name: string;
  concurrency: number;
  /** Per window, in order (N then 5N). */
  windows: Array<WindowCount & { calls: number; oldBytesPerCall: number; wallMs: number }>;
  /** mutator + gc. */
  irPerCall: number;
  /** Outside the garbage collector, by the difference method: (Ir(5N) - Ir(N)) / 4N. */
  mutator: number;
  /** In the garbage collector: the rate over both windows (it has no fixed cost per window). */
  gc: number;
  /** (Ir(5N) - Ir(N)) / 4N, the collector included. */
  difference: number;
  /** Where the callgrind dumps were kept (--keep), or undefined (deleted). */
  dumps: string | undefined;
  wallSec: number;
  /** Hedges the pool sent over the child's run (resilient-grpc + hedging), else undefined. */
  hedges: number | undefined;
  /** A call's mean latency in the big window under valgrind, in ms (concurrency × wall / calls). */
  latencyMs: number;
}

/** Runs one contender's child under callgrind, all concurrency levels in turn, and reads its windows. */
async function measureChild(key: Key, address: string, levels: readonly number[], calls: number, warmup: number, verbose: boolean, keep: boolean): Promise<Measured[]> {
  const dir = mkdtempSync(join(tmpdir(), 'resilient-grpc-callgrind-'));
  const args = [
    '--tool=callgrind',
    '--separate-threads=yes',
    '--dump-before=uv_getrusage',
    '--dump-line=no',
    `--callgrind-out-file=${join(dir, 'cg.out')}`,
    process.execPath,
    '--expose-gc',
    ...NODE_FLAGS,
    BUNDLE,
    `--child=${key}`,
    `--address=${address}`,
    `--concurrency=${levels.join(',')}`,
    `--calls=${calls}`,
    `--warmup=${warmup}`,
  ];
  if (verbose) progress(`valgrind ${args.join(' ')}`);
  const t0 = performance.now();
  try {
    const child = spawn('valgrind', args, { cwd: REPO_DIR, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), CHILD_TIMEOUT_MS);
    const [code, signal] = (await once(child, 'close')) as [number | null, NodeJS.Signals | null];
    clearTimeout(timer);
    const line = stdout.split('\n').find((l) => l.startsWith(CHILD_MARKER));
    if (code !== 0 || line === undefined) {
      const tail = stderr.split('\n').filter((l) => !l.startsWith('==')).slice(-15).join('\n');
      throw new Error(`${key}: the child exited with ${code ?? signal} without its result\n${tail}`);
    }
    const result = JSON.parse(line.slice(CHILD_MARKER.length)) as ChildReport;
    if (result.errors > 0) throw new Error(`${key}: ${result.errors} calls failed`);
    // Dump k is what ran between the (k-1)-th and the k-th marker, so the j-th window (from 0) is
    // dump 2j + 2; thread 1 is the JS thread. More dumps would mean that something else reached
    // uv_getrusage, and the windows would not be where they are looked for.
    const windowCount = result.levels.reduce((sum, l) => sum + l.windows.length, 0);
    const parts = readdirSync(dir).filter((f) => /^cg\.out\.\d+-01$/.test(f)).length;
    if (parts !== 2 * windowCount) throw new Error(`${key}: ${parts} callgrind dumps, expected ${2 * windowCount}`);
    const wallSec = (performance.now() - t0) / 1000;
    let j = 0;
    return result.levels.map(({ concurrency, windows: seen }) => {
      const windows = seen.map((w) => ({
        ...readDump(join(dir, `cg.out.${2 * j++ + 2}-01`)),
        calls: w.calls,
        oldBytesPerCall: (w.oldBytesAfter - w.oldBytesBefore) / w.calls,
        wallMs: w.wallMs,
      }));
      const small = windows[0]!;
      const big = windows[1]!;
      const mutator = (big.ir - big.gcIr - (small.ir - small.gcIr)) / (big.calls - small.calls);
      const gcRate = (small.gcIr + big.gcIr) / (small.calls + big.calls);
      return {
        key,
        name: NAMES[key],
        concurrency,
        windows,
        irPerCall: mutator + gcRate,
        mutator,
        gc: gcRate,
        difference: (big.ir - small.ir) / (big.calls - small.calls),
        dumps: keep ? dir : undefined,
        wallSec,
        hedges: result.hedges,
        latencyMs: (concurrency * big.wallMs) / big.calls,
      };
    });
  } finally {
    if (!keep) rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * The same child run natively (no valgrind, the same node flags): the process's user CPU µs per
 * call (every thread; not the kernel's, which callgrind does not count either) at each concurrency, by the same difference of the two windows.
 * The median of `runs` processes, one after another.
 */
async function nativeCpuPerCall(key: Key, address: string, levels: readonly number[], calls: number, warmup: number, runs: number): Promise<number[][]> {
  const perRun: number[][] = [];
  for (let r = 0; r < runs; r++) {
    const child = spawn(process.execPath, ['--expose-gc', ...NODE_FLAGS, BUNDLE, `--child=${key}`, `--address=${address}`, `--concurrency=${levels.join(',')}`, `--calls=${calls}`, `--warmup=${warmup}`], {
      cwd: REPO_DIR,
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let stdout = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), CHILD_TIMEOUT_MS);
    const [code] = (await once(child, 'close')) as [number | null];
    clearTimeout(timer);
    const line = stdout.split('\n').find((l) => l.startsWith(CHILD_MARKER));
    if (code !== 0 || line === undefined) throw new Error(`${key} (native): the child exited with ${code} without its result`);
    const result = JSON.parse(line.slice(CHILD_MARKER.length)) as ChildReport;
    if (result.errors > 0) throw new Error(`${key} (native): ${result.errors} calls failed`);
    perRun.push(
      result.levels.map(({ windows: [small, big] }) => (big!.cpuUsAfter - big!.cpuUsBefore - (small!.cpuUsAfter - small!.cpuUsBefore)) / (big!.calls - small!.calls)),
    );
  }
  return levels.map((_, i) => perRun.map((run) => run[i]!));
}

/** Runs `jobs` with at most `limit` at a time; results in the order of `jobs`. */
async function pooled<T>(jobs: ReadonlyArray<() => Promise<T>>, limit: number): Promise<T[]> {
  const results: T[] = new Array<T>(jobs.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < jobs.length) {
      const i = next++;
      results[i] = await jobs[i]!();
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, jobs.length) }, worker));
  return results;
}

async function main(): Promise<void> {
  const startedAt = performance.now();
  const keys = onlyContenders(KEYS, 'raw');
  const levels = (cliArg('concurrency') ?? process.env.BENCH_CONCURRENCY ?? '1,32').split(',').map(Number);
  const calls = Number(cliArg('calls') ?? 250);
  const warmup = Number(cliArg('warmup') ?? 800);
  const parallel = Number(cliArg('parallel') ?? Math.max(1, Math.min(2, cpus().length)));
  const verbose = process.argv.includes('--verbose');
  const keep = process.argv.includes('--keep');
  const nativeRuns = Number(cliArg('native-runs') ?? 3);

  const version = await valgrindVersion();
  if (version === undefined) {
    report({
      name: 'instructions',
      title: 'Instructions per unary call (callgrind)',
      durationSec: (performance.now() - startedAt) / 1000,
      tables: [],
      targets: [],
      notes: ['valgrind was not found on this machine: nothing measured.'],
      data: null,
    });
    return;
  }
  await bundleChild();
  if (!existsSync(BUNDLE)) throw new Error(`no bundle at ${BUNDLE}`);

  const { startTestServerProcess } = await import('../test/helpers/test-server-process.js');
  const server = await startTestServerProcess();
  let measured: Measured[];
  /** Per level, the plain pool's native user CPU µs per call in each native run; undefined when not measured. */
  let nativeUs: number[][] | undefined;
  try {
    const jobs = keys.map((key) => async () => {
      const ms = await measureChild(key, server.address, levels, calls, warmup, verbose, keep);
      for (const m of ms) {
        progress(
          `c=${m.concurrency} ${m.name.padEnd(32)} ${fmt.fixed(m.mutator / 1000, 1)} K instructions/call outside GC, ${fmt.fixed(m.gc / 1000, 1)} K in GC (windows ${m.windows.map((w) => `${w.calls}: ${fmt.fixed(w.ir / 1e6, 1)} M, GC ${fmt.fixed(w.gcIr / 1e6, 1)} M`).join('; ')})`,
        );
      }
      progress(`${NAMES[key]}: ${fmt.fixed(ms[0]!.wallSec, 0)} s${ms[0]!.dumps === undefined ? '' : `; callgrind dumps in ${ms[0]!.dumps}`}`);
      return ms;
    });
    measured = (await pooled(jobs, parallel)).flat();
    // The plain pool's CPU per call, natively: the run's own instructions per µs, to read the
    // instructions that hedging and the throttle add as time.
    if (nativeRuns > 0 && keys.includes('resilient') && (keys.includes('resilient-throttle') || keys.includes('resilient-hedging'))) {
      progress(`${RESILIENT}: ${nativeRuns} native runs (no valgrind) for its user CPU µs per call`);
      nativeUs = await nativeCpuPerCall('resilient', server.address, levels, calls, warmup, nativeRuns);
      progress(`${RESILIENT} natively: ${levels.map((c, i) => `c=${c} ${nativeUs![i]!.map((u) => fmt.fixed(u)).join(' / ')} µs/call`).join(', ')}`);
    }
  } finally {
    await server.kill();
  }

  // -------------------------------------------------------------------------------------------
  // Report

  const rows: string[][] = [];
  const controls: string[] = [];
  const fullGcs: string[] = [];
  /** resilient-grpc beside raw grpc-js with the caller stack off: the pool's own work. */
  const ownWork: string[] = [];
  const targets: Target[] = [];
  const k = (n: number): string => fmt.fixed(n / 1000, 1);
  for (const concurrency of levels) {
    const level = measured.filter((m) => m.concurrency === concurrency);
    const raw = level.find((m) => m.key === 'raw')!;
    for (const m of level) {
      const calls = m.windows.reduce((sum, w) => sum + w.calls, 0);
      rows.push([
        String(concurrency),
        m.name,
        k(m.mutator),
        fmt.ratio(m.mutator / raw.mutator, 3),
        k(m.gc),
        k(m.irPerCall),
        fmt.ratio(m.irPerCall / raw.irPerCall, 3),
        m.windows.map((w) => w.scavenges).join(' / '),
        fmt.int(m.windows.reduce((sum, w) => sum + w.oldBytesPerCall * w.calls, 0) / calls),
      ]);
      if (m.windows.some((w) => w.fullGcs > 0)) fullGcs.push(`${m.name} at c=${concurrency}: a full GC ran in a window, against the flags' intent (its instructions are in "GC").`);
    }
    const noStack = level.find((m) => m.key === 'raw-nostack');
    const ours = level.find((m) => m.key === 'resilient');
    if (ours !== undefined) {
      for (const [what, ratio] of [['outside GC', ours.mutator / raw.mutator], ['in all', ours.irPerCall / raw.irPerCall]] as const) {
        targets.push({ what: `c=${concurrency}: resilient-grpc instructions/call ${what} vs raw grpc-js`, figure: fmt.ratio(ratio, 3), target: '≤ 1.05×', met: ratio <= 1.05 });
      }
    }
    if (noStack !== undefined && ours !== undefined) {
      ownWork.push(`c=${concurrency} ${fmt.ratio(ours.mutator / noStack.mutator, 3)} outside GC, ${fmt.ratio(ours.irPerCall / noStack.irPerCall, 3)} in all`);
    }
    const control = level.find((m) => m.key === 'a-a');
    if (control !== undefined) controls.push(`c=${concurrency} ${fmt.ratio(control.mutator / raw.mutator, 4)} outside GC, ${fmt.ratio(control.irPerCall / raw.irPerCall, 4)} in all`);
  }
  // What hedging (configured, not triggered) and adaptive throttling add per call to the plain
  // pool (resilient-grpc on defaults), in instructions and, through the plain pool's own
  // instructions per CPU µs (its native run), in µs.
  const addedRows: string[][] = [];
  const added: Array<{ concurrency: number; key: Key; instructions: number; instructionsInAll: number; us: number; usInAll: number }> = [];
  const hedgeNotes: string[] = [];
  for (const [i, concurrency] of levels.entries()) {
    const level = measured.filter((m) => m.concurrency === concurrency);
    const plain = level.find((m) => m.key === 'resilient');
    if (plain === undefined) continue;
    const nativeMedian = nativeUs === undefined ? Number.NaN : median(nativeUs[i]!);
    const perUs = plain.irPerCall / nativeMedian;
    for (const m of level.filter((x) => x.key === 'resilient-again' || x.key === 'resilient-throttle' || x.key === 'resilient-hedging')) {
      const a = { concurrency, key: m.key, instructions: m.mutator - plain.mutator, instructionsInAll: m.irPerCall - plain.irPerCall, us: Number.NaN, usInAll: Number.NaN };
      a.us = a.instructions / perUs;
      a.usInAll = a.instructionsInAll / perUs;
      added.push(a);
      addedRows.push([
        String(concurrency),
        m.name,
        fmt.fixed(a.instructions / 1000, 2),
        fmt.fixed(a.instructionsInAll / 1000, 2),
        fmt.ratio(m.irPerCall / plain.irPerCall, 3),
        Number.isFinite(perUs) ? `${fmt.fixed(nativeMedian)} µs (${nativeUs![i]!.map((u) => fmt.fixed(u)).join(', ')})` : '-',
        Number.isFinite(perUs) ? fmt.fixed(perUs, 0) : '-',
        Number.isFinite(a.us) ? fmt.fixed(a.us, 2) : '-',
        Number.isFinite(a.usInAll) ? fmt.fixed(a.usInAll, 2) : '-',
      ]);
      if (concurrency === 256 && Number.isFinite(a.us) && m.key !== 'resilient-again') {
        targets.push({ what: `c=256: ${m.name}, µs/call added to the plain pool (outside GC)`, figure: `${fmt.fixed(a.us, 2)} µs`, target: '≤ 2 µs', met: a.us <= 2 });
      }
      if (m.key === 'resilient-hedging') {
        hedgeNotes.push(`c=${concurrency}: ${m.hedges ?? '?'} hedges over the child's run, a call's mean latency under valgrind ${fmt.int(m.latencyMs)} ms`);
      }
    }
  }
  const hedging = measured.find((m) => m.key === 'resilient-hedging');
  if (hedging !== undefined) {
    targets.push({ what: `${hedging.name}: hedges sent (it measures hedging that does not fire)`, figure: String(hedging.hedges), target: '0', met: hedging.hedges === 0 });
  }
  const wall = keys.map((key) => `${NAMES[key]} ${fmt.int(measured.find((m) => m.key === key)!.wallSec)} s`).join(', ');
  const tables: Table[] = [
    {
      title: `instructions (callgrind, the JS thread; after ${warmup} warm-up calls, windows of N and 5N calls at each concurrency, N = ${levels.map((c) => `${windowCalls(calls, c)} at c=${c}`).join(', ')} (${calls}, at least 4 per caller); outside GC: (Ir(5N) - Ir(N)) / 4N; GC: the collector's instructions in both windows / 6N; one process per contender)`,
      header: ['conc', 'contender', 'K instr/call outside GC', '× raw', 'K instr/call in GC', 'K instr/call in all', '× raw', 'scavenges', 'old gen B/call'],
      rows,
    },
  ];
  if (addedRows.length > 0) {
    tables.push({
      title: `added per call to the plain pool (${RESILIENT}, the same run): instructions (outside GC, and in all), and as CPU µs through the plain pool's instructions per µs (its instructions in all / its native user CPU µs per call, median of ${nativeRuns} native runs of the same child, the same flags, no valgrind)`,
      header: ['conc', 'contender', 'K instr/call added outside GC', 'K instr/call added in all', '× plain pool in all', 'plain pool native user CPU/call (runs)', 'instr per µs', 'µs/call added outside GC', 'µs/call added in all'],
      rows: addedRows,
    });
  }
  report({
    name: 'instructions',
    title: 'Instructions per unary call (callgrind; Echo, small message, server in its own process)',
    durationSec: (performance.now() - startedAt) / 1000,
    tables,
    targets,
    notes: [
      ...(ownWork.length > 0 ? [`resilient-grpc × raw grpc-js with the caller stack off (the pool's own work): ${ownWork.join('; ')}.`] : []),
      ...(controls.length > 0 ? [`A/A control (raw grpc-js measured twice, in two processes): ${controls.join('; ')}: how far from 1.00× a ratio strays with nothing to measure.`] : []),
      ...fullGcs,
      ...(hedgeNotes.length > 0
        ? [
            `${NAMES['resilient-hedging']}: pool ${JSON.stringify(HEDGING_NOT_TRIGGERED.pool)}, client ${JSON.stringify(HEDGING_NOT_TRIGGERED.client)}: every call arms its hedge timer (the window's median plus the 60 s floor fits in the 120 s deadline) and clears it when it ends, records its latency and earns its share of the hedge budget; none lasts the 60 s. ${hedgeNotes.join('; ')}.`,
          ]
        : []),
      ...(added.length > 0
        ? [
            "µs added: the added instructions divided by the plain pool's instructions per µs of user CPU (its callgrind count over its native user CPU per call). That CPU counts every thread of the process (TurboFan's background compiles too, which callgrind does not count here) and the machine's contention (other jobs on the cores slow each instruction): the rate is low, so the µs are an upper estimate. On a busy machine the native CPU figure, and so the µs, move by tens of percent; the instruction counts do not.",
          ]
        : []),
      `${RAW_NO_STACK}: raw grpc-js making each call with Error.stackTraceLimit at 0, as resilient-grpc does, so that grpc-js captures no caller stack (its new Error() per call); resilient-grpc's ratio to it is the pool's own work.`,
      `${version}; the client under valgrind --tool=callgrind, node ${NODE_FLAGS.join(' ')} (see the header of bench/instructions.ts for why each); the server runs natively in its own process. Wall time of each child (both levels): ${wall}, ${parallel} at a time.`,
      'Counted: the JS thread, the garbage collector on it. "outside GC" is the call path itself, by the difference method: the figure to follow from one change to the next. "in GC" is the scavenger (calls to Heap::CollectGarbage, inclusive), a rate over both windows; it depends on the GC schedule, which the flags fix (no full GC in the windows, so promoted garbage is never cleared and scavenges get dearer as a run goes on: it compares contenders, not a figure for production). "old gen B/call": how much the old generation grew per call, what full GCs would have to clear. Not counted: TurboFan\'s compiles on their background threads.',
      `resilient-grpc: new ChannelPool({ deadlineMs: ${DEADLINE_MS} }) (pool defaults but the deadline); nice-grpc: ${NICE_OPTIONS_NOTE.replace(/deadline \d+ ms/, `deadline ${DEADLINE_MS} ms`)}; raw grpc-js: the callback client with a ${DEADLINE_MS} ms deadline per call. Every contender's deadline is ${DEADLINE_MS / 1000} s here (under valgrind at c=256 a call takes seconds); its value costs nothing per call.`,
      'Instructions are not time (a cache miss counts as one instruction); timers fire ~50x more often per call under valgrind; at c=32, how responses batch into reads depends on the client\'s speed against the server\'s. For CPU time, see unary-overhead.',
    ],
    data: { calls, warmup, nodeFlags: NODE_FLAGS, measured, nativeUs, added },
  });
}

await childOrMain<Key>(import.meta.url, runChild, main);
