// Shared helpers of the benchmarks: statistics, the interleaved-rounds driver, client CPU per
// call, heap figures, table formatting, and the marked JSON line each benchmark prints so that
// bench/run.ts can collect its results.
//
// Each benchmark is a script run in its own process (`node --expose-gc --import tsx bench/x.ts`):
// progress goes to stderr, its table(s) and one `@@bench-result@@ {json}` line to stdout.
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { createServer } from 'node:net';
import { realpathSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import type { ChannelPoolOptions } from '../src/index.js';

// ---------------------------------------------------------------------------------------------
// The contender configuration: ONE place, shared by every benchmark that builds a pool.

/**
 * resilient-grpc with everything armed: a pool deadline, the retry policy (3 attempts in all;
 * per-channel retry throttling is on by default) and the circuit breaker (its defaults: one per
 * channel, opens at 50% failures over >= 20 calls in a 10 s window). The connect watchdog
 * (connectTimeoutMs, default 20 s) is on by default too.
 */
export const ARMED = {
  deadlineMs: 10_000,
  retry: { maxAttempts: 3 },
  // breaker: added when the breaker landed (commit 03bffec); {} = on, with its defaults.
  breaker: {},
} as const satisfies ChannelPoolOptions;

// ---------------------------------------------------------------------------------------------
// Statistics

export function median(values: readonly number[]): number {
  return percentile(values, 50);
}

/** Linear interpolation between closest ranks; `p` in [0, 100]. NaN for an empty list. */
export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = (p / 100) * (sorted.length - 1);
  const lo = Math.floor(rank);
  const hi = Math.ceil(rank);
  const a = sorted[lo]!;
  const b = sorted[hi]!;
  return a + (b - a) * (rank - lo);
}

// ---------------------------------------------------------------------------------------------
// Load driver

/** Starts one call; `done` must be called exactly once, with the error if it failed. */
export type StartCall = (done: (error?: unknown) => void) => void;

/** Adapts a promise-returning call to the driver (`.then(ok, fail)`, no extra closures per call). */
export function promiseCall(call: () => Promise<unknown>): StartCall {
  return (done) => {
    call().then(
      () => done(),
      (error: unknown) => done(error ?? new Error('rejected')),
    );
  };
}

export interface LoadResult {
  calls: number;
  errors: number;
  firstError: unknown;
}

/** Calls started by runLoad in this process (counted per load, not per call). */
export const loadStats = { calls: 0 };

/**
 * Runs exactly `total` calls with at most `concurrency` in flight (a closed loop: each completion
 * starts the next call). Callback-driven, so the driver adds no promise per call of its own.
 */
export function runLoad(start: StartCall, total: number, concurrency: number): Promise<LoadResult> {
  loadStats.calls += total;
  return new Promise((resolve) => {
    let started = 0;
    let finished = 0;
    let errors = 0;
    let firstError: unknown;
    const onDone = (error?: unknown): void => {
      finished++;
      if (error !== undefined) {
        errors++;
        firstError ??= error;
      }
      if (started < total) {
        started++;
        start(onDone);
      } else if (finished === total) {
        resolve({ calls: total, errors, firstError });
      }
    };
    if (total === 0) {
      resolve({ calls: 0, errors: 0, firstError: undefined });
      return;
    }
    const initial = Math.min(concurrency, total);
    for (let i = 0; i < initial; i++) {
      started++;
      start(onDone);
    }
  });
}

// ---------------------------------------------------------------------------------------------
// CPU

/** Process CPU time (user + system, every thread of this process) in µs. */
export function cpuMicros(): number {
  const { user, system } = process.cpuUsage();
  return user + system;
}

/** Client CPU µs per call for a measured stretch. */
export function cpuPerCall(cpuUs: number, calls: number): number {
  return calls === 0 ? Number.NaN : cpuUs / calls;
}

// ---------------------------------------------------------------------------------------------
// Interleaved rounds

export interface Contender {
  name: string;
  start: StartCall;
}

export interface RoundFigures {
  cpuUsPerCall: number;
  callsPerSec: number;
  wallMs: number;
  calls: number;
  /** The round's span on the monotonic clock V8's CPU profiles use (process.hrtime, µs). */
  fromUs: number;
  toUs: number;
}

