// The per-call `waitForReady` option against a real server that is not up yet: a port reserved
// (bound, then released), a call made to it, and the server started on that port only once the
// channel has failed to connect. With waitForReady the call waits and succeeds; without it, it
// fails at once with UNAVAILABLE, as grpc-js does. Deadlines are generous (30 s): the assertions
// are about codes and counts, never about how long anything took.
import * as grpc from '@grpc/grpc-js';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ChannelPool, StatusError } from '../../src/index.js';
import { closedPort } from '../helpers/net.js';
import { TestServiceClient } from '../helpers/protos.js';
import { startTestServer, type TestServer } from '../helpers/test-server.js';

let pool: ChannelPool;
let port: number;
let server: TestServer | undefined;

beforeEach(async () => {
  port = await closedPort();
  server = undefined;
  // Reconnect soon after the server comes up: grpc's first backoff is 1 s.
  pool = new ChannelPool({
    deadlineMs: 30_000,
    channelOptions: { 'grpc.initial_reconnect_backoff_ms': 100, 'grpc.max_reconnect_backoff_ms': 200 },
  });
});

afterEach(async () => {
  await pool.close({ graceMs: 0 });
  await server?.kill();
});

/** Resolves once the pool's channel has failed to connect (the server is not there). */
function connectFailed(p: ChannelPool): Promise<void> {
  return new Promise((resolve) => {
    const subscription = p.onChannelStateChange((change) => {
      if (change.state === 'transient-failure') {
        subscription.dispose();
        resolve();
      }
    });
  });
}

describe('waitForReady', () => {
  it('a call made before its server starts succeeds once the server is up, within its deadline', async () => {
    const echo = pool.client(TestServiceClient, `127.0.0.1:${port}`);
    const failedOnce = connectFailed(pool);
    const reply = echo.Echo({ message: 'waited' }, { waitForReady: true });
    await failedOnce;
    server = await startTestServer({ port });
    await expect(reply).resolves.toMatchObject({ message: 'waited' });
    expect(server.calls).toHaveLength(1);
    expect(pool.stats().perChannel[0]).toMatchObject({ succeeded: 1, retries: 0 });
  });

  it('without it, the same call fails at once with UNAVAILABLE (grpc-js fails fast), long before its deadline', async () => {
    const echo = pool.client(TestServiceClient, `127.0.0.1:${port}`);
    const error = await echo.Echo({ message: 'fast' }, { retry: false }).then(
      () => expect.fail('expected UNAVAILABLE'),
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(StatusError);
    // UNAVAILABLE, not DEADLINE_EXCEEDED: it did not wait for its 30 s deadline.
    expect(error).toMatchObject({ code: grpc.status.UNAVAILABLE, attempts: 1 });
  });

  it('waitForReady: false overrides a Metadata that asks for it, and leaves that Metadata as it was', async () => {
    const echo = pool.client(TestServiceClient, `127.0.0.1:${port}`);
    const metadata = new grpc.Metadata({ waitForReady: true });
    const error = await echo.Echo({ message: 'x' }, { metadata, waitForReady: false, retry: false }).then(
      () => expect.fail('expected UNAVAILABLE'),
      (e: unknown) => e,
    );
    expect(error).toMatchObject({ code: grpc.status.UNAVAILABLE });
    expect(metadata.getOptions().waitForReady).toBe(true);
  });

  it('a waiting call still ends at its deadline when the server never comes: DEADLINE_EXCEEDED', async () => {
    const echo = pool.client(TestServiceClient, `127.0.0.1:${port}`);
    const failedOnce = connectFailed(pool);
    const reply = echo.Echo({ message: 'never' }, { waitForReady: true, deadlineMs: 1_000 });
    await failedOnce;
    const error = await reply.then(
      () => expect.fail('expected DEADLINE_EXCEEDED'),
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(StatusError);
    expect(error).toMatchObject({ code: grpc.status.DEADLINE_EXCEEDED });
  });
});
