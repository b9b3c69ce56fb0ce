// Where a unary call's client CPU goes, split: syscalls per call (all, writev, read, futex),
// context switches, the task clock of the JS thread and of the other threads (GC helpers, libuv,
// compiler), user and system CPU, and the scavenges with the bytes they promoted. Syscall and GC
// counts do not move much with the load on the machine; the clocks do (read them side by side).
//
// Per contender (bench/contenders.ts) a process of its own against the test server (in its own
// process); after a warm-up, a window of calls with `perf stat -p` attached for the window only
// (Linux perf with the raw_syscalls and syscalls tracepoints; without it, the perf columns read
// "-"), `process.resourceUsage()` around the window, and `--trace-gc-nvp` for what each scavenge
// promoted. It answered, on 2026-12-07 at c=32, that the pool makes the same syscalls per call as
// raw grpc-js (one writev per 32 calls: its grpc-js calls start in the same tick) with the same
// system time, and that the gap was on the JS thread and the GC helper threads (see
// gc-survival.ts for why the scavenger had more to copy).
//
// Run alone: node --expose-gc --import tsx bench/cpu-split.ts [--only=raw-nostack,resilient]
//   [--concurrency=32] [--calls=20000] [--warmup=20000] [--repeat=1]
// Time: ~30 s per contender and level on the shared 2-core machine.
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { RAW, RAW_NO_STACK, rawEcho, RESILIENT, resilientEcho, type EchoContender } from './contenders.js';
import { cliArg, onlyContenders, fmt, gc, childOrMain, loadPackage, progress, report, runLoad } from './lib.js';

const KEYS = ['raw', 'raw-nostack', 'resilient'] as const;
type Key = (typeof KEYS)[number];
const NAMES: Record<Key, string> = { raw: RAW, 'raw-nostack': RAW_NO_STACK, resilient: RESILIENT };
const MARK = '@@cpu-split@@ ';
const EVENTS = ['raw_syscalls:sys_enter', 'syscalls:sys_enter_writev', 'syscalls:sys_enter_read', 'syscalls:sys_enter_futex', 'context-switches', 'task-clock'];

interface ChildFigures {
  userUs: number;
  systemUs: number;
  errors: number;
}

interface Measured extends ChildFigures {
  key: Key;
  concurrency: number;
  calls: number;
  /** Per call, by perf event (task-clock in µs per call), or undefined without perf. */
  perf: Record<string, number> | undefined;
  /** task-clock µs per call of the JS thread and of the others. */
  jsThreadUs: number | undefined;
  otherThreadsUs: number | undefined;
  scavenges: number;
  promotedPerCall: number;
}

async function runChild(key: Key): Promise<void> {
  const address = cliArg('address')!;
  const concurrency = Number(cliArg('concurrency'));
  const calls = Number(cliArg('calls'));
  let built: EchoContender;
  if (key === 'resilient') built = resilientEcho((await loadPackage()).ChannelPool, [address]);
  else built = rawEcho([address], NAMES[key]);
  try {
    await built.check(60_000);
    let errors = (await runLoad(built.start, Number(cliArg('warmup')), concurrency)).errors;
    gc();
    const lines = createInterface({ input: process.stdin })[Symbol.asyncIterator]();
    process.stdout.write(`${MARK}READY ${process.pid}\n`);
    await lines.next();
    process.stdout.write(`${MARK}START\n`);
    const before = process.resourceUsage();
    errors += (await runLoad(built.start, calls, concurrency)).errors;
    const after = process.resourceUsage();
    process.stdout.write(`${MARK}END\n`);
    const figures: ChildFigures = {
      userUs: (after.userCPUTime - before.userCPUTime) / calls,
      systemUs: (after.systemCPUTime - before.systemCPUTime) / calls,
      errors,
    };
    process.stdout.write(`${MARK}RESULT ${JSON.stringify(figures)}\n`);
    await lines.next();
  } finally {
    await built.close();
  }
}

