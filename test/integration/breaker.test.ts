// Circuit breaking per channel on opossum, breakers for distinct option sets released when idle,
// the connect watchdog, and the pool's typed events.
import { setTimeout as sleep } from 'node:timers/promises';
import * as grpc from '@grpc/grpc-js';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import {
  type ChannelPool,
  CircuitOpenError,
  PoolClosedError,
  StatusError,
  type BreakerStateChange,
  type ChannelPoolOptions,
  type ChannelStateChange,
} from '../../src/index.js';
import { startFaultProxy, type FaultProxy } from '../helpers/fault-proxy.js';
import { channelzChannels } from '../helpers/net.js';
import { TestServiceClient, UserServiceClient } from '../helpers/protos.js';
import { startServerAndPools, type ServerAndPools } from '../helpers/server-and-pools.js';
import type { TestServer } from '../helpers/test-server.js';

let server: TestServer;
let newPool: ServerAndPools['newPool'];
let pool: ChannelPool;

const UNAVAILABLE = { 'x-fail-code': String(grpc.status.UNAVAILABLE) };
// One circuit per channel (scope 'channel'): these tests look at the circuit's mechanics. The
// default scope is 'method' (see the scope tests below and partial-failures).
const FAST_BREAKER = { volumeThreshold: 5, errorThresholdPercentage: 50, windowMs: 10_000, resetTimeoutMs: 300, scope: 'channel' } as const;
// For tests that look at an open circuit for a while (a thousand refusals, calls to another
// method): on a loaded machine that can take longer than FAST_BREAKER's 300 ms, after which the
// circuit would be half-open.
const STAYS_OPEN = { ...FAST_BREAKER, resetTimeoutMs: 60_000 } as const;

function makePool(options: ChannelPoolOptions = {}): ChannelPool {
  pool = newPool({ retry: false, breaker: FAST_BREAKER, ...options });
  return pool;
}

beforeEach(async () => {
  ({ server, newPool } = await startServerAndPools());
});

async function settle(promise: Promise<unknown>): Promise<unknown> {
  return promise.then(
    (value) => value,
    (error: unknown) => error,
  );
}