/** process.hrtime in µs: the clock of `node --cpu-prof` sample timestamps. */
export function monotonicUs(): number {
  return Number(process.hrtime.bigint() / 1000n);
}

export interface ContenderSummary {
  name: string;
  rounds: RoundFigures[];
  /** Medians over rounds. */
  cpuUsPerCall: number;
  callsPerSec: number;
  /**
   * Ratios vs the baseline: the median over rounds of (this round / the baseline's round of the
   * same cycle). Pairing rounds run seconds apart cancels most of the machine's drift.
   */
  cpuRatio: number;
  rateRatio: number;
  /** Spread of the per-round figures, as (p75 - p25) / median. */
  cpuSpread: number;
  rateSpread: number;
}

export interface InterleaveOptions {
  contenders: readonly Contender[];
  /** Name of the contender ratios are computed against. */
  baseline: string;
  rounds: number;
  callsPerRound: number;
  concurrency: number;
  /** Calls run by each contender (interleaved too) before any measurement. */
  warmupCalls: number;
  /** Called after each round, e.g. for progress output. */
  onRound?: (round: number, contender: string, figures: RoundFigures) => void;
}

/** Fails the benchmark: a contender whose calls fail is not measuring what it claims to. */
function checkLoad(name: string, result: LoadResult): void {
  if (result.errors > 0) {
    const reason = result.firstError instanceof Error ? result.firstError.message : String(result.firstError);
    throw new Error(`${name}: ${result.errors}/${result.calls} calls failed (first: ${reason})`);
  }
}

let forceGc: (() => void) | undefined;

/**
 * A full GC. Uses `global.gc` (node --expose-gc); without that flag (e.g. a plain
 * `node --cpu-prof --import tsx bench/x.ts`), turns the flag on at run time and takes `gc` from
 * a fresh context.
 */
export function gc(): void {
  if (forceGc === undefined) {
    if (globalThis.gc !== undefined) {
      const exposed = globalThis.gc;
      forceGc = () => void exposed();
    } else {
      setFlagsFromString('--expose-gc');
      forceGc = runInNewContext('gc') as () => void;
    }
  }
  forceGc();
}

/**
 * Runs the contenders A, B, C, then C, B, A, then A, B, C, ... for `rounds` cycles, each round a
 * fixed number of calls, and records per-round client CPU per call and throughput. The order
 * turns round every cycle because the place in a cycle weighs: raw grpc-js beside itself read
 * 0.93-0.96x in second place and 1.03x in first at c=1 (medians of three processes, 2026-12-07),
 * and the A/A control of one full run 0.86x / 0.93x / 0.97x at c=1 / 32 / 256 with the baseline
 * always first; each contender's ratio pairs rounds in which it ran once before its baseline and
 * once after (an even `rounds` balances them exactly). A full GC runs before every
 * round (outside the measurement), so no round pays for garbage another contender left behind.
 * It runs with no call in flight, as V8's memory reducer's GCs do in an idle process, and it
 * costs the round after it more than its own pause: optimized code that depended on the hidden
 * class of an object of which no instance was left alive is thrown away, and the compiler makes
 * it again (background threads, counted: CPU is every thread's) while the round runs. Raw
 * grpc-js re-optimized 80-122 functions per round of 2,500 calls at c=32 (`node --trace-opt`),
 * the pool 126-170 until each channel kept its last call while idle (src/channel/in-flight.ts),
 * 56-92 since; that moved the pool's ratio from 1.18x to about 1.0x at c=32.
 */
