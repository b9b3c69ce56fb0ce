// The incident, as a curve: the backend is down (nothing listens on the port) and the client
// keeps calling it, ~100 calls at a time.
//
//   naive: new TestServiceClient(target, createInsecure()) replaced after each failed call and
//          never closed (each orphan keeps its channel, resolver, load balancer and timers);
//   pool:  one ChannelPool client (the ARMED configuration of lib.ts);
//   pool, breaker off: the same with `breaker: false`. With the breaker armed, the circuit opens
//          after ~20 failures and most calls are refused before reaching grpc-js; this way sends
//          every call through the channel, so the channel's own path is measured too.
//
// At cumulative checkpoints up to 100k failed calls: heap MB after a full GC, RSS MB, channels
// (naive: clients created; pool: pool.stats().channels). Each way runs in its own child process
// (pool first), so neither sees the other's heap. The naive way stops at the largest checkpoint
// projected to fit in NAIVE_BUDGET_SEC (and says so); the pool always runs to 100k.
// Writes bench/leak-curve.svg.
//
// Run alone: node --expose-gc --import tsx bench/leak-curve.ts
import { writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { getHeapStatistics } from 'node:v8';
import * as grpc from '@grpc/grpc-js';
import { TestServiceClient } from '../test/helpers/protos.js';
import type { EchoRequest } from '../test/helpers/protos.js';
import {
  ARMED,
  BENCH_DIR,
  fmt,
  isMain,
  markedJson,
  memoryAfterGc,
  progress,
  report,
  runLoad,
  runNodeChild,
  unusedPort,
  type StartCall,
  type Target,
  loadPackage,
} from './lib.js';

const { ChannelPool, CircuitOpenError, statusName } = await loadPackage();

const CHECKPOINTS = [1_000, 2_000, 5_000, 10_000, 20_000, 50_000, 100_000];
const CONCURRENCY = 100;
const WARMUP_CALLS = 1_000;
const NAIVE_BUDGET_SEC = 60;
const POOL_GROWTH_TARGET_MB = 2;
const REQUEST: EchoRequest = { message: 'hello', delayMs: 0, payload: Buffer.alloc(0) };
const WAY_MARKER = '@@leak-way@@ ';
const SVG_PATH = fileURLToPath(new URL('./leak-curve.svg', import.meta.url));

const WAYS = ['pool', 'pool-no-breaker', 'naive'] as const;
type Way = (typeof WAYS)[number];
const isWay = (value: string | undefined): value is Way => (WAYS as readonly string[]).includes(value ?? '');
const WAY_LABELS: Record<Way, string> = {
  pool: 'resilient-grpc pool',
  'pool-no-breaker': 'resilient-grpc pool, breaker off',
  naive: 'naive: new client per failure',
};

interface Row {
  calls: number;
  failed: number;
  heapMb: number;
  rssMb: number;
  channels: number;
  /** Seconds spent making calls so far (GC and measurement excluded). */
  callSec: number;
}

interface WayResult {
  way: Way;
  /** Heap after GC in the fresh process, before the warm-up. */
  coldHeapMb: number;
  rows: Row[];
  /** Why the way stopped before the last checkpoint, if it did. */
  stopped: string | undefined;
  /** Projected seconds of calls to reach the last checkpoint, from the latest segment's rate. */
  projectedSecToLast: number | undefined;
  /** How the calls failed: status name, and whether the open circuit refused them. */
  failures: Record<string, number>;
}

// ---------------------------------------------------------------------------------------------
// Child: one way

interface RawTestClient extends grpc.Client {
  Echo(request: EchoRequest, options: grpc.CallOptions, callback: (error: grpc.ServiceError | null) => void): grpc.ClientUnaryCall;
}

interface Subject {
  start: StartCall;
  channels: () => number;
  close: () => Promise<unknown>;
}

function poolWay(target: string, breaker: boolean): Subject {
  const pool = new ChannelPool(breaker ? ARMED : { ...ARMED, breaker: false });
  const client = pool.client(TestServiceClient, target);
  const start: StartCall = (done) => {
    (client.Echo(REQUEST) as Promise<unknown>).then(
      () => done(),
      (error: unknown) => done(error),
    );
  };
  return { start, channels: () => pool.stats().channels, close: () => pool.close({ graceMs: 0 }) };
}

/** `keep`: remember every client so close() can close them (only for the warm-up). */
function naiveWay(target: string, keep = false): Subject {
  const created: RawTestClient[] = [];
  const connect = (): RawTestClient => {
    const c = new TestServiceClient(target, grpc.credentials.createInsecure()) as unknown as RawTestClient;
    if (keep) created.push(c);
    return c;
  };
  let client = connect();
  let count = 1;
  const start: StartCall = (done) => {
    client.Echo(REQUEST, { deadline: Date.now() + ARMED.deadlineMs }, (error) => {
      if (error !== null) {
        // "Reconnect": the bug. The old client, and its channel, is never closed.
        client = connect();
        count++;
      }
      done(error === null ? undefined : error);
    });
  };
  const close = (): Promise<void> => {
    for (const c of created) c.close();
    client.close();
    return Promise.resolve();
  };
  return { start, channels: () => count, close };
}

/**
 * One-time costs (lazily compiled code, grpc-js's first connection attempt and error paths) are
 * not growth: before its baseline, each way runs WARMUP_CALLS failed calls of its own kind on a
 * throwaway client to another dead port, and closes it.
 */
function subjectFor(way: Way, target: string, keep = false): Subject {
  return way === 'naive' ? naiveWay(target, keep) : poolWay(target, way === 'pool');
}

/** "UNAVAILABLE", or "UNAVAILABLE, circuit open (not sent)" for a CircuitOpenError. */
function failureKind(error: unknown): string {
  const code = (error as { code?: unknown }).code;
  const name = typeof code === 'number' ? statusName(code) : 'no status code';
  return error instanceof CircuitOpenError ? `${name}, circuit open (not sent)` : name;
}

async function warmUp(way: Way, warmTarget: string): Promise<void> {
  const subject = subjectFor(way, warmTarget, true);
  const result = await runLoad(subject.start, WARMUP_CALLS, CONCURRENCY);
  if (result.errors !== WARMUP_CALLS) throw new Error(`warm-up: something listens on ${warmTarget}`);
  await subject.close();
}

async function runWay(way: Way, target: string, warmTarget: string): Promise<WayResult> {
  const cold = memoryAfterGc();
  await warmUp(way, warmTarget);
  const failures: Record<string, number> = {};
  const measured = subjectFor(way, target);
  const subject: Subject = {
    ...measured,
    start: (done) =>
      measured.start((error) => {
        if (error !== undefined) {
          const kind = failureKind(error);
          failures[kind] = (failures[kind] ?? 0) + 1;
        }
        done(error);
      }),
  };
  const heapLimitMb = getHeapStatistics().heap_size_limit / 2 ** 20;
  const rows: Row[] = [];
  const base = memoryAfterGc();
  progress(`${way} cold heap ${fmt.fixed(cold.heapMb)} MB; after warm-up (${WARMUP_CALLS} failed calls on a throwaway client, closed) ${fmt.fixed(base.heapMb)} MB`);
  rows.push({ calls: 0, failed: 0, heapMb: base.heapMb, rssMb: base.rssMb, channels: subject.channels(), callSec: 0 });
  let calls = 0;
  let failed = 0;
  let callSec = 0;
  let stopped: string | undefined;
  let projectedSecToLast: number | undefined;
  const last = CHECKPOINTS[CHECKPOINTS.length - 1]!;
  for (const checkpoint of CHECKPOINTS) {
    const previous = rows[rows.length - 1]!;
    if (way === 'naive' && calls > 0) {
      // Project from the latest segments. A call gets slower as the orphans pile up (GC over a
      // bigger heap), so seconds per call are extrapolated along their trend when there is one.
      const prev = rows[rows.length - 2]!;
      const secPerCall = (previous.callSec - prev.callSec) / (previous.calls - prev.calls);
      const lastMid = (previous.calls + prev.calls) / 2;
      let slope = 0;
      if (rows.length >= 3) {
        const prev2 = rows[rows.length - 3]!;
        const earlier = (prev.callSec - prev2.callSec) / (prev.calls - prev2.calls);
        slope = Math.max(0, (secPerCall - earlier) / (lastMid - (prev.calls + prev2.calls) / 2));
      }
      const secFor = (to: number): number => (to - calls) * (secPerCall + slope * ((calls + to) / 2 - lastMid));
      const mbPerCall = Math.max(0, (previous.heapMb - prev.heapMb) / (previous.calls - prev.calls));
      projectedSecToLast = callSec + secFor(last);
      const projectedSec = callSec + secFor(checkpoint);
      const projectedHeap = previous.heapMb + mbPerCall * (checkpoint - calls);
      if (projectedSec > NAIVE_BUDGET_SEC) {
        stopped = `stopped at ${fmt.int(calls)}: ${fmt.int(checkpoint)} calls projected to take ${fmt.fixed(projectedSec)} s of calls (budget ${NAIVE_BUDGET_SEC} s)`;
        break;
      }
      if (projectedHeap > heapLimitMb * 0.7) {
        stopped = `stopped at ${fmt.int(calls)}: ${fmt.int(checkpoint)} calls projected to need ${fmt.int(projectedHeap)} MB of heap (limit ${fmt.int(heapLimitMb)} MB)`;
        break;
      }
    }
    const count = checkpoint - calls;
    const t0 = performance.now();
    const result = await runLoad(subject.start, count, CONCURRENCY);
    callSec += (performance.now() - t0) / 1000;
    calls += count;
    failed += result.errors;
    if (result.errors !== count) {
      throw new Error(`${way}: ${count - result.errors} calls succeeded: something listens on ${target}`);
    }
    const m = memoryAfterGc();
    rows.push({ calls, failed, heapMb: m.heapMb, rssMb: m.rssMb, channels: subject.channels(), callSec });
    progress(`${way} ${fmt.int(calls).padStart(7)} failed calls  heap ${fmt.fixed(m.heapMb)} MB  RSS ${fmt.fixed(m.rssMb)} MB  channels ${fmt.int(subject.channels())}  (${fmt.fixed(callSec)} s of calls)`);
  }
  return { way, coldHeapMb: cold.heapMb, rows, stopped, projectedSecToLast, failures };
}

// ---------------------------------------------------------------------------------------------
// SVG chart, by hand

function esc(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

function niceCeil(value: number): number {
  const magnitude = 10 ** Math.floor(Math.log10(value));
  for (const step of [1, 1.2, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10]) if (step * magnitude >= value) return step * magnitude;
  return 10 * magnitude;
}

function kLabel(n: number): string {
  return n >= 1000 ? `${n / 1000}k` : String(n);
}

export function leakSvg(results: readonly WayResult[]): string {
  const W = 720;
  const H = 400;
  const m = { left: 64, right: 28, top: 64, bottom: 56 };
  const pw = W - m.left - m.right;
  const ph = H - m.top - m.bottom;
  // Linear x: a leak of so many KB per call is a straight line, its slope the cost per call.
  const xMax = CHECKPOINTS[CHECKPOINTS.length - 1]!;
  const x = (calls: number): number => m.left + (calls / xMax) * pw;
  const maxHeap = Math.max(...results.flatMap((r) => r.rows.map((row) => row.heapMb)));
  // Headroom above the highest point for its two-line label.
  const yMax = niceCeil(maxHeap * 1.15);
  const y = (mb: number): number => m.top + ph - (mb / yMax) * ph;
  const styles: Record<Way, { color: string; label: string; dash?: string }> = {
    pool: { color: '#1f77b4', label: 'resilient-grpc pool' },
    'pool-no-breaker': { color: '#17becf', label: 'pool, breaker off', dash: '7 5' },
    naive: { color: '#d62728', label: 'naive: new client per failure' },
  };
  const out: string[] = [];
  out.push(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="Helvetica, Arial, sans-serif" font-size="12">`,
    `<rect width="${W}" height="${H}" fill="#ffffff"/>`,
    `<text x="${W / 2}" y="24" text-anchor="middle" font-size="15" font-weight="bold">Heap after GC vs failed calls, backend down (concurrency ${CONCURRENCY})</text>`,
  );
  const xStep = xMax / 10;
  for (let v = 0; v <= xMax; v += xStep) {
    out.push(
      `<line x1="${x(v).toFixed(1)}" y1="${m.top}" x2="${x(v).toFixed(1)}" y2="${m.top + ph}" stroke="#e4e4e4"/>`,
      `<text x="${x(v).toFixed(1)}" y="${m.top + ph + 18}" text-anchor="middle">${kLabel(v)}</text>`,
    );
  }
  const yStep = niceCeil(yMax / 6);
  for (let v = 0; v <= yMax + 1e-9; v += yStep) {
    out.push(
      `<line x1="${m.left}" y1="${y(v).toFixed(1)}" x2="${m.left + pw}" y2="${y(v).toFixed(1)}" stroke="#e4e4e4"/>`,
      `<text x="${m.left - 8}" y="${(y(v) + 4).toFixed(1)}" text-anchor="end">${Number.isInteger(v) ? v : v.toFixed(1)}</text>`,
    );
  }
  out.push(
    `<rect x="${m.left}" y="${m.top}" width="${pw}" height="${ph}" fill="none" stroke="#888888"/>`,
    `<text x="${m.left + pw / 2}" y="${H - 14}" text-anchor="middle">failed calls, cumulative</text>`,
    `<text x="18" y="${m.top + ph / 2}" text-anchor="middle" transform="rotate(-90 18 ${m.top + ph / 2})">heap used after GC (MB)</text>`,
  );
  // End labels: stacked upwards when they would overlap an earlier one.
  const placed: Array<{ left: number; right: number; top: number; bottom: number }> = [];
  for (const result of results) {
    const { color, dash } = styles[result.way];
    const points = result.rows;
    out.push(
      `<polyline fill="none" stroke="${color}" stroke-width="2.5" stroke-linejoin="round"${dash === undefined ? '' : ` stroke-dasharray="${dash}"`} points="${points.map((p) => `${x(p.calls).toFixed(1)},${y(p.heapMb).toFixed(1)}`).join(' ')}"/>`,
    );
    for (const p of points) out.push(`<circle cx="${x(p.calls).toFixed(1)}" cy="${y(p.heapMb).toFixed(1)}" r="3.5" fill="${color}"/>`);
    const first = points[0]!;
    const end = points[points.length - 1]!;
    const growthMb = end.heapMb - first.heapMb;
    const perCallKb = end.calls > 0 ? (growthMb * 1024) / end.calls : 0;
    const lines = [
      `${fmt.fixed(end.heapMb)} MB at ${kLabel(end.calls)}, ${fmt.int(end.channels)} channel${end.channels === 1 ? '' : 's'}`,
      `${growthMb >= 0 ? '+' : ''}${fmt.fixed(growthMb, Math.abs(growthMb) >= 10 ? 1 : 2)} MB since 0 calls${perCallKb >= 0.1 ? ` (${fmt.fixed(perCallKb)} KB per failed call)` : ''}`,
    ];
    if (result.stopped !== undefined) lines.push(`stopped: next checkpoint over the ${NAIVE_BUDGET_SEC} s budget`);
    // Above the point, on its left near the right edge (the upper-left of a rising line is empty).
    const nearRight = x(end.calls) > m.left + pw - 260;
    const tx = x(end.calls) + (nearRight ? -10 : 10);
    const widthPx = Math.max(...lines.map((l) => l.length)) * 6.6;
    const box = { left: nearRight ? tx - widthPx : tx, right: nearRight ? tx : tx + widthPx, bottom: y(end.heapMb) - 6, top: 0 };
    box.top = box.bottom - 14 * lines.length;
    for (;;) {
      const clash = placed.find((p) => p.left < box.right && box.left < p.right && p.top < box.bottom && box.top < p.bottom);
      if (clash === undefined) break;
      box.bottom = clash.top - 4;
      box.top = box.bottom - 14 * lines.length;
    }
    placed.push(box);
    lines.forEach((line, i) => {
      const ty = box.bottom - 4 - 14 * (lines.length - 1 - i);
      out.push(
        `<text x="${tx.toFixed(1)}" y="${ty.toFixed(1)}" text-anchor="${nearRight ? 'end' : 'start'}" fill="${color}"${i === 0 ? ' font-weight="bold"' : ''}>${esc(line)}</text>`,
      );
    });
  }
  // Legend: one row between the title and the plot.
  let lx = m.left + 4;
  const ly = 46;
  for (const result of results) {
    const { color, label, dash } = styles[result.way];
    out.push(
      `<line x1="${lx}" y1="${ly - 4}" x2="${lx + 24}" y2="${ly - 4}" stroke="${color}" stroke-width="2.5"${dash === undefined ? '' : ` stroke-dasharray="${dash}"`}/>`,
      `<circle cx="${lx + 12}" cy="${ly - 4}" r="3.5" fill="${color}"/>`,
      `<text x="${lx + 30}" y="${ly}">${esc(label)}</text>`,
    );
    lx += 30 + label.length * 6.6 + 28;
  }
  out.push('</svg>');
  return `${out.join('\n')}\n`;
}

// ---------------------------------------------------------------------------------------------
// Parent: both ways, each in its own process

async function parent(): Promise<void> {
  const startedAt = performance.now();
  const target = `127.0.0.1:${await unusedPort()}`;
  let warmTarget = `127.0.0.1:${await unusedPort()}`;
  while (warmTarget === target) warmTarget = `127.0.0.1:${await unusedPort()}`;
  progress(`backend down: nothing listens on ${target} (warm-up on ${warmTarget})`);
  const results: WayResult[] = [];
  // The pools first, each in a fresh process; then the naive way.
  for (const way of WAYS) {
    const run = await runNodeChild(fileURLToPath(import.meta.url), [`--way=${way}`, `--target=${target}`, `--warm-target=${warmTarget}`], {
      timeoutMs: 180_000,
      // Room for the naive way's orphaned channels (about 1.3 GB of heap at 100k).
      nodeFlags: way === 'naive' ? ['--max-old-space-size=6144'] : [],
    });
    const result = markedJson<WayResult>(run.lines, WAY_MARKER);
    if (result === undefined) throw new Error(`${way}: child exited (code ${run.code}, signal ${run.signal}) without a result`);
    results.push(result);
  }
  writeFileSync(SVG_PATH, leakSvg(results));

  const byWay = (way: Way): WayResult => results.find((r) => r.way === way)!;
  const pool = byWay('pool');
  const poolNoBreaker = byWay('pool-no-breaker');
  const naive = byWay('naive');
  const rows: string[][] = [];
  for (const result of results) {
    const base = result.rows[0]!;
    for (const r of result.rows) {
      rows.push([
        WAY_LABELS[result.way],
        fmt.int(r.calls),
        `${fmt.int(r.failed)}/${fmt.int(r.calls)}`,
        fmt.fixed(r.heapMb),
        fmt.fixed(r.heapMb - base.heapMb, 2),
        fmt.fixed(r.rssMb),
        fmt.int(r.channels),
        fmt.fixed(r.callSec),
      ]);
    }
  }
  const lastOf = (r: WayResult): Row => r.rows[r.rows.length - 1]!;
  const growthMb = (r: WayResult): number => lastOf(r).heapMb - r.rows[0]!.heapMb;
  const failuresText = (r: WayResult): string =>
    Object.entries(r.failures)
      .sort((x, y) => y[1] - x[1])
      .map(([kind, n]) => `${fmt.int(n)} ${kind}`)
      .join(', ');
  const poolNote = (r: WayResult): string => {
    const last = lastOf(r);
    const at1k = r.rows.find((row) => row.calls === 1_000);
    return (
      `${WAY_LABELS[r.way]}: heap growth ${fmt.fixed(growthMb(r), 2)} MB from its baseline to ${fmt.int(last.calls)} failed calls` +
      (at1k === undefined ? '' : `, ${fmt.fixed(last.heapMb - at1k.heapMb, 2)} MB from 1k`) +
      `, ${fmt.fixed(last.heapMb - r.coldHeapMb, 2)} MB from the cold process start (warm-up included); channels ${last.channels}. Failures: ${failuresText(r)}.`
    );
  };
  const naiveLast = lastOf(naive);
  const naiveKbPerCall = (growthMb(naive) * 1024) / naiveLast.calls;
  const naive10k = naive.rows.find((r) => r.calls === 10_000);
  const notes: string[] = [
    `backend down: nothing listens on ${target}; every call fails. Concurrency ${CONCURRENCY}. Heap is heapUsed after two full GCs. Each way in its own fresh process, the pools first.`,
    `baseline (calls 0): after a warm-up of ${fmt.int(WARMUP_CALLS)} failed calls on a throwaway client of the same kind to another dead port, closed; so one-time costs (compiled code, first connection attempt) are not counted as growth. Cold process heap before the warm-up: ${results.map((r) => `${r.way} ${fmt.fixed(r.coldHeapMb)} MB`).join(', ')}.`,
    `naive: heap growth ${fmt.fixed(growthMb(naive))} MB over ${fmt.int(naiveLast.calls)} failed calls = ${fmt.fixed(naiveKbPerCall)} KB per failed call; ${fmt.int(naiveLast.channels)} clients (channels) created. Failures: ${failuresText(naive)}.`,
    poolNote(pool),
    poolNote(poolNoBreaker),
    'with the breaker armed (the pool row) the circuit opens after ~20 failures and the calls after that are refused before reaching grpc-js (CircuitOpenError); the breaker-off row sends every call through the channel.',
  ];
  if (naive10k !== undefined) {
    notes.push(
      `naive: 10k failed calls took ${fmt.fixed(naive10k.callSec)} s of calls` +
        (naive.projectedSecToLast === undefined ? '' : `; 100k projected at ${fmt.fixed(naive.projectedSecToLast)} s of calls from the trend of the latest segments`) +
        (naive.stopped === undefined ? `, within the ${NAIVE_BUDGET_SEC} s budget, so it ran to ${fmt.int(naiveLast.calls)}` : '') +
        '.',
    );
  }
  if (naive.stopped !== undefined) notes.push(`naive ${naive.stopped}. The pools ran to ${fmt.int(lastOf(pool).calls)}.`);
  notes.push(`chart: ${SVG_PATH.replace(`${BENCH_DIR}`, 'bench/')}`);

  const poolLast = lastOf(pool);
  const nbLast = lastOf(poolNoBreaker);
  const last = CHECKPOINTS[CHECKPOINTS.length - 1]!;
  const targets: Target[] = [
    {
      what: `pool heap growth at ${fmt.int(poolLast.calls)} failed calls`,
      figure: `${fmt.fixed(growthMb(pool), 2)} MB`,
      target: `< ${POOL_GROWTH_TARGET_MB} MB`,
      met: poolLast.calls === last && growthMb(pool) < POOL_GROWTH_TARGET_MB,
    },
    { what: `pool channels at ${fmt.int(poolLast.calls)} failed calls`, figure: String(poolLast.channels), target: '1', met: poolLast.channels === 1 },
    {
      what: `(check) pool, breaker off: heap growth at ${fmt.int(nbLast.calls)}`,
      figure: `${fmt.fixed(growthMb(poolNoBreaker), 2)} MB`,
      target: `< ${POOL_GROWTH_TARGET_MB} MB`,
      met: nbLast.calls === last && growthMb(poolNoBreaker) < POOL_GROWTH_TARGET_MB,
    },
    { what: `(check) pool, breaker off: channels at ${fmt.int(nbLast.calls)}`, figure: String(nbLast.channels), target: '1', met: nbLast.channels === 1 },
  ];
  report({
    name: 'leak-curve',
    title: 'Leak curve: failed calls against a down backend, naive client-per-failure vs one pool',
    durationSec: (performance.now() - startedAt) / 1000,
    tables: [
      {
        title: 'leak-curve (heap after full GC; Δheap from the way\'s baseline at 0 calls)',
        header: ['way', 'calls', 'failed', 'heap MB', 'Δheap MB', 'RSS MB', 'channels', 'call s'],
        rows,
      },
    ],
    targets,
    notes,
    data: { target, concurrency: CONCURRENCY, naiveKbPerCall, poolGrowthMb: growthMb(pool), poolNoBreakerGrowthMb: growthMb(poolNoBreaker), results },
  });
}

const wayArg = process.argv.find((a) => a.startsWith('--way='))?.slice('--way='.length);
if (!isMain(import.meta.url)) {
  // Imported (e.g. for leakSvg): run nothing.
} else if (isWay(wayArg)) {
  const target = process.argv.find((a) => a.startsWith('--target='))?.slice('--target='.length);
  const warmTarget = process.argv.find((a) => a.startsWith('--warm-target='))?.slice('--warm-target='.length);
  if (target === undefined || warmTarget === undefined) throw new Error('--target= and --warm-target= are required');
  const result = await runWay(wayArg, target, warmTarget);
  process.stdout.write(`${WAY_MARKER}${JSON.stringify(result)}\n`);
  // The naive way's orphaned channels keep timers alive: another face of the leak. Exit anyway.
  process.exit(0);
} else {
  await parent();
}
