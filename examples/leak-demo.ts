// The incident, replayed: a backend goes down and the client keeps calling it.
//
// The naive way builds a new grpc-js client "to reconnect" after every failed call and never
// closes the old one; each orphan keeps its channel, resolver, load balancer and reconnect
// timers. The pool keeps one channel and lets grpc-js's own backoff reconnect.
//
// Run: npm run demo            (node --expose-gc, so heap figures are after a full GC)
//      npm run demo -- 20000   (more failed calls per way; default 8000)
import * as grpc from '@grpc/grpc-js';
import { ChannelPool, CircuitOpenError } from '../src/index.js';
import { loadUserService, startUserServer } from './embedded-server.js';

const TOTAL_CALLS = Number(process.argv[2] ?? 8_000);
const STEPS = 4;
const CONCURRENCY = 50;
const CALL_DEADLINE_MS = 1_000;

type Call = (id: number) => Promise<unknown>;

interface Row {
  way: string;
  calls: number;
  failed: number;
  heapMb: number;
  rssMb: number;
  channels: number;
}

function heapMb(): { heap: number; rss: number } {
  globalThis.gc?.();
  const { heapUsed, rss } = process.memoryUsage();
  return { heap: heapUsed / 2 ** 20, rss: rss / 2 ** 20 };
}

/** Runs `count` calls, `CONCURRENCY` at a time; returns how many failed. */
async function run(call: Call, count: number): Promise<number> {
  let next = 0;
  let failed = 0;
  const worker = async (): Promise<void> => {
    while (next < count) {
      const id = next++;
      await call(id).catch(() => failed++);
    }
  };
  await Promise.all(Array.from({ length: CONCURRENCY }, worker));
  return failed;
}

/** A grpc-js UserService client, as the incident's code used it. */
interface RawUserClient extends grpc.Client {
  QueryBasicInfoByID(
    request: { id: number },
    options: grpc.CallOptions,
    callback: (error: grpc.ServiceError | null, reply?: unknown) => void,
  ): grpc.ClientUnaryCall;
}

/** The incident's pattern: one client per upstream, replaced (never closed) after each failure. */
function naiveWay(UserService: grpc.ServiceClientConstructor, target: string) {
  const connect = () => new UserService(target, grpc.credentials.createInsecure()) as unknown as RawUserClient;
  let client = connect();
  let created = 1;
  const call: Call = (id) =>
    new Promise((resolve, reject) => {
      const deadline = Date.now() + CALL_DEADLINE_MS;
      client.QueryBasicInfoByID({ id }, { deadline }, (error, reply) => {
        if (error === null) return resolve(reply);
        // "Reconnect": the bug. The old client (and its channel) is never closed.
        client = connect();
        created++;
        reject(error);
      });
    });
  return { call, channels: () => created, close: () => client.close() };
}

/** Calls refused by the pool's open circuit, without touching the network. */
let refusedByBreaker = 0;

function poolWay(UserService: grpc.ServiceClientConstructor, target: string) {
  const pool = new ChannelPool({ deadlineMs: CALL_DEADLINE_MS });
  const users = pool.client(UserService, target);
  const call: Call = (id) =>
    users.QueryBasicInfoByID({ id }).catch((error: unknown) => {
      if (error instanceof CircuitOpenError) refusedByBreaker++;
      throw error;
    });
  return { call, channels: () => pool.stats().channels, close: () => pool.close({ graceMs: 0 }) };
}

async function measure(way: string, subject: ReturnType<typeof poolWay> | ReturnType<typeof naiveWay>): Promise<Row[]> {
  const rows: Row[] = [];
  const base = heapMb();
  rows.push({ way, calls: 0, failed: 0, heapMb: base.heap, rssMb: base.rss, channels: subject.channels() });
  let calls = 0;
  let failed = 0;
  for (let step = 1; step <= STEPS; step++) {
    const count = Math.round((TOTAL_CALLS * step) / STEPS) - calls;
    failed += await run(subject.call, count);
    calls += count;
    const now = heapMb();
    rows.push({ way, calls, failed, heapMb: now.heap, rssMb: now.rss, channels: subject.channels() });
  }
  await subject.close();
  return rows;
}

function print(rows: Row[]): void {
  const header = ['way', 'failed calls', 'heap MB', 'RSS MB', 'channels'];
  const lines = rows.map((r) => [r.way, `${r.failed}/${r.calls}`, r.heapMb.toFixed(1), r.rssMb.toFixed(1), String(r.channels)]);
  const widths = header.map((h, i) => Math.max(h.length, ...lines.map((l) => l[i]!.length)));
  const fmt = (cells: string[]) => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ');
  console.log(fmt(header));
  for (const line of lines) console.log(fmt(line));
}

if (!globalThis.gc) console.warn('(run with node --expose-gc for heap figures after a full GC: npm run demo)');

const UserService = loadUserService();
const server = await startUserServer();
const target = server.address;

// Both ways work while the backend is up...
const warmNaive = naiveWay(UserService, target);
const warmPool = poolWay(UserService, target);
await run(warmNaive.call, 100);
await run(warmPool.call, 100);
console.log(
  `backend up at ${target}: 100 calls each way succeeded; naive channels ${warmNaive.channels()}, pool channels ${warmPool.channels()}`,
);
warmNaive.close();
await warmPool.close();

// ...then it goes down, and every call fails with UNAVAILABLE.
server.kill();
console.log(`backend down: ${TOTAL_CALLS} failing calls each way, ${CONCURRENCY} at a time\n`);

// The pool runs first so its figures start from a heap the naive way has not yet grown.
const pooled = await measure('resilient-grpc pool', poolWay(UserService, target));
const naive = await measure('naive: new client per failure', naiveWay(UserService, target));
print([...pooled, ...naive]);

const growth = (rows: Row[]) => rows[rows.length - 1]!.heapMb - rows[0]!.heapMb;
console.log(
  `\nheap growth: naive ${growth(naive).toFixed(1)} MB (${((growth(naive) * 1024) / TOTAL_CALLS).toFixed(1)} KB per failed call), ` +
    `pool ${growth(pooled).toFixed(1)} MB; channels: naive ${naive[naive.length - 1]!.channels}, pool ${pooled[pooled.length - 1]!.channels}`,
);
console.log(
  `the pool's circuit breaker opened after its first failures: ${refusedByBreaker} of its ${TOTAL_CALLS} calls were refused ` +
    'at once (CircuitOpenError) without touching the network; the rest rode grpc-js reconnection on the one channel.',
);
// The naive way's orphaned channels keep reconnect timers alive: without this the process
// would not end (another face of the same leak).
process.exit(0);