export async function interleavedRounds(options: InterleaveOptions): Promise<ContenderSummary[]> {
  const { contenders, rounds, callsPerRound, concurrency, warmupCalls } = options;
  for (const contender of contenders) {
    checkLoad(contender.name, await runLoad(contender.start, warmupCalls, concurrency));
  }
  const figures = new Map<string, RoundFigures[]>(contenders.map((c) => [c.name, []]));
  const reversed = [...contenders].reverse();
  for (let round = 0; round < rounds; round++) {
    for (const contender of round % 2 === 0 ? contenders : reversed) {
      gc();
      const fromUs = monotonicUs();
      const cpu0 = cpuMicros();
      const t0 = performance.now();
      const result = await runLoad(contender.start, callsPerRound, concurrency);
      const wallMs = performance.now() - t0;
      const cpuUs = cpuMicros() - cpu0;
      const toUs = monotonicUs();
      checkLoad(contender.name, result);
      const f: RoundFigures = {
        cpuUsPerCall: cpuPerCall(cpuUs, callsPerRound),
        callsPerSec: (callsPerRound * 1000) / wallMs,
        wallMs,
        calls: callsPerRound,
        fromUs,
        toUs,
      };
      figures.get(contender.name)!.push(f);
      options.onRound?.(round, contender.name, f);
    }
  }
  const base = figures.get(options.baseline);
  if (base === undefined) throw new Error(`unknown baseline ${options.baseline}`);
  return contenders.map((c) => {
    const rs = figures.get(c.name)!;
    const cpu = rs.map((r) => r.cpuUsPerCall);
    const rate = rs.map((r) => r.callsPerSec);
    return {
      name: c.name,
      rounds: rs,
      cpuUsPerCall: median(cpu),
      callsPerSec: median(rate),
      cpuRatio: median(rs.map((r, i) => r.cpuUsPerCall / base[i]!.cpuUsPerCall)),
      rateRatio: median(rs.map((r, i) => r.callsPerSec / base[i]!.callsPerSec)),
      cpuSpread: spread(cpu),
      rateSpread: spread(rate),
    };
  });
}

function spread(values: readonly number[]): number {
  return (percentile(values, 75) - percentile(values, 25)) / median(values);
}

// ---------------------------------------------------------------------------------------------
// Memory

export interface MemoryFigures {
  heapMb: number;
  rssMb: number;
  heapBytes: number;
}

/** Heap used and RSS after a full GC (two passes, so weak references and finalizers settle). */
export function memoryAfterGc(): MemoryFigures {
  gc();
  gc();
  const { heapUsed, rss } = process.memoryUsage();
  return { heapMb: heapUsed / 2 ** 20, rssMb: rss / 2 ** 20, heapBytes: heapUsed };
}

// ---------------------------------------------------------------------------------------------
// Network

/** A TCP port on 127.0.0.1 that nothing listens on (bound by the OS, then released). */
export async function unusedPort(): Promise<number> {
  const server = createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const address = server.address();
  server.close();
  await once(server, 'close');
  if (address === null || typeof address === 'string') throw new Error('no port');
  return address.port;
}

/** Whether nothing listens on 127.0.0.1:port right now (we could bind it). */
export async function portIsFree(port: number): Promise<boolean> {
  const server = createServer();
  try {
    server.listen(port, '127.0.0.1');
    await Promise.race([once(server, 'listening'), once(server, 'error').then(([e]) => Promise.reject(e as Error))]);
  } catch {
    return false;
  }
  server.close();
  await once(server, 'close');
  return true;
}

// ---------------------------------------------------------------------------------------------
// Results

export interface Table {
  title: string;
  header: string[];
  /** Cells already formatted; numbers are right-aligned, the first column left-aligned. */
  rows: string[][];
}

export interface Target {
  /** What is measured, e.g. "c=32 resilient-grpc CPU/call vs raw". */
  what: string;
  /** The figure, formatted. */
  figure: string;
  /** The target, formatted, e.g. "≤ 1.10×". */
  target: string;
  met: boolean;
}

export interface BenchResult {
  name: string;
  title: string;
  /** How long the benchmark took, in s. */
  durationSec: number;
  tables: Table[];
  targets: Target[];
  /** Anything a reader needs to read the figures right (what was skipped, and why). */
  notes: string[];
  /** Raw figures, for anyone who wants to post-process them. */
  data: unknown;
}

export const RESULT_MARKER = '@@bench-result@@ ';

/** A column is right-aligned when every non-empty cell in it reads as a figure. */
export function isNumericColumn(rows: readonly (readonly string[])[], column: number): boolean {
  const cells = rows.map((r) => r[column] ?? '').filter((c) => c !== '' && c !== '-');
  return cells.length > 0 && cells.every((c) => /^[-+±≤≥<>]?\s?[\d.,]/.test(c));
}