describe('opening and closing', () => {
  it('opens after the volume threshold, then refuses at once without touching the network', async () => {
    const echo = makePool({ breaker: STAYS_OPEN }).client(TestServiceClient, server.address);
    const changes: BreakerStateChange[] = [];
    pool.onBreakerStateChange((change) => changes.push(change));
    // The fifth failure opens the circuit: the clock read before that call and the one after it
    // bracket the moment it opened.
    let lastCallAt = 0;
    for (let i = 0; i < 5; i++) {
      lastCallAt = Date.now();
      expect(await settle(echo.Echo({ message: `${i}` }, { metadata: UNAVAILABLE }))).toBeInstanceOf(StatusError);
    }
    const openedBy = Date.now();
    expect(changes).toEqual([{ target: server.address, method: undefined, state: 'open', previous: 'closed', reason: 'error-threshold' }]);

    const seen = server.calls.length;
    const rejections = 1_000;
    const startedAt = process.hrtime.bigint();
    const errors = await Promise.all(Array.from({ length: rejections }, () => settle(echo.Echo({ message: 'x' }))));
    const perCallUs = Number(process.hrtime.bigint() - startedAt) / 1_000 / rejections;
    console.info(`open circuit: ${rejections} rejections, ${perCallUs.toFixed(1)} µs per call (mean, including the promise)`);

    expect(server.calls.length).toBe(seen);
    for (const error of errors) {
      expect(error).toBeInstanceOf(CircuitOpenError);
      expect(error).not.toBeInstanceOf(StatusError);
    }
    const first = errors[0] as CircuitOpenError;
    expect(first).toMatchObject({ code: grpc.status.UNAVAILABLE, target: server.address, method: '/resilient.test.v1.TestService/Echo' });
    // The next probe is resetTimeoutMs (60 s) after the circuit opened: a fact about the moment
    // it opened, not about how long the 1,000 refusals above took on a loaded machine.
    expect(first.nextProbeAt.getTime()).toBeGreaterThanOrEqual(lastCallAt + 60_000);
    expect(first.nextProbeAt.getTime()).toBeLessThanOrEqual(openedBy + 60_000);
    expect(pool.stats().perChannel[0]!.breakers).toEqual([
      { method: undefined, state: 'open', rejected: rejections, opened: 1, nextProbeAt: first.nextProbeAt.getTime() },
    ]);
  });

  it('lets exactly one probe through after resetTimeoutMs, and a healthy probe closes the circuit', async () => {
    const echo = makePool().client(TestServiceClient, server.address);
    const changes: string[] = [];
    pool.onBreakerStateChange((c) => changes.push(`${c.state}:${c.reason}`));
    for (let i = 0; i < 5; i++) await settle(echo.Echo({ message: 'x' }, { metadata: UNAVAILABLE }));
    await expect.poll(() => changes, { timeout: 10_000 }).toContain('half-open:reset-timeout');

    const seen = server.calls.length;
    // Ten calls at once in half-open: one probe (slow, so it is still out), nine refused.
    const outcomes = await Promise.all(Array.from({ length: 10 }, (_, i) => settle(echo.Echo({ message: `probe-${i}`, delayMs: 50 }))));
    expect(server.calls.length - seen).toBe(1);
    expect(outcomes.filter((o) => o instanceof CircuitOpenError)).toHaveLength(9);
    expect(outcomes.filter((o) => (o as { message?: string }).message === 'probe-0')).toHaveLength(1);
    expect(changes).toEqual(['open:error-threshold', 'half-open:reset-timeout', 'closed:probe-succeeded']);
    await expect(echo.Echo({ message: 'after' })).resolves.toMatchObject({ message: 'after' });
  });

  it('opens again when the probe fails', async () => {
    const echo = makePool().client(TestServiceClient, server.address);
    const changes: string[] = [];
    pool.onBreakerStateChange((c) => changes.push(`${c.state}:${c.reason}`));
    for (let i = 0; i < 5; i++) await settle(echo.Echo({ message: 'x' }, { metadata: UNAVAILABLE }));
    await expect.poll(() => changes, { timeout: 10_000 }).toContain('half-open:reset-timeout');
    expect(await settle(echo.Echo({ message: 'probe' }, { metadata: UNAVAILABLE }))).toBeInstanceOf(StatusError);
    expect(changes).toEqual(['open:error-threshold', 'half-open:reset-timeout', 'open:probe-failed']);
    expect(await settle(echo.Echo({ message: 'x' }))).toBeInstanceOf(CircuitOpenError);
    expect(pool.stats().perChannel[0]!.breakers[0]).toMatchObject({ state: 'open', opened: 2 });
  });

  it('never opens on healthy answers, however often they are errors', async () => {
    const echo = makePool().client(TestServiceClient, server.address);
    for (const code of [grpc.status.NOT_FOUND, grpc.status.INVALID_ARGUMENT]) {
      for (let i = 0; i < 30; i++) {
        const error = await settle(echo.Echo({ message: 'x' }, { metadata: { 'x-fail-code': String(code) } }));
        expect(error).toMatchObject({ code });
        expect(error).toBeInstanceOf(StatusError);
      }
    }
    expect(pool.stats().perChannel[0]!.breakers[0]).toMatchObject({ state: 'closed', opened: 0, rejected: 0 });
  });

  it('counts DEADLINE_EXCEEDED of our own deadline as a failure', async () => {
    const echo = makePool().client(TestServiceClient, server.address);
    for (let i = 0; i < 5; i++) {
      expect(await settle(echo.Echo({ message: 'slow', delayMs: 1_000 }, { deadlineMs: 50 }))).toMatchObject({
        code: grpc.status.DEADLINE_EXCEEDED,
      });
    }
    expect(await settle(echo.Echo({ message: 'x' }))).toBeInstanceOf(CircuitOpenError);
  });

  it('never counts a caller abort, nor calls refused by a closing pool', async () => {
    const echo = makePool().client(TestServiceClient, server.address);
    for (let i = 0; i < 30; i++) {
      const controller = new AbortController();
      const pending = settle(echo.Echo({ message: 'slow', delayMs: 1_000 }, { signal: controller.signal }));
      await expect.poll(() => server.calls.length).toBe(i + 1);
      controller.abort();
      expect(await pending).toMatchObject({ name: 'AbortError' });
    }
    expect(pool.stats().perChannel[0]!.breakers[0]).toMatchObject({ state: 'closed', opened: 0 });
    const closing = pool.close({ graceMs: 0 });
    for (let i = 0; i < 30; i++) expect(await settle(echo.Echo({ message: 'x' }))).toBeInstanceOf(PoolClosedError);
    await closing;
  });

  it('does not let an aborted probe close a half-open circuit', async () => {
    const echo = makePool().client(TestServiceClient, server.address);
    const changes: string[] = [];
    pool.onBreakerStateChange((c) => changes.push(`${c.state}:${c.reason}`));
    for (let i = 0; i < 5; i++) await settle(echo.Echo({ message: 'x' }, { metadata: UNAVAILABLE }));
    await expect.poll(() => changes, { timeout: 10_000 }).toContain('half-open:reset-timeout');
    const controller = new AbortController();
    const probe = settle(echo.Echo({ message: 'slow', delayMs: 1_000 }, { signal: controller.signal }));
    await expect.poll(() => server.calls.length).toBe(6);
    controller.abort();
    await probe;
    // The probe told us nothing: the circuit opens again and probes after another resetTimeoutMs.
    expect(changes).toEqual(['open:error-threshold', 'half-open:reset-timeout', 'open:probe-inconclusive']);
    await expect.poll(() => changes.length, { timeout: 10_000 }).toBe(4);
    await expect(echo.Echo({ message: 'healthy' })).resolves.toMatchObject({ message: 'healthy' });
    expect(changes.at(-1)).toBe('closed:probe-succeeded');
  });

  it('is never retried: an open circuit ends the retry loop', async () => {
    // resetTimeoutMs well past the backoff: the retry meets the circuit open, not half-open.
    const echo = makePool({ retry: { maxAttempts: 5 }, breaker: { ...FAST_BREAKER, volumeThreshold: 2, resetTimeoutMs: 10_000 } }).client(
      TestServiceClient,
      server.address,
    );
    // Circuits count calls: two calls without retries fail while the first call
    // waits in its backoff (the server's pushback makes it 1 s exactly); the circuit opens, and
    // the first call's retry is refused.
    const retrying = settle(echo.Echo({ message: 'x' }, { metadata: { ...UNAVAILABLE, 'x-pushback-ms': '1000' } }));
    await vi.waitFor(() => expect(server.calls).toHaveLength(1), { timeout: 10_000 });
    for (let i = 0; i < 2; i++)
      expect(await settle(echo.Echo({ message: 'y' }, { metadata: UNAVAILABLE, retry: false }))).toBeInstanceOf(StatusError);
    const error = await retrying;
    expect(error).toBeInstanceOf(CircuitOpenError);
    expect((error as CircuitOpenError).cause).toMatchObject({ code: grpc.status.UNAVAILABLE, attempts: 1 });
    expect(server.calls).toHaveLength(3);
  });

  it('can be turned off for a client', async () => {
    makePool();
    const plain = pool.client(TestServiceClient, server.address, { breaker: false });
    for (let i = 0; i < 10; i++) expect(await settle(plain.Echo({ message: 'x' }, { metadata: UNAVAILABLE }))).toBeInstanceOf(StatusError);
    expect(pool.stats().perChannel[0]!.breakers).toEqual([]);
  });
});

