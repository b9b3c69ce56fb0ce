// A stream the server refuses (HTTP/2 RST_STREAM REFUSED_STREAM: a server going away after its
// GOAWAY, or over its stream limit) was never processed (RFC 9113 §8.7), so the pool retries it
// even for a method that is not idempotent. grpc-js retries one refusal by itself; a second one
// reaches the pool. Any other reset of an opened stream may have run on the server: such a
// non-idempotent call is not retried. The server is a bare node:http2 server on loopback that
// answers each stream as its script says, so that the refusals are real HTTP/2 frames.
import * as http2 from 'node:http2';
import type { AddressInfo } from 'node:net';
import { status } from '@grpc/grpc-js';
import { afterEach, describe, expect, it } from 'vitest';
import { ChannelPool, StatusError } from '../../src/index.js';
import { TestServiceClient } from '../helpers/protos.js';

type Answer = 'refuse' | 'reset' | 'ok';

interface ScriptedServer {
  address: string;
  /** The streams that arrived, in order, and how each was answered. */
  readonly answered: Answer[];
  close(): Promise<void>;
}

/** Answers stream i with script[i] (the last entry for every stream after). */
async function scriptedServer(script: Answer[]): Promise<ScriptedServer> {
  const answered: Answer[] = [];
  const server = http2.createServer();
  server.on('stream', (stream) => {
    const answer = script[Math.min(answered.length, script.length - 1)]!;
    answered.push(answer);
    // A stream closed with an error code emits it on this side too: expected here.
    stream.on('error', () => {});
    if (answer === 'refuse') stream.close(http2.constants.NGHTTP2_REFUSED_STREAM);
    else if (answer === 'reset') stream.close(http2.constants.NGHTTP2_INTERNAL_ERROR);
    else {
      // Read the request out, then a gRPC answer: an empty EchoResponse (a 5-byte frame header
      // with length 0) and grpc-status 0 in trailers.
      stream.on('data', () => {});
      stream.on('end', () => {
        stream.respond({ ':status': 200, 'content-type': 'application/grpc' }, { waitForTrailers: true });
        stream.once('wantTrailers', () => stream.sendTrailers({ 'grpc-status': '0' }));
        stream.end(Buffer.alloc(5));
      });
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const sessions = new Set<http2.ServerHttp2Session>();
  server.on('session', (session) => sessions.add(session));
  return {
    address: `127.0.0.1:${(server.address() as AddressInfo).port}`,
    answered,
    close: () =>
      new Promise<void>((resolve) => {
        for (const session of sessions) session.destroy();
        server.close(() => resolve());
      }),
  };
}

let server: ScriptedServer | undefined;
let pool: ChannelPool | undefined;
afterEach(async () => {
  await pool?.close({ graceMs: 0 });
  await server?.close();
  pool = undefined;
  server = undefined;
});

describe('a refused stream is retried whatever the method; another reset is not', () => {
  it('refused twice (once for grpc-js, once for the pool), then answered: a non-idempotent call succeeds on its third stream', async () => {
    server = await scriptedServer(['refuse', 'refuse', 'ok']);
    pool = new ChannelPool({ deadlineMs: 10_000, retry: { initialDelayMs: 1, maxDelayMs: 5 }, breaker: false });
    const client = pool.client(TestServiceClient, server.address);
    await expect(client.Echo({ message: 'once' })).resolves.toMatchObject({ message: '' });
    expect(server.answered).toEqual(['refuse', 'refuse', 'ok']);
    expect(pool.stats().perChannel[0]).toMatchObject({ retries: 1, succeeded: 1, failed: 0 });
  });

  it('refused every time: the retries end at maxAttempts, with UNAVAILABLE', async () => {
    server = await scriptedServer(['refuse']);
    pool = new ChannelPool({ deadlineMs: 10_000, retry: { maxAttempts: 3, initialDelayMs: 1, maxDelayMs: 5 }, breaker: false });
    const client = pool.client(TestServiceClient, server.address);
    const error = await client.Echo({ message: 'never' }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(StatusError);
    expect(error).toMatchObject({ code: status.UNAVAILABLE, attempts: 3 });
    // Each of the pool's 3 attempts: grpc-js's stream and its one transparent retry.
    expect(server.answered).toHaveLength(6);
  });

  it('a stream reset with another code (INTERNAL_ERROR) may have run: a non-idempotent call is not retried', async () => {
    server = await scriptedServer(['reset', 'ok']);
    pool = new ChannelPool({
      deadlineMs: 10_000,
      retry: { retryableCodes: [status.UNAVAILABLE, status.INTERNAL], initialDelayMs: 1, maxDelayMs: 5 },
      breaker: false,
    });
    const client = pool.client(TestServiceClient, server.address);
    const error = await client.Echo({ message: 'maybe ran' }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(StatusError);
    expect((error as StatusError).code).not.toBe(status.OK);
    expect(server.answered).toEqual(['reset']);
    expect(pool.stats().perChannel[0]).toMatchObject({ retries: 0, failed: 1 });
  });
});