async function measureChild(key: Key, address: string, concurrency: number, calls: number, warmup: number): Promise<Measured> {
  const script = fileURLToPath(import.meta.url);
  const args = ['--expose-gc', '--trace-gc-nvp', '--import', 'tsx', script, `--child=${key}`, `--address=${address}`, `--concurrency=${concurrency}`, `--calls=${calls}`, `--warmup=${warmup}`];
  const child = spawn(process.execPath, args, { stdio: ['pipe', 'pipe', 'inherit'] });
  const timer = setTimeout(() => child.kill('SIGKILL'), 600_000);
  let perf: ReturnType<typeof spawn> | undefined;
  let perfOut = '';
  let perfClosed: Promise<unknown> = Promise.resolve();
  let pid = 0;
  let inWindow = false;
  let scavenges = 0;
  let promoted = 0;
  let figures: ChildFigures | undefined;
  try {
    for await (const line of createInterface({ input: child.stdout! })) {
      if (line.startsWith(`${MARK}READY`)) {
        pid = Number(line.split(' ')[2]);
        try {
          perf = spawn('perf', ['stat', '-x', ',', '--per-thread', '-e', EVENTS.join(','), '-p', String(pid)], { stdio: ['ignore', 'ignore', 'pipe'] });
          perf.on('error', () => (perf = undefined));
          perf.stderr!.on('data', (d: Buffer) => (perfOut += d.toString()));
          perfClosed = new Promise((resolve) => perf!.on('close', resolve));
          // perf attaches to each thread of the process.
          await new Promise((resolve) => setTimeout(resolve, 500));
        } catch {
          perf = undefined;
        }
        child.stdin!.write('go\n');
      } else if (line.startsWith(`${MARK}START`)) inWindow = true;
      else if (line.startsWith(`${MARK}END`)) {
        inWindow = false;
        perf?.kill('SIGINT');
      } else if (line.startsWith(`${MARK}RESULT`)) {
        figures = JSON.parse(line.slice(`${MARK}RESULT `.length)) as ChildFigures;
        await perfClosed;
        child.stdin!.write('exit\n');
      } else if (inWindow && / gc=s /.test(line)) {
        scavenges++;
        promoted += Number(/ promoted=(\d+)/.exec(line)?.[1] ?? 0);
      }
    }
  } finally {
    clearTimeout(timer);
  }
  if (figures === undefined) throw new Error(`${key} at c=${concurrency}: the child exited without its result`);
  if (figures.errors > 0) throw new Error(`${key} at c=${concurrency}: ${figures.errors} calls failed`);
  // perf stat -x, --per-thread: "<comm>-<tid>,<count>,<unit>,<event>,..."; task-clock in ms.
  let perCall: Record<string, number> | undefined;
  let jsThreadUs: number | undefined;
  let otherThreadsUs: number | undefined;
  for (const l of perfOut.split('\n')) {
    const f = l.split(',');
    const event = f[3];
    const count = Number(f[1]);
    if (event === undefined || !EVENTS.includes(event) || !Number.isFinite(count)) continue;
    perCall ??= {};
    const value = event === 'task-clock' ? (count * 1000) / calls : count / calls;
    perCall[event] = (perCall[event] ?? 0) + value;
    if (event === 'task-clock') {
      const tid = Number(/-(\d+)$/.exec(f[0]!)?.[1]);
      if (tid === pid) jsThreadUs = (jsThreadUs ?? 0) + value;
      else otherThreadsUs = (otherThreadsUs ?? 0) + value;
    }
  }
  return { key, concurrency, calls, ...figures, perf: perCall, jsThreadUs, otherThreadsUs, scavenges, promotedPerCall: promoted / calls };
}

async function main(): Promise<void> {
  const startedAt = performance.now();
  const keys = onlyContenders(KEYS, 'raw-nostack');
  const levels = (cliArg('concurrency') ?? '32').split(',').map(Number);
  const calls = Number(cliArg('calls') ?? 20_000);
  const warmup = Number(cliArg('warmup') ?? 20_000);
  const repeat = Number(cliArg('repeat') ?? 1);
  const { startTestServerProcess } = await import('../test/helpers/test-server-process.js');
  const server = await startTestServerProcess();
  const measured: Measured[] = [];
  try {
    for (const concurrency of levels) {
      for (let r = 0; r < repeat; r++) {
        for (const key of keys) {
          const m = await measureChild(key, server.address, concurrency, calls, warmup);
          progress(`c=${concurrency} ${NAMES[key].padEnd(30)} user ${fmt.fixed(m.userUs)} µs, system ${fmt.fixed(m.systemUs)} µs, syscalls ${fmt.fixed(m.perf?.['raw_syscalls:sys_enter'] ?? Number.NaN, 3)} per call`);
          measured.push(m);
        }
      }
    }
  } finally {
    await server.kill();
  }
  const p = (m: Measured, event: string, digits: number): string => fmt.fixed(m.perf?.[event] ?? Number.NaN, digits);
  const rows = measured.map((m) => [
    String(m.concurrency),
    NAMES[m.key],
    fmt.fixed(m.userUs),
    fmt.fixed(m.systemUs),
    fmt.fixed(m.jsThreadUs ?? Number.NaN),
    fmt.fixed(m.otherThreadsUs ?? Number.NaN),
    p(m, 'raw_syscalls:sys_enter', 3),
    p(m, 'syscalls:sys_enter_writev', 3),
    p(m, 'syscalls:sys_enter_read', 3),
    p(m, 'syscalls:sys_enter_futex', 3),
    p(m, 'context-switches', 3),
    String(m.scavenges),
    fmt.int(m.promotedPerCall),
  ]);
  report({
    name: 'cpu-split',
    title: 'Where a unary call\'s client CPU goes: syscalls, threads, scavenges (Echo, small message, server in its own process)',
    durationSec: (performance.now() - startedAt) / 1000,
    tables: [
      {
        title: `per call, a window of ${calls} calls after ${warmup} warm-up calls, one process per row (perf stat attached for the window only)`,
        header: ['conc', 'contender', 'user µs', 'system µs', 'JS thread µs', 'other threads µs', 'syscalls', 'writev', 'read', 'futex', 'context switches', 'scavenges', 'B promoted/call'],
        rows,
      },
    ],
    targets: [],
    notes: [
      'user and system: process.resourceUsage() around the window (every thread). JS thread and other threads: perf\'s task clock per thread (the GC helper threads, libuv\'s pool and the compiler are the others). Syscalls: perf\'s raw_syscalls:sys_enter and syscalls:sys_enter_* tracepoints. "-": perf is not available here.',
      'scavenges and B promoted/call: --trace-gc-nvp lines in the window (what scavenges moved to the old generation). Clocks move with the load on the machine; counts much less.',
    ],
    data: { calls, warmup, measured },
  });
}

await childOrMain<Key>(import.meta.url, runChild, main);
