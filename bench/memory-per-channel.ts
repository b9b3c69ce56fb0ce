// Heap bytes per pooled channel: one pool (the ARMED configuration of lib.ts), one client on
// each of 1,000 distinct targets 127.0.0.1:<port> where nothing listens. No call is made, so the
// channels stay idle: no resolution, no connection attempt. Heap after full GC before and after
// creating the 1,000 clients, repeated REPS times with a fresh pool, median reported.
// For reference, the same for 1,000 raw grpc-js clients (each has its own channel).
//
// The pool makes a channel's circuit breaker lazily, at the first call of a method on it, so an
// idle channel holds none. Its size is measured apart, on 1,000 instances of the pool's own
// Breaker (src/circuit-breaker.ts, an internal class) with ARMED's breaker options, and added to
// give the figure of a channel that has made calls (its connection state aside).
//
// Run alone: node --expose-gc --import tsx bench/memory-per-channel.ts
import * as grpc from '@grpc/grpc-js';
import { Breaker, BucketRotation } from '../src/channel/circuit-breaker.js';
import { resolveBreaker } from '../src/config/breaker-options.js';
import { TestServiceClient } from '../test/helpers/protos.js';
import { ARMED, fmt, median, memoryAfterGc, portIsFree, progress, report, type Target, loadPackage } from './lib.js';

const { ChannelPool } = await loadPackage();

const CHANNELS = 1_000;
const WARMUP_CHANNELS = 50;
const REPS = 3;
const FIRST_PORT = 30_000;

/** `count` ports on 127.0.0.1, from FIRST_PORT up, that nothing listens on right now. */
async function freePorts(count: number): Promise<number[]> {
  const ports: number[] = [];
  for (let port = FIRST_PORT; ports.length < count && port < 65_536; port++) {
    if (await portIsFree(port)) ports.push(port);
  }
  if (ports.length < count) throw new Error(`only ${ports.length} free ports found`);
  return ports;
}

interface Measure {
  bytes: number;
  channels: number;
}

/** Heap growth for creating what `create` returns (kept alive until measured), then released. */
async function measure(create: () => { keep: unknown; channels: () => number; release: () => Promise<unknown> }): Promise<Measure> {
  const before = memoryAfterGc();
  const made = create();
  const after = memoryAfterGc();
  const channels = made.channels();
  await made.release();
  return { bytes: after.heapBytes - before.heapBytes, channels };
}

function pooled(targets: readonly string[]) {
  return () => {
    const pool = new ChannelPool(ARMED);
    const keep = targets.map((target) => pool.client(TestServiceClient, target));
    return { keep, channels: () => pool.stats().channels, release: () => pool.close({ graceMs: 0 }) };
  };
}

function raw(targets: readonly string[]) {
  return () => {
    const keep = targets.map((target) => new TestServiceClient(target, grpc.credentials.createInsecure()));
    return {
      keep,
      channels: () => keep.length,
      release: () => {
        for (const client of keep) client.close();
        return Promise.resolve();
      },
    };
  };
}

function breakers(count: number) {
  return () => {
    const options = resolveBreaker(ARMED.breaker);
    if (options === false) throw new Error('ARMED has no breaker');
    const rotation = new BucketRotation();
    const keep = Array.from({ length: count }, () => new Breaker(options, undefined, rotation, () => {}));
    return {
      keep,
      channels: () => keep.length,
      release: () => {
        for (const breaker of keep) breaker.shutdown();
        rotation.close();
        return Promise.resolve();
      },
    };
  };
}

const startedAt = performance.now();
const ports = await freePorts(CHANNELS + WARMUP_CHANNELS);
const targets = ports.slice(0, CHANNELS).map((p) => `127.0.0.1:${p}`);
const warmTargets = ports.slice(CHANNELS).map((p) => `127.0.0.1:${p}`);

// Warm-up: compile the code paths on other targets first, so they are not counted per channel.
await measure(pooled(warmTargets));
await measure(raw(warmTargets));
await measure(breakers(WARMUP_CHANNELS));

