// "Work done twice" and the retry gap: a call is never executed twice by the server unless it
// may be, and nothing that ends a call (abort, close()) is lost between a failed attempt and its
// retry.
//
// The retry commit rule these tests pin (docs/research/issue-12-commit-rule.md has the grpc-js
// evidence):
//   - once response headers or a message arrived, no method is retried (gRFC A6 commit);
//   - a non-idempotent method is retried only after a failure that provably never left the
//     client (no HTTP/2 stream was opened: connect refused, no connection yet, channel closed
//     before the call started); a cut after the request was written is final.
// Faults come from a loopback TCP proxy between the pool and a real grpc-js server; the server
// counts the executions of each logical call by its x-call-id.
import { setTimeout as sleep } from 'node:timers/promises';
import * as grpc from '@grpc/grpc-js';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { type ChannelPool, PoolClosedError, StatusError } from '../../src/index.js';
import { startFaultProxy, type FaultProxy } from '../helpers/fault-proxy.js';
import { TestServiceClient } from '../helpers/protos.js';
import { startServerAndPools } from '../helpers/server-and-pools.js';
import type { TestServer } from '../helpers/test-server.js';

let server: TestServer;
let proxy: FaultProxy;
let pool: ChannelPool;
let callIds = 0;

// Long enough for a wrongful retry to reach the server and be counted after the call settles.
const SETTLE_MS = 300;

beforeEach(async () => {
  const fixture = await startServerAndPools();
  server = fixture.server;
  proxy = await startFaultProxy({ port: server.port });
  // Breaker and watchdog off: these tests look at the retry layer alone. Short backoffs so a
  // wrongful retry happens well within each test; grpc-js reconnects quickly after a cut.
  pool = fixture.newPool({
    deadlineMs: 8_000,
    retry: { maxAttempts: 5, initialDelayMs: 20, maxDelayMs: 50 },
    breaker: false,
    connectTimeoutMs: false,
    channelOptions: { 'grpc.initial_reconnect_backoff_ms': 100, 'grpc.max_reconnect_backoff_ms': 200 },
  });
});

afterEach(async () => {
  await proxy.close();
});

function script(headers: Record<string, string | number>): { id: string; metadata: Record<string, string> } {
  const id = `twice-${++callIds}`;
  const metadata: Record<string, string> = { 'x-call-id': id };
  for (const [key, value] of Object.entries(headers)) metadata[`x-${key}`] = String(value);
  return { id, metadata };
}

function echo(idempotent: boolean) {
  return pool.client(TestServiceClient, proxy.address, { idempotent });
}

/** Resolves once the server has started `n` executions of call `id` (bounded: 5 s). */
async function serverStarted(id: string, n = 1): Promise<void> {
  for (let i = 0; i < 500 && server.callsFor(id) < n; i++) await sleep(10);
  expect(server.callsFor(id)).toBeGreaterThanOrEqual(n);
}

async function settle(promise: Promise<unknown>): Promise<{ value?: unknown; error?: unknown }> {
  return promise.then(
    (value) => ({ value }),
    (error: unknown) => ({ error }),
  );
}

