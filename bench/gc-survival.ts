// What a unary call leaves for the garbage collector: bytes allocated per call, and bytes per
// call that survive a scavenge (copied by it, then promoted to the old generation, where only a
// full GC frees them). Figures in bytes, counted by V8's sampling heap profiler: they do not move
// with the load on the machine, unlike CPU time, so a change to the call path can be measured on
// a busy machine; CPU time is unary-overhead.ts's, instructions are instructions.ts's.
//
// Why survivors. Measured at c=32 with `perf stat` and --trace-gc-nvp (2026-12-07), raw grpc-js
// and resilient-grpc make the same syscalls per call (~0.45, one writev per 32 calls: the pool
// starts its grpc-js calls in the same tick) and spend about the same system time, but a
// scavenge copies ~38 % of what a call allocates: most of a call's objects outlive it until the
// next full GC. The cause: a Set or Map that takes an entry per call and deletes it (grpc-js's
// per-transport set of active calls, node's http2 stream map, and the pool's in-flight set
// before this benchmark) is rehashed every few dozen calls, and V8 leaves the old table its
// entries and a link to the new table; once one such table is in the old generation (the live
// one is, after any full GC), the whole chain of later tables, and each call in them with
// everything it references, survives every scavenge. What a call's grpc-js objects reference
// survives with them: before the fix, the pool's Call, Attempt, plan and prepared options did,
// through grpc-js's callback and the attempt link on the grpc-js call. The scavenger's work, on
// the JS thread and on the GC helper threads, grows with these bytes.
//
// The method: per contender and concurrency, a process of its own (bench/contenders.ts, the
// server in its own process); after a warm-up and a full GC, a window of calls under the
// sampling heap profiler twice: once keeping only the samples that no scavenge freed
// (includeObjectsCollectedByMinorGC false, ByMajorGC true: survivors, plus the few objects still
// alive at the window's end), once keeping every sample (all allocations). A sample is taken
// every `--interval` bytes allocated on average (256 by default); the sites in the package
// (dist/) are listed for resilient-grpc. Between processes, a contender's figure strayed by up
// to ~7 % (about 1 KB/call survived; 13.6 and 14.7 KB for raw grpc-js at c=1 in two runs): the
// package's own sites are the figure to follow from one change to the next.
//
// Run alone: node --expose-gc --import tsx bench/gc-survival.ts [--only=raw-nostack,resilient]
//   [--concurrency=1,32] [--calls=10000] [--warmup=5000] [--interval=256]
// Time: 7 min for three contenders at two levels on the shared 2-core machine (load 8-10).
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { Session } from 'node:inspector/promises';
import { fileURLToPath } from 'node:url';
import { RAW, RAW_NO_STACK, rawEcho, RESILIENT, resilientEcho, type EchoContender } from './contenders.js';
import { cliArg, onlyContenders, fmt, gc, childOrMain, loadPackage, progress, report, runLoad, type Table } from './lib.js';

const KEYS = ['raw', 'raw-nostack', 'resilient'] as const;
type Key = (typeof KEYS)[number];
const NAMES: Record<Key, string> = { raw: RAW, 'raw-nostack': RAW_NO_STACK, resilient: RESILIENT };
const CHILD_MARKER = '@@gc-survival-child@@ ';
const PACKAGE_DIST = new URL('../dist/', import.meta.url).href;

/** One sampling profile's figures. */
interface Sampled {
  bytesPerCall: number;
  /** Bytes per call allocated by functions of the package (the innermost frame in dist/), by function. */
  packageSites: Array<{ site: string; bytesPerCall: number }>;
}

interface ChildReport {
  key: Key;
  concurrency: number;
  calls: number;
  allocated: Sampled;
  survived: Sampled;
  errors: number;
}

interface ProfileNode {
  callFrame: { functionName: string; url: string; lineNumber: number };
  selfSize: number;
  children: ProfileNode[];
}

/** Sums a sampling heap profile: bytes per call in all, and the package's own sites. */
function summarize(head: ProfileNode, calls: number): Sampled {
  let total = 0;
  const sites = new Map<string, number>();
  const walk = (node: ProfileNode): void => {
    total += node.selfSize;
    const { url, functionName, lineNumber } = node.callFrame;
    if (node.selfSize > 0 && url.startsWith(PACKAGE_DIST)) {
      const site = `${functionName || '(anonymous)'} (${url.slice(PACKAGE_DIST.length)}:${lineNumber + 1})`;
      sites.set(site, (sites.get(site) ?? 0) + node.selfSize);
    }
    for (const child of node.children) walk(child);
  };
  walk(head);
  return {
    bytesPerCall: total / calls,
    packageSites: [...sites]
      .map(([site, bytes]) => ({ site, bytesPerCall: bytes / calls }))
      .sort((a, b) => b.bytesPerCall - a.bytesPerCall),
  };
}

async function runChild(key: Key): Promise<void> {
  const address = cliArg('address')!;
  const concurrency = Number(cliArg('concurrency'));
  const calls = Number(cliArg('calls'));
  const interval = Number(cliArg('interval'));
  let built: EchoContender;
  if (key === 'resilient') built = resilientEcho((await loadPackage()).ChannelPool, [address]);
  else built = rawEcho([address], NAMES[key]);
  const session = new Session();
  session.connect();
  try {
    await built.check(60_000);
    let errors = (await runLoad(built.start, Number(cliArg('warmup')), concurrency)).errors;
    await session.post('HeapProfiler.enable');
    const sample = async (survivorsOnly: boolean): Promise<Sampled> => {
      gc();
      // includeObjectsCollectedBy*: a sample stays in the profile when its object was freed by
      // that kind of GC (V8 >= 10.9; Node 20 has 11.3). Samples of live objects always stay.
      await session.post('HeapProfiler.startSampling', {
        samplingInterval: interval,
        includeObjectsCollectedByMajorGC: true,
        includeObjectsCollectedByMinorGC: !survivorsOnly,
      } as never);
      errors += (await runLoad(built.start, calls, concurrency)).errors;
      const { profile } = (await session.post('HeapProfiler.stopSampling')) as unknown as { profile: { head: ProfileNode } };
      return summarize(profile.head, calls);
    };
    const survived = await sample(true);
    const allocated = await sample(false);
    const result: ChildReport = { key, concurrency, calls, allocated, survived, errors };
    process.stdout.write(`${CHILD_MARKER}${JSON.stringify(result)}\n`);
  } finally {
    session.disconnect();
    await built.close();
  }
}

