// Issue 12, bad input that got no clear error: an invalid service config, metadata given as a
// Map, malformed targets, a client-stream source yielding null, and breakers that piled up
// with computed option sets.
import { setTimeout as sleep } from 'node:timers/promises';
import * as grpc from '@grpc/grpc-js';
import { beforeEach, describe, expect, it } from 'vitest';
import { ChannelPool } from '../../src/index.js';
import { TestServiceClient } from '../helpers/protos.js';
import { startServerAndPools } from '../helpers/server-and-pools.js';
import type { TestServer } from '../helpers/test-server.js';

let server: TestServer;
let pool: ChannelPool;

beforeEach(async () => {
  const fixture = await startServerAndPools();
  server = fixture.server;
  pool = fixture.newPool({ deadlineMs: 5_000 });
});

function thrownBy(fn: () => unknown): unknown {
  try {
    fn();
  } catch (error) {
    return error;
  }
  return undefined;
}

async function rejectionOf(promise: Promise<unknown>): Promise<unknown> {
  return promise.then(
    () => undefined,
    (error: unknown) => error,
  );
}

/** The pool still works: a good call through a fresh client succeeds. */
async function stillWorks(): Promise<void> {
  await expect(pool.client(TestServiceClient, server.address).Echo({ message: 'ok' })).resolves.toMatchObject({ message: 'ok' });
}

describe('#12.9 an invalid grpc.service_config is refused with a clear error, and leaves nothing behind', () => {
  it('#12.9 invalid service configs throw a RangeError/TypeError naming channelOptions, with code INVALID_ARGUMENT', async () => {
    const configs = [
      { loadBalancingConfig: {} }, // grpc-js: plain Error "Invalid service config: invalid loadBalancingConfig"
      { loadBalancingConfig: [{ round_robin: {}, pick_first: {} }] }, // plain Error "unexpected multiple keys"
      { methodConfig: [{ timeout: 'soon' }] }, // plain Error "Invalid method config: invalid name array"
      // grpc-js falls back to pick_first silently (debug log only): the user's LB choice is lost.
      { loadBalancingConfig: [{ no_such_policy: {} }] },
    ];
    const unclear: string[] = [];
    for (const config of configs) {
      const json = JSON.stringify(config);
      const error = thrownBy(() => pool.client(TestServiceClient, server.address, { channelOptions: { 'grpc.service_config': json } }));
      const clear =
        error instanceof Error &&
        (error.name === 'TypeError' || error.name === 'RangeError') &&
        (error as { code?: unknown }).code === grpc.status.INVALID_ARGUMENT &&
        /channelOptions|grpc\.service_config/.test(String((error as { option?: unknown }).option));
      if (!clear) unclear.push(`${json} -> ${error === undefined ? 'accepted' : `${(error as Error).name} code=${String((error as { code?: unknown }).code)}: ${(error as Error).message}`}`);
    }
    expect(unclear, 'service configs without a clear error').toEqual([]);
    // No channel was left for any refused key.
    expect(pool.stats()).toMatchObject({ channels: 0, channelsCreated: 0 });
    expect(pool.stats().perChannel).toHaveLength(0);
    await stillWorks();
  });
});

describe('#12.10 metadata given as a Map is refused, not silently dropped', () => {
  it('#12.10 a Map as metadata rejects with a TypeError naming metadata, and nothing is sent', async () => {
    const metadata = new Map([['x-tenant', 'acme']]);
    const error = await rejectionOf(
      pool.client(TestServiceClient, server.address).Echo({ message: 'x' }, { metadata: metadata as never }),
    );
    // Today the call succeeds and the server sees only user-agent.
    expect(error, `server saw: ${JSON.stringify(server.calls.map((c) => c.metadata.getMap()))}`).toBeInstanceOf(TypeError);
    expect(error).toMatchObject({ code: grpc.status.INVALID_ARGUMENT, option: 'metadata' });
    expect(server.calls).toHaveLength(0);
    await stillWorks();
  });
});

describe('#12.11 targets that are wrong before any channel exists are refused at pool.client()', () => {
  it('#12.11 out-of-range ports and empty unix:, ipv4:, dns:/// targets throw with code INVALID_ARGUMENT; nothing is created', async () => {
    const malformed = ['https://x:99999', '127.0.0.1:99999', 'unix:', 'ipv4:', 'dns:///', 'localhost:-1', 'http://x:0x50'];
    const accepted: string[] = [];
    for (const target of malformed) {
      const error = thrownBy(() => pool.client(TestServiceClient, target));
      if (error === undefined) accepted.push(target);
      else expect(error, target).toMatchObject({ code: grpc.status.INVALID_ARGUMENT, option: 'target' });
    }
    expect(accepted, 'malformed targets accepted by pool.client()').toEqual([]);
    expect(pool.stats().channelsCreated).toBe(0);
    // Valid grpc-js target forms still pass through untouched (a channel is made lazily).
    for (const target of ['dns:///localhost:50051', 'unix:/tmp/i12-not-there.sock', 'ipv4:127.0.0.1:1,127.0.0.1:2', '[::1]:50051', 'https://x']) {
      expect(() => pool.client(TestServiceClient, target), target).not.toThrow();
    }
    await stillWorks();
  });
});

describe('#12.12 a client-stream source that yields null rejects with a numeric gRPC code', () => {
  it('#12.12 a null request from the source rejects with code INVALID_ARGUMENT (a number), not ERR_STREAM_NULL_VALUES', async () => {
    async function* source(): AsyncGenerator<unknown> {
      yield { message: 'a' };
      yield null;
    }
    const error = await rejectionOf(pool.client(TestServiceClient, server.address).ClientStream(source() as never));
    expect(error).toBeInstanceOf(Error);
    const code = (error as { code?: unknown }).code;
    expect(typeof code, `code was ${String(code)}`).toBe('number');
    expect(code).toBe(grpc.status.INVALID_ARGUMENT);
    await stillWorks();
  });
});

describe('#12.13 breakers made for distinct option sets do not live until close()', () => {
  it('#12.13 200 clients with computed breaker options leave a bounded number of breakers once idle', async () => {
    const windowMs = 300;
    for (let i = 0; i < 200; i++) {
      // Options computed per client, each set distinct (as a config system may produce).
      const client = pool.client(TestServiceClient, server.address, { breaker: { windowMs, resetTimeoutMs: 1_000 + i } });
      await client.Echo({ message: `m${i}` });
    }
    const peak = pool.stats().perChannel[0]!.breakers.length;
    // Well past the rolling window of every breaker: each is closed with an empty window, the
    // same as a fresh one, and no client needs to keep it.
    await sleep(windowMs * 4);
    const idle = pool.stats().perChannel[0]!.breakers.length;
    expect(idle, `breakers after the window (peak ${peak})`).toBeLessThanOrEqual(10);
  });
});
