// What does resilient-grpc cost on a stream, next to a raw grpc-js client? Two parts, each its
// own set of interleaved rounds in this one process, against the test server running in its own
// process; a full GC before every round, one warm-up stream per contender first.
//
// Server stream: TestService.ServerStream, each round one stream of MESSAGES small messages
// (StreamRequest { message: 'x', count: MESSAGES }), read to the end with `for await`.
//   raw grpc-js:     new TestServiceClient(address, insecure), client.ServerStream(req, { deadline })
//   resilient-grpc:  new ChannelPool(ARMED).client(TestServiceClient, address,
//                      { methods: { ServerStream: { deadlineMs: 120_000 } } }), client.ServerStream(req)
// Per contender: messages/s and client CPU µs per message.
//
// Bidi ping-pong: TestService.Bidi (the server echoes each request as it arrives, count = its
// index), each round one stream of ROUND_TRIPS round trips: write one request, wait for its
// response, then write the next; after the last response the client half-closes.
//   raw grpc-js:     client.Bidi({ deadline }), call.write(req) and 'data' events, call.end()
//   A/A control:     the same, on a second raw client (a channel of its own)
//   resilient-grpc:  the same pool client (methods.Bidi.deadlineMs 120_000), client.Bidi(requests)
//                    read with for await; `requests` is an async generator that yields the next
//                    request only once the previous response has been read.
// Per contender: round trips/s and client CPU µs per round trip.
//
// CPU is process.cpuUsage (every thread of this process); figures are medians over rounds,
// ratios vs raw grpc-js are medians of per-round ratios. Every response is checked.
//
// Run alone: node --expose-gc --import tsx bench/stream-overhead.ts
//   BENCH_ROUNDS (default 6), BENCH_STREAM_MESSAGES (default 100000, at most 100000),
//   BENCH_BIDI_ROUND_TRIPS (default 20000)
import * as grpc from '@grpc/grpc-js';
import { TestServiceClient } from '../test/helpers/protos.js';
import type { EchoRequest, EchoResponse, StreamRequest } from '../test/helpers/protos.js';
import { MAX_STREAM_MESSAGES } from '../test/helpers/test-handlers.js';
import { startTestServerProcess } from '../test/helpers/test-server-process.js';
import { ARMED, fmt, interleavedRounds, progress, report, type Contender, type ContenderSummary, type StartCall, type Table, type Target, loadPackage } from './lib.js';

const { ChannelPool } = await loadPackage();

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 6);
/** Messages per stream, i.e. per round. The test server sends at most MAX_STREAM_MESSAGES. */
const MESSAGES = Math.min(Number(process.env.BENCH_STREAM_MESSAGES ?? 100_000), MAX_STREAM_MESSAGES);
/** Round trips per bidi stream, i.e. per round. */
const ROUND_TRIPS = Number(process.env.BENCH_BIDI_ROUND_TRIPS ?? 20_000);
const DEADLINE_MS = 120_000;
const REQUEST: StreamRequest = { message: 'x', count: MESSAGES, intervalMs: 0, failCode: 0 };
/** The bidi requests, made once and shared by every contender: no per-message work of ours. */
const PINGS: readonly EchoRequest[] = Array.from({ length: ROUND_TRIPS }, (_, i) => ({ message: `ping-${i}`, delayMs: 0, payload: Buffer.alloc(0) }));
/** Our own target: the issue asks only for the figure. */
const RATE_TARGET = 0.9;
/** Issue 18's targets: client CPU per message / per round trip vs raw grpc-js. */
const STREAM_CPU_TARGET = 1.03;
const BIDI_CPU_TARGET = 1.05;

if (!Number.isInteger(ROUNDS) || ROUNDS < 1) throw new Error(`BENCH_ROUNDS must be an integer >= 1, got ${process.env.BENCH_ROUNDS}`);
if (!Number.isInteger(MESSAGES) || MESSAGES < 1) throw new Error(`BENCH_STREAM_MESSAGES must be an integer >= 1, got ${process.env.BENCH_STREAM_MESSAGES}`);
if (!Number.isInteger(ROUND_TRIPS) || ROUND_TRIPS < 1) throw new Error(`BENCH_BIDI_ROUND_TRIPS must be an integer >= 1, got ${process.env.BENCH_BIDI_ROUND_TRIPS}`);