describe('a cut connection never makes the server run a call twice when it must not', () => {
  it('before connect: a non-idempotent call that never left the client is retried and runs once', async () => {
    // Guard for the fix (passes today): what provably never left the client stays retryable.
    await proxy.setMode('refuse');
    const { id, metadata } = script({});
    const retried = new Promise<void>((resolve) => pool.onRetry(() => resolve()));
    const call = settle(
      echo(false).Echo({ message: 'hi' }, { metadata, retry: { maxAttempts: 10, initialDelayMs: 150, maxDelayMs: 300 } }),
    );
    await retried;
    await proxy.setMode('pass');
    const result = await call;
    expect(result.error).toBeUndefined();
    expect(result.value).toMatchObject({ message: 'hi' });
    expect(server.callsFor(id)).toBe(1);
  });

  it('after the request was written: a non-idempotent call is not retried and the server ran it once', async () => {
    const { id, metadata } = script({ 'delay-ms': 600 });
    const call = settle(echo(false).Echo({ message: 'once' }, { metadata }));
    await serverStarted(id);
    proxy.cutAll(); // 'pass' stays on: a retry would reconnect and run the call again
    const result = await call;
    await sleep(SETTLE_MS);
    expect(server.callsFor(id), 'executions of a non-idempotent call').toBe(1);
    expect(result.error).toBeInstanceOf(StatusError);
    expect(result.error).toMatchObject({ code: grpc.status.UNAVAILABLE, attempts: 1 });
  });

  it('after the request was written: an idempotent call may still be retried (guard)', async () => {
    // Guard for the fix (passes today): idempotent methods keep their retries.
    const { id, metadata } = script({ 'delay-ms': 600, 'delay-times': 1 });
    const call = settle(echo(true).Echo({ message: 'again' }, { metadata }));
    await serverStarted(id);
    proxy.cutAll();
    const result = await call;
    expect(result.error).toBeUndefined();
    expect(server.callsFor(id)).toBe(2);
  });

  it.each([
    ['non-idempotent', false],
    ['idempotent', true],
  ])('after response headers: a committed %s call is never retried', async (_name, idempotent) => {
    const { id, metadata } = script({ 'delay-ms': 600, 'headers-first': 1 });
    let headers = 0;
    const call = settle(
      echo(idempotent).Echo(
        { message: 'committed' },
        {
          metadata,
          onHeader: () => {
            headers += 1;
            // Headers arrived: the call is committed (gRFC A6). Cut the connection now.
            if (headers === 1) setImmediate(() => proxy.cutAll());
          },
        },
      ),
    );
    const result = await call;
    await sleep(SETTLE_MS);
    expect(headers).toBeGreaterThanOrEqual(1);
    expect(server.callsFor(id), 'executions of a committed call').toBe(1);
    expect(result.error).toBeInstanceOf(StatusError);
    expect(result.error).toMatchObject({ code: grpc.status.UNAVAILABLE, attempts: 1 });
  });
});

describe('an abort or close() between a failed attempt and a zero-delay retry is not lost', () => {
  it('abort in the retry gap: the call rejects with the abort reason and no retry runs', async () => {
    // grpc-retry-pushback-ms: 0 makes the retry wait exactly 0 ms.
    const { id, metadata } = script({ 'fail-times': 1, 'pushback-ms': 0, 'delay-ms': 200 });
    const controller = new AbortController();
    // onRetry runs inside the retry decision, synchronously; a microtask queued there runs after
    // that decision and before the next attempt starts: the gap between the two.
    pool.onRetry(() => queueMicrotask(() => controller.abort()));
    const result = await settle(echo(true).Echo({ message: 'x' }, { metadata, signal: controller.signal }));
    await sleep(SETTLE_MS);
    expect(server.callsFor(id), 'attempts that reached the server').toBe(1);
    expect(result.error).toBe(controller.signal.reason);
  });

  it('close() in the retry gap: no retry runs, and close({ graceMs: 0 }) does not wait for one', async () => {
    // Every attempt takes 1.5 s; the first fails, the retry (0 ms pushback) would succeed.
    const { id, metadata } = script({ 'fail-times': 1, 'pushback-ms': 0, 'delay-ms': 1_500 });
    let closing: Promise<{ drained: number; cancelled: number; durationMs: number }> | undefined;
    pool.onRetry(() =>
      queueMicrotask(() => {
        closing ??= pool.close({ graceMs: 0 });
      }),
    );
    const result = await settle(echo(true).Echo({ message: 'x' }, { metadata }));
    expect(closing).toBeDefined();
    const closed = await closing!;
    await sleep(SETTLE_MS);
    expect(server.callsFor(id), 'attempts that reached the server').toBe(1);
    expect(result.error, 'the call must not succeed on a retry started after close()').toBeDefined();
    expect(result.error instanceof StatusError || result.error instanceof PoolClosedError).toBe(true);
    // close() with no grace has nothing to wait for: it returned before the retry, had it run,
    // could have answered (1.5 s), however slowly a loaded machine ran the closing itself.
    expect(closed.durationMs).toBeLessThan(1_500);
  });
});

describe('close() counts calls it woke from their backoff as cancelled, not drained', () => {
  it('a call waiting to retry when close() begins is reported as cancelled', async () => {
    // The server asks for a 3 s pause before the retry: the call sits in its backoff.
    const { metadata } = script({ 'fail-code': grpc.status.UNAVAILABLE, 'pushback-ms': 3_000 });
    const waiting = new Promise<void>((resolve) => pool.onRetry(() => resolve()));
    const call = settle(echo(true).Echo({ message: 'x' }, { metadata }));
    await waiting;
    const closed = await pool.close({ graceMs: 2_000 });
    const result = await call;
    expect(result.error).toBeInstanceOf(StatusError);
    // Decision (docs/research/issue-12-commit-rule.md): close() ended it before it was done, so it
    // is cancelled.
    expect(closed).toMatchObject({ drained: 0, cancelled: 1 });
  });
});