const results = { pool: [] as Measure[], raw: [] as Measure[], breaker: [] as Measure[] };
for (let rep = 0; rep < REPS; rep++) {
  // Interleaved, so both see the same state of the process.
  const p = await measure(pooled(targets));
  const r = await measure(raw(targets));
  const b = await measure(breakers(CHANNELS));
  results.pool.push(p);
  results.raw.push(r);
  results.breaker.push(b);
  progress(
    `rep ${rep + 1}: pool ${fmt.fixed(p.bytes / 1024 / p.channels, 2)} KB/channel (${p.channels} channels), ` +
      `breaker ${fmt.fixed(b.bytes / 1024 / b.channels, 2)} KB, raw grpc-js ${fmt.fixed(r.bytes / 1024 / r.channels, 2)} KB/client`,
  );
}

const kbPer = (m: Measure): number => m.bytes / 1024 / m.channels;
const poolKb = median(results.pool.map(kbPer));
const rawKb = median(results.raw.map(kbPer));
const breakerKb = median(results.breaker.map(kbPer));
const poolChannels = results.pool.map((m) => m.channels);
const rows = [
  [
    'resilient-grpc pool: 1 client per target',
    fmt.int(CHANNELS),
    results.pool.map((m) => fmt.int(m.channels)).join('/'),
    results.pool.map((m) => fmt.fixed(kbPer(m), 2)).join(' / '),
    fmt.fixed(poolKb, 2),
    fmt.fixed((poolKb * CHANNELS) / 1024, 2),
  ],
  [
    '+ its circuit breaker (made at the first call)',
    fmt.int(CHANNELS),
    '-',
    results.breaker.map((m) => fmt.fixed(kbPer(m), 2)).join(' / '),
    fmt.fixed(breakerKb, 2),
    fmt.fixed((breakerKb * CHANNELS) / 1024, 2),
  ],
  ['= pooled channel with its breaker', fmt.int(CHANNELS), '', '', fmt.fixed(poolKb + breakerKb, 2), fmt.fixed(((poolKb + breakerKb) * CHANNELS) / 1024, 2)],
  [
    'raw grpc-js: new Client per target (reference)',
    fmt.int(CHANNELS),
    results.raw.map((m) => fmt.int(m.channels)).join('/'),
    results.raw.map((m) => fmt.fixed(kbPer(m), 2)).join(' / '),
    fmt.fixed(rawKb, 2),
    fmt.fixed((rawKb * CHANNELS) / 1024, 2),
  ],
];
const targetsMet: Target[] = [
  {
    what: `(check) one channel per target`,
    figure: poolChannels.map(String).join('/'),
    target: String(CHANNELS),
    met: poolChannels.every((c) => c === CHANNELS),
  },
];
report({
  name: 'memory-per-channel',
  title: `Memory per pooled channel (${fmt.int(CHANNELS)} idle targets, no calls)`,
  durationSec: (performance.now() - startedAt) / 1000,
  tables: [
    {
      title: `memory-per-channel (heap after full GC, ${REPS} reps; median)`,
      header: ['what', 'targets', 'channels', 'KB/channel per rep', 'KB/channel', `MB per ${fmt.int(CHANNELS)}`],
      rows,
    },
  ],
  targets: targetsMet,
  notes: [
    `pool: new ChannelPool(${JSON.stringify(ARMED)}), one pool.client(TestServiceClient, target) per target; the figure includes the client objects and all per-channel state of the pool.`,
    'channels are idle (no call made): grpc-js has not resolved the target nor created a subchannel; a channel that has connected holds more (subchannel, HTTP/2 session, buffers).',
    `a warm-up on ${WARMUP_CHANNELS} other targets runs first, so compiled code is not counted per channel.`,
    `the pool creates a channel's breaker lazily, at its first call, so the idle figure has none; the breaker row measures ${fmt.int(CHANNELS)} instances of the pool's Breaker (src/circuit-breaker.ts) with ARMED's options (${JSON.stringify(ARMED.breaker)}: defaults), sharing one bucket-rotation timer as a pool's do.`,
  ],
  data: { channels: CHANNELS, poolKbPerChannel: poolKb, breakerKb, rawKbPerClient: rawKb, results },
});