const RAW = 'raw grpc-js';
const CONTROL = 'raw grpc-js again (A/A control)';
const RESILIENT = 'resilient-grpc';
/** Raw grpc-js driven the way the package's API is: requests from an async iterable, responses read with for await. */
const RAW_ITERABLE = 'raw grpc-js, async iterables';

/** The raw grpc-js client's streaming methods (the loaded constructor is untyped). */
interface RawTestClient extends grpc.Client {
  ServerStream(request: StreamRequest, options: grpc.CallOptions): grpc.ClientReadableStream<EchoResponse>;
  Bidi(options: grpc.CallOptions): grpc.ClientDuplexStream<EchoRequest, EchoResponse>;
}

/** Adapts one promise-returning stream to the driver: one "call" = one whole stream. */
function streamCall(run: () => Promise<void>): StartCall {
  return (done) => {
    run().then(
      () => done(),
      (error: unknown) => done(error ?? new Error('stream failed')),
    );
  };
}

// ---------------------------------------------------------------------------------------------
// Server stream

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

// ---------------------------------------------------------------------------------------------
// Bidi ping-pong

/** Why response `i` is not the echo of ping `i`, or undefined when it is. */
function mismatch(response: EchoResponse, i: number): string | undefined {
  if (i < ROUND_TRIPS && response.count === i && response.message === PINGS[i]!.message) return undefined;
  return `response ${i + 1}/${ROUND_TRIPS} is ${JSON.stringify({ message: response.message, count: response.count })}, expected the echo of ${PINGS[i]?.message ?? 'nothing (one too many)'}`;
}

function countError(received: number): Error {
  return new Error(`bidi stream ended after ${received}/${ROUND_TRIPS} responses`);
}

/** Raw grpc-js: write a ping, on its 'data' check it and write the next; end after the last. */
function rawPingPong(client: RawTestClient): Promise<void> {
  return new Promise((resolve, reject) => {
    const call = client.Bidi({ deadline: Date.now() + DEADLINE_MS });
    let received = 0;
    let failure: Error | undefined;
    call.on('data', (response: EchoResponse) => {
      if (failure !== undefined) return;
      const wrong = mismatch(response, received);
      if (wrong !== undefined) {
        failure = new Error(wrong);
        call.cancel();
        return;
      }
      received++;
      if (received < ROUND_TRIPS) call.write(PINGS[received]!);
      else call.end();
    });
    // A failed call emits 'error' (and 'status'); a successful one only 'status'.
    call.on('error', (error: Error) => reject(failure ?? error));
    call.on('status', (s: grpc.StatusObject) => {
      if (s.code !== grpc.status.OK) return;
      if (failure !== undefined) reject(failure);
      else if (received !== ROUND_TRIPS) reject(countError(received));
      else resolve();
    });
    call.write(PINGS[0]!);
  });
}

/** One-slot hand-off from the reader to the request generator: "the response is in". */
class Turn {
  #waiter: (() => void) | undefined;
  #ready = false;

  wait(): Promise<void> {
    if (this.#ready) {
      this.#ready = false;
      return Promise.resolve();
    }
    return new Promise((resolve) => {
      this.#waiter = resolve;
    });
  }

  pass(): void {
    const waiter = this.#waiter;
    if (waiter === undefined) this.#ready = true;
    else {
      this.#waiter = undefined;
      waiter();
    }
  }
}

/** The requests of one ping-pong: each ping only after the previous one's response was read. */
async function* pings(turn: Turn): AsyncGenerator<EchoRequest, void, undefined> {
  for (let i = 0; i < ROUND_TRIPS; i++) {
    yield PINGS[i]!;
    await turn.wait();
  }
}

/**
 * Raw grpc-js in the package's shape: `requests` written as they come (waiting for 'drain' when
 * grpc-js asks to), then end(); the call itself (a Node Duplex) read with for await.
 */
function rawIterableBidi(client: RawTestClient, requests: AsyncIterable<EchoRequest>): AsyncIterable<EchoResponse> {
  const call = client.Bidi({ deadline: Date.now() + DEADLINE_MS });
  void (async () => {
    try {
      for await (const request of requests) {
        if (!call.write(request)) await new Promise((resolve) => call.once('drain', resolve));
      }
      call.end();
    } catch (error) {
      call.cancel();
      throw error;
    }
  })();
  return call as unknown as AsyncIterable<EchoResponse>;
}

