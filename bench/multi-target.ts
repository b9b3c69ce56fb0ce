// What does a call cost when the calls are spread over many targets? Client CPU per unary call
// with the calls spread in turn over 1, 10 and 100 targets, at concurrency 32 in all: resilient-
// grpc (one pool on its defaults, one client per target, so one channel per target) against raw
// grpc-js with as many clients (one per target, each with its own channel), paired in one
// process in interleaved rounds as unary-overhead.ts does (see "Paired processes" in lib.ts),
// with an A/A control (raw grpc-js beside raw grpc-js, as many clients each).
//
// The targets are distinct backends: one server process (the test server's handlers) listening
// on 100 ports of 127.0.0.1, target i being `127.0.0.1:<port i>`, so each channel has its own TCP
// connection, as it would to distinct hosts. Raw grpc-js clients get `grpc.use_local_subchannel_
// pool` (all of them, baseline and control alike): without it, the A/A control's clients would
// share the baseline's connections (grpc-js shares a subchannel between channels with the same
// target and options), while the pool's channels, whose options differ, have their own. Each
// child checks before measuring that the pool has one channel per target and that its process
// holds one connection per target per side.
//
// Run alone: node --expose-gc --import tsx bench/multi-target.ts [--only=a-a,resilient]
//   BENCH_TARGETS (default 1,10,100), BENCH_ROUNDS (default 6, per process), BENCH_ROUND_SEC
//   (default 0.5), BENCH_PROCESSES (default 3), BENCH_CONCURRENCY (default 32)
//   About 2.5 min on a shared 2-core machine (18 child processes of ~7 s).
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import type { Socket } from 'node:net';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { startTestServer, type TestServer } from '../test/helpers/test-server.js';
import { CONTROL, RAW, rawEcho, RESILIENT, resilientEcho, type EchoContender } from './contenders.js';
import { cliArg, controlNote, fmt, isMain, loadPackage, measurePairs, median, progress, REPO_DIR, report, runPairChild, type PairBuilt, type Paired } from './lib.js';

const TARGETS = (process.env.BENCH_TARGETS ?? '1,10,100').split(',').map(Number);
const CONCURRENCY = Number(process.env.BENCH_CONCURRENCY ?? 32);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 6);
const ROUND_SEC = Number(process.env.BENCH_ROUND_SEC ?? 0.5);
const PROCESSES = Number(process.env.BENCH_PROCESSES ?? 3);
const WARMUP_SEC = 0.5;

const KEYS = ['a-a', 'resilient'] as const;
type Key = (typeof KEYS)[number];

/** Channel options of every raw grpc-js client here: a connection of its own per client. */
const RAW_OPTIONS = { 'grpc.use_local_subchannel_pool': 1 };

const plural = (n: number): string => `${n} target${n === 1 ? '' : 's'}`;

// ---------------------------------------------------------------------------------------------
// The server process: `count` test servers, one port each.

async function runServer(count: number): Promise<void> {
  const servers: TestServer[] = [];
  for (let i = 0; i < count; i++) servers.push(await startTestServer({ keepRecords: false }));
  process.stdout.write(`${JSON.stringify({ ports: servers.map((s) => s.port) })}\n`);
  const exit = async (): Promise<void> => {
    for (const s of servers) await s.kill();
    process.exit(0);
  };
  process.once('SIGTERM', () => void exit());
  process.stdin.once('end', () => void exit());
  process.stdin.once('close', () => void exit());
  process.stdin.resume();
}

interface Servers {
  ports: number[];
  kill(): Promise<void>;
}

/** Starts the server process (this script with --server=N) and reads its ports. */
async function startServers(count: number): Promise<Servers> {
  const tsx = fileURLToPath(new URL('../node_modules/.bin/tsx', import.meta.url));
  const child: ChildProcess = spawn(tsx, [fileURLToPath(import.meta.url), `--server=${count}`], { cwd: REPO_DIR, stdio: ['pipe', 'pipe', 'inherit'] });
  const killOnExit = (): void => void child.kill('SIGTERM');
  process.once('exit', killOnExit);
  const lines = createInterface({ input: child.stdout! });
  const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
  try {
    const [line] = (await Promise.race([
      once(lines, 'line'),
      once(child, 'exit').then(([code]) => {
        throw new Error(`the server process exited with ${String(code)} before printing its ports`);
      }),
    ])) as [string];
    const { ports } = JSON.parse(line) as { ports: number[] };
    if (ports.length !== count) throw new Error(`the server process listens on ${ports.length} ports, expected ${count}`);
    return {
      ports,
      async kill() {
        process.off('exit', killOnExit);
        if (child.exitCode !== null || child.signalCode !== null) return;
        const exited = once(child, 'exit');
        child.kill('SIGTERM');
        const hard = setTimeout(() => child.kill('SIGKILL'), 5_000);
        await exited;
        clearTimeout(hard);
      },
    };
  } finally {
    clearTimeout(timer);
    lines.close();
    child.unref();
    for (const pipe of [child.stdin, child.stdout]) (pipe as Socket | null)?.unref();
  }
}

// ---------------------------------------------------------------------------------------------
// The pair child

