// The set-up most integration tests share: a real grpc-js test server on 127.0.0.1:0
// (test-server.ts) and the ChannelPools a test makes against it, torn down together.
//
//   let server: TestServer;
//   let pool: ChannelPool;
//   beforeEach(async () => {
//     const fixture = await startServerAndPools();
//     server = fixture.server;
//     pool = fixture.newPool({ deadlineMs: 5_000 });
//   });
//
// Call it from beforeEach or from a test: the teardown is registered with vitest's
// onTestFinished, so it runs after the test and its afterEach hooks, whatever the test did. It
// closes every pool newPool() made (graceMs 0: calls still running are cancelled), then kills
// the server. An afterEach that must run after the teardown (shutting down what the pools
// reported to, say) calls cleanup() itself first; it is idempotent.
import { onTestFinished } from 'vitest';
import { ChannelPool, type ChannelPoolOptions } from '../../src/index.js';
import { startTestServer, type TestServer, type TestServerOptions } from './test-server.js';

export interface ServerAndPools {
  readonly server: TestServer;
  /** The server's address, "127.0.0.1:PORT", to use as a target. */
  readonly address: string;
  /** A new pool, closed by the teardown. */
  newPool(options?: ChannelPoolOptions): ChannelPool;
  /** Closes every pool newPool() made, then kills the server. Idempotent. */
  cleanup(): Promise<void>;
}

export async function startServerAndPools(serverOptions: TestServerOptions = {}): Promise<ServerAndPools> {
  const server = await startTestServer(serverOptions);
  const pools: ChannelPool[] = [];
  let cleaning: Promise<void> | undefined;

  const cleanup = (): Promise<void> => {
    cleaning ??= (async () => {
      // Every pool is closed and the server killed even if one close() fails; the first
      // failure is reported afterwards.
      const closed = await Promise.allSettled(pools.map((pool) => pool.close({ graceMs: 0 })));
      await server.kill();
      const failed = closed.find((outcome): outcome is PromiseRejectedResult => outcome.status === 'rejected');
      if (failed !== undefined) throw failed.reason;
    })();
    return cleaning;
  };
  onTestFinished(cleanup);

  return {
    server,
    address: server.address,
    newPool(options) {
      if (cleaning !== undefined) throw new Error('newPool() after cleanup(): this pool would never be closed');
      const pool = options === undefined ? new ChannelPool() : new ChannelPool(options);
      pools.push(pool);
      return pool;
    },
    cleanup,
  };
}