describe("scope: 'method'", () => {
  it('keeps a healthy method open when another method on the channel fails', async () => {
    makePool({ breaker: { ...STAYS_OPEN, scope: 'method' } });
    const echo = pool.client(TestServiceClient, server.address);
    const users = pool.client(UserServiceClient, server.address);
    for (let i = 0; i < 5; i++) await settle(echo.Echo({ message: 'x' }, { metadata: UNAVAILABLE }));
    expect(await settle(echo.Echo({ message: 'x' }))).toBeInstanceOf(CircuitOpenError);
    await expect(users.QueryBasicInfoByID({ id: 7 })).resolves.toMatchObject({ id: 7 });
    expect(pool.stats().channels).toBe(1);
    const breakers = pool.stats().perChannel[0]!.breakers;
    // Beside the methods' circuits, the target's (method undefined), which the server's own
    // UNAVAILABLE answers do not open: an endpoint answered them.
    expect(breakers.map((b) => [b.method, b.state])).toEqual([
      ['/resilient.test.v1.TestService/Echo', 'open'],
      [undefined, 'closed'],
      ['/users.v1.UserService/QueryBasicInfoByID', 'closed'],
    ]);
  });

  it("blocks every method of the channel with scope 'channel'", async () => {
    makePool();
    const echo = pool.client(TestServiceClient, server.address);
    const users = pool.client(UserServiceClient, server.address);
    for (let i = 0; i < 5; i++) await settle(echo.Echo({ message: 'x' }, { metadata: UNAVAILABLE }));
    expect(await settle(users.QueryBasicInfoByID({ id: 7 }))).toBeInstanceOf(CircuitOpenError);
  });
});