/** resilient-grpc: client.Bidi(pings) read with for await; each response releases the next ping. */
async function resilientPingPong(open: (requests: AsyncIterable<EchoRequest>) => AsyncIterable<EchoResponse>): Promise<void> {
  const turn = new Turn();
  let received = 0;
  for await (const response of open(pings(turn))) {
    const wrong = mismatch(response, received);
    if (wrong !== undefined) throw new Error(wrong);
    received++;
    turn.pass();
  }
  if (received !== ROUND_TRIPS) throw countError(received);
}

// ---------------------------------------------------------------------------------------------
// Run

const startedAt = performance.now();
const server = await startTestServerProcess();
const raw = new TestServiceClient(server.address, grpc.credentials.createInsecure()) as unknown as RawTestClient;
const rawAgain = new TestServiceClient(server.address, grpc.credentials.createInsecure()) as unknown as RawTestClient;
const pool = new ChannelPool(ARMED);
const resilient = pool.client(TestServiceClient, server.address, {
  methods: { ServerStream: { deadlineMs: DEADLINE_MS }, Bidi: { deadlineMs: DEADLINE_MS } },
});

const streamContenders: Contender[] = [
  { name: RAW, start: streamCall(() => consume(raw.ServerStream(REQUEST, { deadline: Date.now() + DEADLINE_MS }))) },
  { name: RESILIENT, start: streamCall(() => consume(resilient.ServerStream(REQUEST) as AsyncIterable<EchoResponse>)) },
];
const bidiContenders: Contender[] = [
  { name: RAW, start: streamCall(() => rawPingPong(raw)) },
  { name: CONTROL, start: streamCall(() => rawPingPong(rawAgain)) },
  { name: RAW_ITERABLE, start: streamCall(() => resilientPingPong((requests) => rawIterableBidi(raw, requests))) },
  { name: RESILIENT, start: streamCall(() => resilientPingPong((requests) => resilient.Bidi(requests) as AsyncIterable<EchoResponse>)) },
];

let stream: ContenderSummary[];
let bidi: ContenderSummary[];
try {
  progress(`server stream: ${ROUNDS} rounds per contender, one stream of ${fmt.int(MESSAGES)} messages per round`);
  stream = await interleavedRounds({
    contenders: streamContenders,
    baseline: RAW,
    rounds: ROUNDS,
    // A "call" of the driver is one whole stream.
    callsPerRound: 1,
    concurrency: 1,
    warmupCalls: 1,
    onRound: (round, name, f) =>
      progress(`round ${round + 1} ${name.padEnd(14)} ${fmt.int(f.callsPerSec * MESSAGES)} msgs/s  ${fmt.fixed(f.cpuUsPerCall / MESSAGES, 2)} µs/msg  (${fmt.int(f.wallMs)} ms)`),
  });
  progress(`bidi ping-pong: ${ROUNDS} rounds per contender, one stream of ${fmt.int(ROUND_TRIPS)} round trips per round`);
  bidi = await interleavedRounds({
    contenders: bidiContenders,
    baseline: RAW,
    rounds: ROUNDS,
    callsPerRound: 1,
    concurrency: 1,
    warmupCalls: 1,
    onRound: (round, name, f) =>
      progress(`round ${round + 1} ${name.padEnd(32)} ${fmt.int(f.callsPerSec * ROUND_TRIPS)} round trips/s  ${fmt.fixed(f.cpuUsPerCall / ROUND_TRIPS, 2)} µs/round trip  (${fmt.int(f.wallMs)} ms)`),
  });
} finally {
  raw.close();
  rawAgain.close();
  await pool.close({ graceMs: 0 });
  await server.kill();
}

// ---------------------------------------------------------------------------------------------
// Report

/** Short contender names for the per-round tables' headers. */
const SHORT: Record<string, string> = { [RAW]: 'raw', [CONTROL]: 'A/A', [RAW_ITERABLE]: 'raw iterables', [RESILIENT]: 'resilient' };

