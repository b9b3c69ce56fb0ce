// What does resilient-grpc cost on a server stream of small messages, next to a raw grpc-js
// client?
//
// TestService.ServerStream against the test server running in its own process: each round is
// one stream of MESSAGES small messages (StreamRequest { message: 'x', count: MESSAGES }), read
// to the end with `for await`. The two contenders run side by side in interleaved rounds (raw,
// resilient, raw, resilient, ...), one warm-up stream each first, a full GC before every round.
//   raw grpc-js:     new TestServiceClient(address, insecure), client.ServerStream(req, { deadline })
//   resilient-grpc:  new ChannelPool(ARMED).client(TestServiceClient, address,
//                      { methods: { ServerStream: { deadlineMs: 120_000 } } }), client.ServerStream(req)
// Per contender: messages/s and client CPU µs per message (process.cpuUsage, every thread of
// this process), medians over rounds, and ratios vs raw grpc-js (medians of per-round ratios).
//
// Run alone: node --expose-gc --import tsx bench/stream-overhead.ts
//   BENCH_ROUNDS (default 5), BENCH_STREAM_MESSAGES (default 100000, at most 100000)
import * as grpc from '@grpc/grpc-js';
import { TestServiceClient } from '../test/helpers/protos.js';
import type { EchoResponse, StreamRequest } from '../test/helpers/protos.js';
import { MAX_STREAM_MESSAGES } from '../test/helpers/test-handlers.js';
import { startTestServerProcess } from '../test/helpers/test-server-process.js';
import { ARMED, fmt, interleavedRounds, progress, report, type Contender, type ContenderSummary, type StartCall, type Target, loadPackage } from './lib.js';

const { ChannelPool } = await loadPackage();

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 5);
/** Messages per stream, i.e. per round. The test server sends at most MAX_STREAM_MESSAGES. */
const MESSAGES = Math.min(Number(process.env.BENCH_STREAM_MESSAGES ?? 100_000), MAX_STREAM_MESSAGES);
const DEADLINE_MS = 120_000;
const REQUEST: StreamRequest = { message: 'x', count: MESSAGES, intervalMs: 0, failCode: 0 };
/** Our own target: the issue asks only for the figure. */
const RATE_TARGET = 0.9;

const RAW = 'raw grpc-js';
const RESILIENT = 'resilient-grpc';

/** The raw grpc-js client's ServerStream (the loaded constructor is untyped). */
interface RawTestClient extends grpc.Client {
  ServerStream(request: StreamRequest, options: grpc.CallOptions): grpc.ClientReadableStream<EchoResponse>;
}

/**
 * Reads a whole stream with for await and checks it: every message, in order, the last one
 * numbered MESSAGES - 1. A stream that delivers anything else fails the benchmark.
 */
async function consume(stream: AsyncIterable<EchoResponse>): Promise<void> {
  let received = 0;
  let last: EchoResponse | undefined;
  for await (const message of stream) {
    received++;
    last = message;
  }
  if (received !== MESSAGES || last?.count !== MESSAGES - 1 || last.message !== `${REQUEST.message}-${MESSAGES - 1}`) {
    throw new Error(`stream delivered ${received}/${MESSAGES} messages, last ${JSON.stringify(last)}`);
  }
}

/** One round = one whole stream: `done` once it has been read to the end (or failed). */
function streamCall(open: () => AsyncIterable<EchoResponse>): StartCall {
  return (done) => {
    consume(open()).then(
      () => done(),
      (error: unknown) => done(error ?? new Error('stream failed')),
    );
  };
}

const startedAt = performance.now();
const server = await startTestServerProcess();
const raw = new TestServiceClient(server.address, grpc.credentials.createInsecure()) as unknown as RawTestClient;
const pool = new ChannelPool(ARMED);
const resilient = pool.client(TestServiceClient, server.address, { methods: { ServerStream: { deadlineMs: DEADLINE_MS } } });

const contenders: Contender[] = [
  { name: RAW, start: streamCall(() => raw.ServerStream(REQUEST, { deadline: Date.now() + DEADLINE_MS })) },
  { name: RESILIENT, start: streamCall(() => resilient.ServerStream(REQUEST) as AsyncIterable<EchoResponse>) },
];