describe('breakers made for distinct option sets do not live until close()', () => {
  it('200 clients with computed breaker options leave a bounded number of breakers once idle', async () => {
    // Pool defaults (breakers per method), not FAST_BREAKER: each client brings its own options.
    pool = newPool({ deadlineMs: 5_000 });
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

describe('connect watchdog', () => {
  let proxy: FaultProxy;

  beforeEach(async () => {
    // A peer that accepts TCP and never answers on its first connection; later ones forward.
    proxy = await startFaultProxy({ port: server.port }, { blackholeFirst: 1 });
  });

  afterEach(async () => {
    await proxy.close();
  });

  it('without it, calls keep failing on the stuck connection', async () => {
    const echo = makePool({ connectTimeoutMs: false, retry: false }).client(TestServiceClient, proxy.address, {
      channelOptions: { 'grpc.use_local_subchannel_pool': 1 },
    });
    for (let i = 0; i < 3; i++) {
      const error = await settle(echo.Echo({ message: 'x' }, { deadlineMs: 400 }));
      expect(error).toMatchObject({ code: grpc.status.DEADLINE_EXCEEDED });
    }
    expect(proxy.accepted).toBe(1);
    expect(server.calls).toHaveLength(0);
    expect(pool.stats().perChannel[0]).toMatchObject({ state: 'connecting', replacements: 0 });
  });

  it('with it, replaces the stuck channel: calls succeed, the stuck one is closed, channels stay 1', async () => {
    makePool({ connectTimeoutMs: 500, retry: { initialDelayMs: 10, maxDelayMs: 50 } });
    const replaced: unknown[] = [];
    const states: ChannelStateChange[] = [];
    pool.onChannelReplaced((event) => replaced.push(event));
    pool.onChannelStateChange((event) => states.push(event));
    const echo = pool.client(TestServiceClient, proxy.address, { channelOptions: { 'grpc.use_local_subchannel_pool': 1 } });

    const reply = await echo.Echo({ message: 'through' }, { deadlineMs: 5_000 });
    expect(reply).toMatchObject({ message: 'through' });
    expect(proxy.accepted).toBe(2);
    expect(replaced).toEqual([expect.objectContaining({ target: proxy.address, reason: 'connect-timeout', replacements: 1 })]);
    expect((replaced[0] as { connectingMs: number }).connectingMs).toBeGreaterThanOrEqual(490);
    expect(states.map((s) => s.state)).toContain('ready');
    const stats = pool.stats();
    expect(stats.channels).toBe(1);
    expect(stats.channelsCreated).toBe(1);
    expect(stats.perChannel[0]).toMatchObject({ replacements: 1, state: 'ready' });
    // The stuck grpc-js channel was closed: only the replacement is left.
    expect(await channelzChannels(proxy.address)).toBe(1);
  });
});

describe('events', () => {
  it('reports channel state changes and keeps a throwing listener from breaking calls', async () => {
    makePool();
    const states: string[] = [];
    pool.onChannelStateChange(() => {
      throw new Error('listener bug');
    });
    const subscription = pool.onChannelStateChange((e) => states.push(`${e.previous}->${e.state}`));
    await pool.client(TestServiceClient, server.address).Echo({ message: 'x' });
    expect(states).toEqual(['idle->connecting', 'connecting->ready']);
    subscription.dispose();
    await server.kill();
    await expect.poll(() => pool.stats().perChannel[0]!.state).not.toBe('ready');
    expect(states).toHaveLength(2);
  });
});