/** What one part counts: its unit per stream, and how its columns name it. */
interface Unit {
  perStream: number;
  /** Plural, e.g. 'msgs', 'round trips'. */
  many: string;
  /** Singular, e.g. 'msg', 'round trip'. */
  one: string;
}

/**
 * The summary table and the per-round table of one part. The driver's figures are per stream;
 * per message (or round trip) they are the same ratios, scaled by `unit.perStream`.
 */
function tables(part: string, summaries: readonly ContenderSummary[], unit: Unit): Table[] {
  const { perStream, many, one } = unit;
  const base = summaries[0]!;
  const others = summaries.slice(1);
  const short = (s: ContenderSummary): string => SHORT[s.name] ?? s.name;
  return [
    {
      title: `${part} (medians over interleaved rounds, one stream per round; ±: half the interquartile range; ×: vs raw grpc-js, median of per-round ratios)`,
      header: ['contender', `${many}/s`, '±', '× raw', `CPU µs/${one}`, '±', '× raw', `rounds×${many}`],
      rows: summaries.map((s) => [
        s.name,
        fmt.int(s.callsPerSec * perStream),
        fmt.pct(s.rateSpread),
        fmt.ratio(s.rateRatio),
        fmt.fixed(s.cpuUsPerCall / perStream, 2),
        fmt.pct(s.cpuSpread),
        fmt.ratio(s.cpuRatio),
        `${s.rounds.length}×${fmt.int(perStream)}`,
      ]),
    },
    {
      title: `${part} per round (rounds in turn, the contenders in the order below, then reversed, in alternate rounds: ${summaries.map((s) => `${short(s)} = ${s.name}`).join(', ')}; CPU × raw: this round's CPU / raw's in the same round)`,
      header: ['round', ...summaries.flatMap((s) => [`${short(s)} ${many}/s`, `${short(s)} CPU µs/${one}`]), ...others.map((s) => `${short(s)} CPU × raw`)],
      rows: base.rounds.map((_, i) => [
        String(i + 1),
        ...summaries.flatMap((s) => [fmt.int(s.rounds[i]!.callsPerSec * perStream), fmt.fixed(s.rounds[i]!.cpuUsPerCall / perStream, 2)]),
        ...others.map((s) => fmt.ratio(s.rounds[i]!.cpuUsPerCall / base.rounds[i]!.cpuUsPerCall, 3)),
      ]),
    },
  ];
}

/** How busy the client was: CPU µs per stream × streams/s, as % of the wall time. */
function busy(summaries: readonly ContenderSummary[]): string {
  return summaries.map((s) => `${fmt.fixed((s.cpuUsPerCall * s.callsPerSec) / 1e4, 0)}% (${s.name})`).join(', ');
}

const byName = (summaries: readonly ContenderSummary[], name: string): ContenderSummary => summaries.find((s) => s.name === name)!;
const streamOurs = byName(stream, RESILIENT);
const bidiOurs = byName(bidi, RESILIENT);
const bidiControl = byName(bidi, CONTROL);
const bidiIterable = byName(bidi, RAW_ITERABLE);
/** Per round: resilient-grpc's CPU per round trip / raw grpc-js driven through async iterables. */
const sameShapeRatios = bidiOurs.rounds.map((r, i) => r.cpuUsPerCall / bidiIterable.rounds[i]!.cpuUsPerCall).sort((a, b) => a - b);
const sameShape = sameShapeRatios[Math.floor(sameShapeRatios.length / 2)]!;
const targets: Target[] = [
  {
    what: `resilient-grpc messages/s vs raw (server stream, ${fmt.int(MESSAGES)} messages)`,
    figure: fmt.ratio(streamOurs.rateRatio, 3),
    target: `≥ ${RATE_TARGET.toFixed(2)}× (ours)`,
    met: streamOurs.rateRatio >= RATE_TARGET,
  },
  {
    what: 'server-stream CPU per message vs raw',
    figure: fmt.ratio(streamOurs.cpuRatio, 3),
    target: `≤ ${STREAM_CPU_TARGET.toFixed(2)}×`,
    met: streamOurs.cpuRatio <= STREAM_CPU_TARGET,
  },
  {
    what: 'bidi ping-pong CPU per round trip vs raw',
    figure: fmt.ratio(bidiOurs.cpuRatio, 3),
    target: `≤ ${BIDI_CPU_TARGET.toFixed(2)}×`,
    met: bidiOurs.cpuRatio <= BIDI_CPU_TARGET,
  },
  {
    what: 'bidi ping-pong CPU per round trip vs raw grpc-js in the same shape (async iterables)',
    figure: fmt.ratio(sameShape, 3),
    target: `≤ ${BIDI_CPU_TARGET.toFixed(2)}× (ours)`,
    met: sameShape <= BIDI_CPU_TARGET,
  },
];
const controlRatios = bidiControl.rounds.map((r, i) => r.cpuUsPerCall / bidi[0]!.rounds[i]!.cpuUsPerCall);

