// The scale scenarios of streaming, moved out of test/integration/streaming.test.ts into the
// slow tier (`npm run test:chaos`): listener hygiene over 10,000 sequential server streams, and
// the throughput of a 100,000-message server stream through the pool and through raw grpc-js
// (the figure `npm run bench` measures too; this test checks the counts, the bench the speed).
import * as grpc from '@grpc/grpc-js';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ChannelPool, type ServerStreamMethod } from '../../src/index.js';
import { countListeners } from '../helpers/listeners.js';
import { TestServiceClient, type EchoResponse, type StreamRequest } from '../helpers/protos.js';
import { startTestServerProcess } from '../helpers/test-server-process.js';
import { startTestServer, type TestServer } from '../helpers/test-server.js';

let server: TestServer;
let pool: ChannelPool;

beforeEach(async () => {
  server = await startTestServer();
  pool = new ChannelPool({ deadlineMs: 10_000, retry: { initialDelayMs: 10, maxDelayMs: 50 } });
});

afterEach(async () => {
  await pool.close({ graceMs: 0 });
  await server.kill();
});

/** The server-streaming method of TestService, typed (the loaded client is dynamic). */
interface Streams {
  ServerStream: ServerStreamMethod<Partial<StreamRequest>, EchoResponse>;
}

function streams(): Streams {
  return pool.client(TestServiceClient, server.address) as Streams;
}

describe('server stream', () => {
  it('leaves no listener on a long-lived signal over 10,000 sequential streams', { timeout: 60_000 }, async () => {
    const ss = streams();
    const controller = new AbortController();
    const listeners = countListeners(controller.signal);
    const startedAt = performance.now();
    let received = 0;
    for (let i = 0; i < 10_000; i++) {
      for await (const message of ss.ServerStream({ message: `s${i}`, count: 1 }, { signal: controller.signal })) {
        if (message.message === `s${i}-0`) received++;
      }
    }
    const elapsed = performance.now() - startedAt;
    console.info(`10,000 sequential one-message server streams: ${(elapsed / 10_000).toFixed(3)} ms each`);
    expect(received).toBe(10_000);
    expect(listeners).toEqual({ added: 10_000, removed: 10_000, maxLive: 1 });
    expect(pool.stats().perChannel[0]).toMatchObject({ started: 10_000, succeeded: 10_000, failed: 0, inFlight: 0 });
  });
});

describe('throughput', () => {
  // Six streams of 100,000 messages: a loaded machine needs more than the default 30 s.
  it('reads a 100,000-message server stream through the pool and through raw grpc-js', { timeout: 120_000 }, async () => {
    // The server runs in its own process, so the figures are the client's.
    const remote = await startTestServerProcess();
    const COUNT = 100_000;
    const ss = pool.client(TestServiceClient, remote.address) as Streams;
    const raw = new TestServiceClient(remote.address, grpc.credentials.createInsecure());
    const request: Partial<StreamRequest> = { message: 't', count: COUNT };
    const viaPool = async (): Promise<number> => {
      let n = 0;
      for await (const _ of ss.ServerStream(request, { deadlineMs: 30_000 })) n++;
      return n;
    };
    const viaRaw = async (): Promise<number> => {
      let n = 0;
      const call = raw.ServerStream!(request, { deadline: Date.now() + 30_000 }) as grpc.ClientReadableStream<EchoResponse>;
      for await (const _ of call) n++;
      return n;
    };
    const rates: Record<'pool' | 'raw', number[]> = { pool: [], raw: [] };
    try {
      for (let round = 0; round < 3; round++) {
        for (const [name, run] of [
          ['pool', viaPool],
          ['raw', viaRaw],
        ] as const) {
          const startedAt = performance.now();
          expect(await run()).toBe(COUNT);
          rates[name].push(COUNT / ((performance.now() - startedAt) / 1_000));
        }
      }
    } finally {
      raw.close();
      await remote.kill();
    }
    const median = (values: number[]): number => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;
    const poolRate = median(rates.pool);
    const rawRate = median(rates.raw);
    const fmt = (v: number): string => `${Math.round(v).toLocaleString('en-US')} msg/s`;
    console.info(
      `server stream of ${COUNT.toLocaleString('en-US')} small messages, median of 3 interleaved rounds: ` +
        `pool ${fmt(poolRate)} [${rates.pool.map(fmt).join(', ')}], raw grpc-js ${fmt(rawRate)} [${rates.raw.map(fmt).join(', ')}], ` +
        `pool/raw ${(poolRate / rawRate).toFixed(2)}`,
    );
  });
});