export function formatTable(table: Table): string {
  const widths = table.header.map((h, i) => Math.max(h.length, ...table.rows.map((r) => (r[i] ?? '').length)));
  const right = table.header.map((_, i) => isNumericColumn(table.rows, i));
  const line = (cells: readonly string[]): string =>
    cells.map((c, i) => (right[i] ? c.padStart(widths[i]!) : c.padEnd(widths[i]!))).join('  ').trimEnd();
  return [table.title, line(table.header), widths.map((w) => '-'.repeat(w)).join('  '), ...table.rows.map(line)].join('\n');
}

export function formatTargets(targets: readonly Target[]): string {
  if (targets.length === 0) return '';
  return formatTable({
    title: 'targets',
    header: ['what', 'figure', 'target', 'result'],
    rows: targets.map((t) => [t.what, t.figure, t.target, t.met ? 'met' : 'MISSED']),
  });
}

/** Prints the tables, targets and notes for a human, then the marked JSON line for run.ts. */
export function report(result: BenchResult): void {
  const out: string[] = [];
  for (const table of result.tables) out.push(formatTable(table), '');
  if (result.targets.length > 0) out.push(formatTargets(result.targets), '');
  for (const note of result.notes) out.push(`note: ${note}`);
  process.stdout.write(`${out.join('\n')}\n${RESULT_MARKER}${JSON.stringify(result)}\n`);
}

/** Progress for a human watching; stderr, so stdout carries only results. */
export function progress(message: string): void {
  process.stderr.write(`  ${message}\n`);
}

export const fmt = {
  int: (n: number): string => (Number.isFinite(n) ? Math.round(n).toLocaleString('en-US') : '-'),
  fixed: (n: number, digits = 1): string => (Number.isFinite(n) ? n.toFixed(digits) : '-'),
  ratio: (n: number, digits = 2): string => (Number.isFinite(n) ? `${n.toFixed(digits)}×` : '-'),
  pct: (n: number): string => (Number.isFinite(n) ? `±${(n * 50).toFixed(0)}%` : '-'),
};

// ---------------------------------------------------------------------------------------------
// Child processes

export const BENCH_DIR = fileURLToPath(new URL('.', import.meta.url));
export const REPO_DIR = fileURLToPath(new URL('..', import.meta.url));

export interface ChildRun {
  code: number | null;
  signal: NodeJS.Signals | null;
  /** Every stdout line. */
  lines: string[];
  /** When the child exited: performance.timeOrigin + performance.now(), epoch ms. */
  exitedAt: number;
  timedOut: boolean;
}

/** Whether the module at `moduleUrl` is the script node was started with (not an import). */
export function isMain(moduleUrl: string): boolean {
  const script = process.argv[1];
  if (script === undefined) return false;
  try {
    return realpathSync(script) === realpathSync(fileURLToPath(moduleUrl));
  } catch {
    return false;
  }
}

/**
 * The entry of a bench script that runs its contenders in children of itself: started with
 * `--child=KEY` (by its own `main`), runs that child and exits; started directly, runs `main`;
 * imported for its exports, does nothing.
 */
export async function childOrMain<K extends string>(moduleUrl: string, runChild: (key: K) => Promise<void>, main: () => Promise<void>): Promise<void> {
  const childKey = cliArg('child') as K | undefined;
  if (childKey !== undefined) {
    await runChild(childKey);
    process.exit(0);
  } else if (isMain(moduleUrl)) {
    await main();
  }
}

/** Epoch ms with sub-ms resolution, comparable between processes. */
export function epochMs(): number {
  return performance.timeOrigin + performance.now();
}

/**
 * Runs `node --expose-gc --import tsx <script> ...args` from the repository root; stderr is
 * passed through, stdout collected line by line (and each line handed to `onLine`). Killed with
 * SIGKILL after `timeoutMs`.
 */