report({
  name: 'stream-overhead',
  title: `Stream overhead: client CPU per message on a server stream (${fmt.int(MESSAGES)} small messages per stream) and per round trip of a bidi ping-pong (${fmt.int(ROUND_TRIPS)} per stream), server in its own process`,
  durationSec: (performance.now() - startedAt) / 1000,
  tables: [...tables('server stream', stream, { perStream: MESSAGES, many: 'msgs', one: 'msg' }), ...tables('bidi ping-pong', bidi, { perStream: ROUND_TRIPS, many: 'round trips', one: 'round trip' })],
  targets,
  notes: [
    `server stream: StreamRequest ${JSON.stringify(REQUEST)}; every message (message 'x-<i>', count i, no payload) is read with for await and the count and last message are checked.`,
    `server stream: raw grpc-js: client.ServerStream(req, { deadline: Date.now() + ${DEADLINE_MS} }) read as a Node Readable; resilient-grpc: new ChannelPool(${JSON.stringify(ARMED)}), methods.ServerStream.deadlineMs ${DEADLINE_MS}, its own async iterator (a bounded queue that pauses the grpc-js stream past 16 buffered messages).`,
    `bidi ping-pong: per round one Bidi stream of ${fmt.int(ROUND_TRIPS)} round trips (EchoRequest { message: 'ping-<i>' }, echoed with count i); each response is checked (message and count) before the next request is written, and the stream must end OK after exactly ${fmt.int(ROUND_TRIPS)} responses. After the last response the client half-closes; the test server ends the stream ~50 ms later, inside the round's wall time for every contender alike.`,
    `bidi ping-pong: raw grpc-js: client.Bidi({ deadline: Date.now() + ${DEADLINE_MS} }), call.write() on each 'data' event, call.end() after the last; the A/A control is the same on a second raw client (its own channel); resilient-grpc: the same pool, methods.Bidi.deadlineMs ${DEADLINE_MS}, client.Bidi(requests) read with for await, \`requests\` an async generator that yields the next request once the reader has the previous response; raw grpc-js, async iterables: the same generator and for await on a raw grpc-js call (each request written as the generator yields it, after 'drain' when write() returned false): the shape the package's API has, without the package.`,
    `bidi ping-pong, resilient-grpc vs raw grpc-js in the same shape (median of per-round ratios): ${fmt.ratio(sameShape, 3)}. The gap to raw grpc-js's 'data' events is mostly the shape: a promise per request from the caller's generator and per response read with for await.`,
    `A/A control (bidi, raw grpc-js beside raw grpc-js): ${fmt.ratio(bidiControl.cpuRatio, 3)} (rounds ${fmt.ratio(Math.min(...controlRatios), 2)}–${fmt.ratio(Math.max(...controlRatios), 2)}): how far from 1.00× a ratio strays with nothing to measure, on this machine in this run.`,
    `CPU is the client process only (user + system, all threads, GC included); the server runs in its own process on the same machine. The client was busy ${busy(stream)} of the server stream's wall time and ${busy(bidi)} of the ping-pong's (CPU per stream × streams/s): the rest of the time it waits for the server.`,
    `the ≥ ${RATE_TARGET.toFixed(2)}× messages/s target is ours; the CPU targets (≤ ${STREAM_CPU_TARGET.toFixed(2)}× per server-stream message, ≤ ${BIDI_CPU_TARGET.toFixed(2)}× per bidi round trip) are issue 18's.`,
  ],
  data: { serverStream: stream, bidiPingPong: bidi },
});