async function measureChild(key: Key, address: string, concurrency: number, calls: number, warmup: number, interval: number): Promise<ChildReport> {
  const script = fileURLToPath(import.meta.url);
  const args = ['--expose-gc', '--import', 'tsx', script, `--child=${key}`, `--address=${address}`, `--concurrency=${concurrency}`, `--calls=${calls}`, `--warmup=${warmup}`, `--interval=${interval}`];
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'inherit'] });
  let stdout = '';
  child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
  const timer = setTimeout(() => child.kill('SIGKILL'), 600_000);
  const [code, signal] = (await once(child, 'close')) as [number | null, NodeJS.Signals | null];
  clearTimeout(timer);
  const line = stdout.split('\n').find((l) => l.startsWith(CHILD_MARKER));
  if (code !== 0 || line === undefined) throw new Error(`${key} at c=${concurrency}: the child exited with ${code ?? signal} without its result`);
  const result = JSON.parse(line.slice(CHILD_MARKER.length)) as ChildReport;
  if (result.errors > 0) throw new Error(`${key} at c=${concurrency}: ${result.errors} calls failed`);
  return result;
}

async function main(): Promise<void> {
  const startedAt = performance.now();
  // raw grpc-js with the caller stack off, the pool's way of calling it, is the baseline.
  const keys = onlyContenders(KEYS, 'raw-nostack');
  const levels = (cliArg('concurrency') ?? '1,32').split(',').map(Number);
  const calls = Number(cliArg('calls') ?? 10_000);
  const warmup = Number(cliArg('warmup') ?? 5_000);
  const interval = Number(cliArg('interval') ?? 256);

  const { startTestServerProcess } = await import('../test/helpers/test-server-process.js');
  const server = await startTestServerProcess();
  const measured: ChildReport[] = [];
  try {
    for (const concurrency of levels) {
      for (const key of keys) {
        const r = await measureChild(key, server.address, concurrency, calls, warmup, interval);
        progress(`c=${concurrency} ${NAMES[key].padEnd(30)} allocated ${fmt.int(r.allocated.bytesPerCall)} B/call, survived a scavenge ${fmt.int(r.survived.bytesPerCall)} B/call`);
        measured.push(r);
      }
    }
  } finally {
    await server.kill();
  }

  const rows: string[][] = [];
  const sites: string[] = [];
  for (const concurrency of levels) {
    const level = measured.filter((m) => m.concurrency === concurrency);
    const base = level.find((m) => m.key === 'raw-nostack')!;
    for (const m of level) {
      rows.push([
        String(concurrency),
        NAMES[m.key],
        fmt.int(m.allocated.bytesPerCall),
        fmt.int(m.allocated.bytesPerCall - base.allocated.bytesPerCall),
        fmt.int(m.survived.bytesPerCall),
        fmt.int(m.survived.bytesPerCall - base.survived.bytesPerCall),
        `${fmt.fixed((100 * m.survived.bytesPerCall) / m.allocated.bytesPerCall, 0)} %`,
        fmt.int(m.survived.packageSites.reduce((sum, s) => sum + s.bytesPerCall, 0)),
      ]);
      if (m.key === 'resilient') {
        const top = m.survived.packageSites.slice(0, 5).map((s) => `${s.site} ${fmt.int(s.bytesPerCall)}`);
        sites.push(`c=${concurrency}: ${top.length > 0 ? top.join('; ') : 'none'}`);
      }
    }
  }
  const tables: Table[] = [
    {
      title: `bytes per unary call (V8's sampling heap profiler, a sample every ${interval} B on average; after ${warmup} warm-up calls, a window of ${calls} calls for each column; one process per contender and level)`,
      header: ['conc', 'contender', 'B/call allocated', 'vs caller stack off', 'B/call survived a scavenge', 'vs caller stack off', 'share survived', "package's own survived"],
      rows,
    },
  ];
  report({
    name: 'gc-survival',
    title: 'What a unary call leaves for the garbage collector (bytes allocated and bytes surviving a scavenge)',
    durationSec: (performance.now() - startedAt) / 1000,
    tables,
    targets: [],
    notes: [
      `"survived a scavenge": bytes whose objects no scavenge freed (kept until a full GC, or alive at the window's end); each such byte is copied once or twice by the scavenger, then promoted. "package's own survived": of those, what functions of resilient-grpc's build (dist/) allocated; resilient-grpc's largest such sites (function (file:line) B/call): ${sites.join(' | ')}.`,
      `${RAW_NO_STACK} is the baseline ("vs" columns: the difference in B/call): grpc-js as the pool calls it, with Error.stackTraceLimit at 0, so that grpc-js captures no caller stack.`,
      'Bytes, not time: they do not move with the load on the machine. A sample stands for `interval` bytes on average, and a contender\'s figure strayed by up to ~7 % between processes (about 1 KB/call survived): follow the package\'s own sites from one change to the next.',
    ],
    data: { calls, warmup, interval, measured },
  });
}

await childOrMain<Key>(import.meta.url, runChild, main);