export async function runNodeChild(
  script: string,
  args: readonly string[],
  options: { timeoutMs: number; nodeFlags?: readonly string[]; onLine?: (line: string) => void },
): Promise<ChildRun> {
  const child = spawn(process.execPath, ['--expose-gc', ...(options.nodeFlags ?? []), '--import', 'tsx', script, ...args], {
    cwd: REPO_DIR,
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const lines: string[] = [];
  let buffered = '';
  child.stdout.setEncoding('utf8');
  child.stdout.on('data', (chunk: string) => {
    buffered += chunk;
    let nl: number;
    while ((nl = buffered.indexOf('\n')) >= 0) {
      const line = buffered.slice(0, nl);
      buffered = buffered.slice(nl + 1);
      lines.push(line);
      options.onLine?.(line);
    }
  });
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    child.kill('SIGKILL');
  }, options.timeoutMs);
  const [code, signal] = (await once(child, 'exit')) as [number | null, NodeJS.Signals | null];
  const exitedAt = epochMs();
  clearTimeout(timer);
  if (!child.stdout.readableEnded) await once(child.stdout, 'end').catch(() => undefined);
  if (buffered.length > 0) {
    lines.push(buffered);
    options.onLine?.(buffered);
  }
  return { code, signal, lines, exitedAt, timedOut };
}

/** The JSON of the first line starting with `marker`, or undefined. */
export function markedJson<T>(lines: readonly string[], marker: string): T | undefined {
  const line = lines.find((l) => l.startsWith(marker));
  return line === undefined ? undefined : (JSON.parse(line.slice(marker.length)) as T);
}

/**
 * The package as users run it: the tsup build in dist/ (`npm run bench` builds it first), not
 * src/ through tsx, whose transform adds work per call. Typed from src/, which it is built from.
 */
export async function loadPackage(): Promise<typeof import('../src/index.js')> {
  const built = new URL('../dist/index.js', import.meta.url).href;
  try {
    return (await import(built)) as typeof import('../src/index.js');
  } catch (error) {
    throw new Error(`bench: cannot load the built package at ${built}; run npm run build first`, { cause: error });
  }
}

// ---------------------------------------------------------------------------------------------
// Paired processes: one contender per process, in interleaved rounds with a baseline of its own.
//
// Two identical pools in one process measured up to 15 % apart (A/A), the first one made being
// the slower, and more rounds did not close the gap: a process's own luck (its sockets, its
// heap, which contender's code the JIT saw first) weighs on a whole run. So each contender runs
// in processes of its own beside its own baseline, several processes per contender, and a
// ratio is the median over the processes.

/** What a paired child builds: the baseline first, then the one contender. */
export interface PairBuilt {
  contenders: Contender[];
  check(): Promise<void>;
  close(): Promise<void>;
}

/** One child process's result: the baseline and one contender, interleaved. */
export interface PairResult {
  callsPerRound: number;
  baseline: ContenderSummary;
  contender: ContenderSummary;
}

/** One contender at one concurrency, over its processes. */
export interface Paired {
  key: string;
  name: string;
  runs: PairResult[];
  /** Medians over the processes of each process's medians and ratios. */
  cpuUsPerCall: number;
  baselineCpuUsPerCall: number;
  callsPerSec: number;
  cpuRatio: number;
  rateRatio: number;
  /** The lowest and highest process's CPU ratio. */
  cpuRatioMin: number;
  cpuRatioMax: number;
}

export const PAIR_MARKER = '@@pair@@ ';

/** The number in environment variable `name` (> 0 and finite, else a RangeError naming it), or `fallback` when unset or empty. */
export function positiveEnv(name: string, fallback: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!(value > 0 && Number.isFinite(value))) throw new RangeError(`${name} must be a positive number, got ${raw}`);
  return value;
}

/** The value of `--name=value` on this process's command line. */
export function cliArg(name: string): string | undefined {
  return process.argv.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3);
}

/**
 * The contenders `--only=a,b` asks for, in `known`'s order, with `baseline` always among them (the
 * others' ratios are read against it); all of them without `--only`. An unknown name throws.
 */
export function onlyContenders<K extends string>(known: readonly K[], baseline: K): K[] {
  const only = cliArg('only')?.split(',');
  const unknown = only?.filter((k) => !(known as readonly string[]).includes(k)) ?? [];
  if (unknown.length > 0) throw new Error(`unknown contender(s): ${unknown.join(', ')} (known: ${known.join(', ')})`);
  return known.filter((k) => k === baseline || only === undefined || only.includes(k));
}