let summaries: ContenderSummary[];
try {
  progress(`${ROUNDS} rounds per contender, one stream of ${fmt.int(MESSAGES)} messages per round`);
  summaries = await interleavedRounds({
    contenders,
    baseline: RAW,
    rounds: ROUNDS,
    // A "call" of the driver is one whole stream.
    callsPerRound: 1,
    concurrency: 1,
    warmupCalls: 1,
    onRound: (round, name, f) =>
      progress(
        `round ${round + 1} ${name.padEnd(14)} ${fmt.int(f.callsPerSec * MESSAGES)} msgs/s  ${fmt.fixed(f.cpuUsPerCall / MESSAGES, 2)} µs/msg  (${fmt.int(f.wallMs)} ms)`,
      ),
  });
} finally {
  raw.close();
  await pool.close({ graceMs: 0 });
  await server.kill();
}

// ---------------------------------------------------------------------------------------------
// Report

// The driver's figures are per stream; per message they are the same ratios, scaled.
const rows = summaries.map((s) => [
  s.name,
  fmt.int(s.callsPerSec * MESSAGES),
  fmt.pct(s.rateSpread),
  fmt.ratio(s.rateRatio),
  fmt.fixed(s.cpuUsPerCall / MESSAGES, 2),
  fmt.pct(s.cpuSpread),
  fmt.ratio(s.cpuRatio),
  `${s.rounds.length}×${fmt.int(MESSAGES)}`,
]);
const roundRows = summaries[0]!.rounds.map((_, i) => [
  String(i + 1),
  ...summaries.flatMap((s) => [fmt.int(s.rounds[i]!.callsPerSec * MESSAGES), fmt.fixed(s.rounds[i]!.cpuUsPerCall / MESSAGES, 2)]),
]);
const ours = summaries.find((s) => s.name === RESILIENT)!;
const targets: Target[] = [
  {
    what: `resilient-grpc messages/s vs raw (server stream, ${fmt.int(MESSAGES)} messages)`,
    figure: fmt.ratio(ours.rateRatio, 3),
    target: `≥ ${RATE_TARGET.toFixed(2)}× (ours)`,
    met: ours.rateRatio >= RATE_TARGET,
  },
];

report({
  name: 'stream-overhead',
  title: `Server-stream overhead: messages/s and client CPU per message (ServerStream, ${fmt.int(MESSAGES)} small messages per stream, server in its own process)`,
  durationSec: (performance.now() - startedAt) / 1000,
  tables: [
    {
      title: 'stream-overhead (medians over interleaved rounds, one stream per round; ±: half the interquartile range; ×: vs raw grpc-js, median of per-round ratios)',
      header: ['contender', 'msgs/s', '±', '× raw', 'CPU µs/msg', '±', '× raw', 'rounds×msgs'],
      rows,
    },
    {
      title: 'stream-overhead per round (in the order run: raw, then resilient-grpc, each round)',
      header: ['round', ...summaries.flatMap((s) => [`${s.name} msgs/s`, `${s.name} CPU µs/msg`])],
      rows: roundRows,
    },
  ],
  targets,
  notes: [
    `each stream: StreamRequest ${JSON.stringify(REQUEST)}; every message (message 'x-<i>', count i, no payload) is read with for await and the count and last message are checked.`,
    `raw grpc-js: client.ServerStream(req, { deadline: Date.now() + ${DEADLINE_MS} }) read as a Node Readable; resilient-grpc: new ChannelPool(${JSON.stringify(ARMED)}), methods.ServerStream.deadlineMs ${DEADLINE_MS}, its own async iterator (a bounded queue that pauses the grpc-js stream past 16 buffered messages).`,
    `CPU is the client process only (user + system, all threads, GC included); the server runs in its own process on the same machine. The client was busy ${summaries.map((s) => `${fmt.fixed(s.cpuUsPerCall * s.callsPerSec / 1e4, 0)}% (${s.name})`).join(', ')} of the wall time (CPU µs/msg × msgs/s): the rest of a stream's time it waits for the server.`,
    'the ≥ 0.90× messages/s target is ours; the issue asks only for the figure.',
  ],
  data: summaries,
});