/** ESTABLISHED TCP connections of this machine whose remote end is one of `ports` on IPv4. */
function connectionsTo(ports: ReadonlySet<number>): number | undefined {
  let text: string;
  try {
    text = readFileSync('/proc/net/tcp', 'utf8');
  } catch {
    return undefined;
  }
  let count = 0;
  for (const line of text.split('\n').slice(1)) {
    const fields = line.trim().split(/\s+/);
    if (fields.length < 4 || fields[3] !== '01') continue;
    const remotePort = parseInt(fields[2]!.split(':')[1]!, 16);
    if (ports.has(remotePort)) count++;
  }
  return count;
}

async function build(ports: readonly number[], key: Key): Promise<PairBuilt> {
  const targets = ports.map((p) => `127.0.0.1:${p}`);
  const built: EchoContender[] = [rawEcho(targets, RAW, RAW_OPTIONS)];
  let channels: (() => number) | undefined;
  if (key === 'a-a') built.push(rawEcho(targets, CONTROL, RAW_OPTIONS));
  if (key === 'resilient') {
    const { ChannelPool } = await loadPackage();
    const pool = resilientEcho(ChannelPool, targets);
    channels = () => pool.pool.stats().channels;
    built.push(pool);
  }
  return {
    contenders: built.map(({ name, start }) => ({ name, start })),
    async check() {
      for (const c of built) await c.check();
      if (channels !== undefined && channels() !== targets.length) throw new Error(`the pool has ${channels()} channels for ${targets.length} targets`);
      const connections = connectionsTo(new Set(ports));
      if (connections !== undefined && connections !== 2 * targets.length) {
        throw new Error(`${connections} connections to the ${targets.length} targets, expected ${2 * targets.length} (one per target per side)`);
      }
      progress(`${plural(targets.length)}, ${key}: ${channels === undefined ? '' : `${channels()} pool channels, `}${connections ?? '?'} connections`);
    },
    async close() {
      for (const c of built) await c.close();
    },
  };
}

// ---------------------------------------------------------------------------------------------
// The parent

interface LevelResult {
  targets: number;
  /** For controlNote, which labels levels by concurrency: here, the number of targets. */
  concurrency: number;
  measured: Paired[];
}

async function main(): Promise<void> {
  const startedAt = performance.now();
  const only = cliArg('only')?.split(',');
  const keys = KEYS.filter((k) => only === undefined || only.includes(k));
  const servers = await startServers(Math.max(...TARGETS));
  const levels: LevelResult[] = [];
  try {
    for (const targets of TARGETS) {
      const ports = servers.ports.slice(0, targets);
      const measured = await measurePairs(fileURLToPath(import.meta.url), keys, PROCESSES, (key) => [`--child=${key}`, `--ports=${ports.join(',')}`, `--concurrency=${CONCURRENCY}`]);
      levels.push({ targets, concurrency: targets, measured });
    }
  } finally {
    await servers.kill();
  }

  const rows: string[][] = [];
  for (const level of levels) {
    for (const m of level.measured) {
      rows.push([
        String(level.targets),
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
  }
  const control = controlNote(levels, CONTROL, 'raw grpc-js beside raw grpc-js, as many clients each').replace(/c=(\d+)/g, (_, n: string) => plural(Number(n)));
  report({
    name: 'multi-target',
    title: `Calls spread over many targets: client CPU per unary call at concurrency ${CONCURRENCY} (Echo, small message, servers in their own process)`,
    durationSec: (performance.now() - startedAt) / 1000,
    tables: [
      {
        title: `multi-target (c=${CONCURRENCY} in all, calls in turn over the targets; each contender in processes of its own, in interleaved rounds with raw grpc-js on as many clients; medians of rounds and of per-round ratios, then over processes)`,
        header: ['targets', 'contender', 'CPU µs/call', 'raw grpc-js µs/call', '× raw', '× raw, by process', 'calls/s', 'calls/s × raw', 'processes×rounds×calls'],
        rows,
      },
    ],
    targets: [],
    notes: [
      'Targets: 127.0.0.1 on distinct ports of one server process (a grpc-js server per port, the test server\'s handlers), so one TCP connection per channel; each child checked one pool channel per target and one connection per target per side.',
      `raw grpc-js: one callback client per target, a deadline per call, channel options ${JSON.stringify(RAW_OPTIONS)} (its own connection, as the pool's channels have); resilient-grpc: new ChannelPool() (pool defaults), one client per target.`,
      'CPU is the client process only (user + system, all threads, GC included).',
      control,
    ],
    data: levels,
  });
}

const serverCount = cliArg('server');
const childKey = cliArg('child') as Key | undefined;
if (serverCount !== undefined) {
  await runServer(Number(serverCount));
} else if (childKey !== undefined) {
  const ports = cliArg('ports')!.split(',').map(Number);
  await runPairChild(await build(ports, childKey), { concurrency: Number(cliArg('concurrency')), rounds: ROUNDS, roundSec: ROUND_SEC, warmupSec: WARMUP_SEC, label: `${plural(ports.length)} ${childKey}` });
  process.exit(0);
} else if (isMain(import.meta.url)) {
  await main();
}