/** A note giving each level's A/A control ratio (the row named `control`): the run's noise floor. */
export function controlNote(levels: ReadonlyArray<{ concurrency: number; measured: readonly Paired[] }>, control: string, what: string): string {
  const figures = levels.map((l) => {
    const c = l.measured.find((m) => m.name === control);
    return c === undefined ? `c=${l.concurrency} not run` : `c=${l.concurrency} ${fmt.ratio(c.cpuRatio, 3)} (processes ${fmt.ratio(c.cpuRatioMin, 2)}–${fmt.ratio(c.cpuRatioMax, 2)})`;
  });
  return `A/A control (${what}): ${figures.join(', ')}: how far from 1.00× a ratio strays with nothing to measure, on this machine in this run.`;
}

/** Calls per second of `start` over about `seconds`, at `concurrency`. */
export async function rateOf(start: StartCall, concurrency: number, seconds: number): Promise<number> {
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

/**
 * The child's side: warms both contenders up, sizes the rounds on the baseline's rate (the
 * higher of two looks, so that a slow moment does not make every round short), runs the
 * interleaved rounds and prints the result for `measurePairs`.
 */
export async function runPairChild(built: PairBuilt, options: { concurrency: number; rounds: number; roundSec: number; warmupSec: number; label: string }): Promise<void> {
  const { concurrency, rounds, roundSec, warmupSec, label } = options;
  try {
    await built.check();
    if (built.contenders.length !== 2) throw new Error(`${label}: ${built.contenders.length} contenders built, expected the baseline and one`);
    const warmRates: number[] = [];
    for (const c of built.contenders) warmRates.push(await rateOf(c.start, concurrency, warmupSec));
    const rate = Math.max(warmRates[0]!, await rateOf(built.contenders[0]!.start, concurrency, roundSec / 2));
    const callsPerRound = Math.max(concurrency * 4, Math.round(rate * roundSec));
    progress(`c=${concurrency} ${label}: ${callsPerRound} calls per round, ${rounds} rounds per contender`);
    const summaries = await interleavedRounds({
      contenders: built.contenders,
      baseline: built.contenders[0]!.name,
      rounds,
      callsPerRound,
      concurrency,
      warmupCalls: Math.min(...warmRates.map((r) => Math.ceil(r * warmupSec))),
      onRound: (round, name, f) => progress(`c=${concurrency} round ${round + 1} ${name.padEnd(32)} ${fmt.fixed(f.cpuUsPerCall)} µs/call  ${fmt.int(f.callsPerSec)} calls/s`),
    });
    const result: PairResult = { callsPerRound, baseline: summaries[0]!, contender: summaries[1]! };
    process.stdout.write(`${PAIR_MARKER}${JSON.stringify(result)}\n`);
  } finally {
    await built.close();
  }
}

/**
 * The parent's side: runs `processes` children per key (`node <script> ...args(key)`), the
 * first process of every key, then the second of every key..., so drift over the run falls on
 * all of them alike; returns one `Paired` per key.
 */
export async function measurePairs(script: string, keys: readonly string[], processes: number, args: (key: string) => string[]): Promise<Paired[]> {
  const runs = new Map<string, PairResult[]>(keys.map((k) => [k, []]));
  for (let p = 0; p < processes; p++) {
    for (const key of keys) {
      const run = await runNodeChild(script, args(key), { timeoutMs: 180_000 });
      const result = markedJson<PairResult>(run.lines, PAIR_MARKER);
      if (run.code !== 0 || result === undefined) throw new Error(`${key}: the child exited with ${run.code ?? run.signal}${run.timedOut ? ' (timed out)' : ''}`);
      runs.get(key)!.push(result);
    }
  }
  return keys.map((key) => {
    const rs = runs.get(key)!;
    const ratios = rs.map((r) => r.contender.cpuRatio);
    return {
      key,
      name: rs[0]!.contender.name,
      runs: rs,
      cpuUsPerCall: median(rs.map((r) => r.contender.cpuUsPerCall)),
      baselineCpuUsPerCall: median(rs.map((r) => r.baseline.cpuUsPerCall)),
      callsPerSec: median(rs.map((r) => r.contender.callsPerSec)),
      cpuRatio: median(ratios),
      rateRatio: median(rs.map((r) => r.contender.rateRatio)),
      cpuRatioMin: Math.min(...ratios),
      cpuRatioMax: Math.max(...ratios),
    };
  });
}
