// The connect watchdog leaves no socket behind (issue 13). A persistent half-open peer (every
// connection accepted, never answered) makes the watchdog replace the channel again and again;
// the sockets open at the peer are counted throughout, and after close(). releasing-credentials.ts
// relies on grpc-js internals: the raw grpc-js control below pins the leak it exists for (if it
// ever passes with 0, grpc-node #2785 is fixed and the wrapper can go).
import * as grpc from '@grpc/grpc-js';
import { afterEach, describe, expect, it } from 'vitest';
import { ChannelPool, type ChannelReplaced } from '../../src/index.js';
import { releasingCredentials } from '../../src/channel/releasing-credentials.js';
import { startFaultProxy } from '../helpers/fault-proxy.js';
import { TestServiceClient } from '../helpers/protos.js';
import { startTestServer } from '../helpers/test-server.js';

const cleanups: Array<() => Promise<unknown>> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

async function halfOpenPeer() {
  const server = await startTestServer();
  cleanups.push(() => server.kill());
  const proxy = await startFaultProxy({ port: server.port }, { mode: 'blackhole' });
  cleanups.push(() => proxy.close());
  return proxy;
}

/** Waits until `live()` is 0 or `ms` passed; returns the last count. */
async function settle(live: () => number, ms: number): Promise<number> {
  for (const end = performance.now() + ms; live() > 0 && performance.now() < end; ) await sleep(20);
  return live();
}

describe('connect watchdog against a persistent half-open peer', () => {
  it('keeps at most one socket open at the peer over many replacements, and close() leaves none', async () => {
    const proxy = await halfOpenPeer();
    const pool = new ChannelPool({ connectTimeoutMs: 150, deadlineMs: 600, breaker: false, retry: false });
    cleanups.push(() => pool.close({ graceMs: 0 }));
    const replaced: ChannelReplaced[] = [];
    pool.onChannelReplaced((event) => replaced.push(event));
    const echo = pool.client(TestServiceClient, proxy.address);

    let maxLive = 0;
    const sampler = setInterval(() => (maxLive = Math.max(maxLive, proxy.live)), 10);
    const end = performance.now() + 2_500;
    for (let i = 0; performance.now() < end && i < 100; i++) await echo.Echo({ message: `${i}` }).catch(() => undefined);
    clearInterval(sampler);

    expect(replaced.length).toBeGreaterThanOrEqual(8);
    expect(replaced.every((r) => r.reason === 'connect-timeout')).toBe(true);
    expect(proxy.accepted).toBeGreaterThanOrEqual(replaced.length);
    // One socket per channel attempt; the replaced channel's is destroyed as the new one dials
    // (the peer may see the close a moment after the new connection).
    expect(maxLive).toBeLessThanOrEqual(2);
    expect(await settle(() => proxy.live, 1_000)).toBeLessThanOrEqual(1);

    await pool.close({ graceMs: 0 });
    expect(await settle(() => proxy.live, 2_000)).toBe(0);
    console.info(
      `[watchdog-leak] ${replaced.length} replacements in 2.5 s, ${proxy.accepted} connections accepted, at most ${maxLive} open at once, 0 after close()`,
    );
  });

  it('pins the grpc-js leak the wrapper exists for, and the wrapper releasing it', async () => {
    const proxy = await halfOpenPeer();
    const options = { 'grpc.use_local_subchannel_pool': 1 };
    const insecure = grpc.credentials.createInsecure();
    async function closedWhileConnecting(credentials: grpc.ChannelCredentials): Promise<void> {
      const client = new TestServiceClient(proxy.address, credentials, options);
      client.Echo!({ message: 'x' }, { deadline: Date.now() + 200 }, () => undefined);
      for (let i = 0; i < 50 && client.getChannel().getConnectivityState(false) !== grpc.connectivityState.CONNECTING; i++) await sleep(10);
      await sleep(100);
      expect(client.getChannel().getConnectivityState(false)).toBe(grpc.connectivityState.CONNECTING);
      client.close();
    }
    for (let i = 0; i < 3; i++) await closedWhileConnecting(insecure);
    await sleep(300);
    // Raw grpc-js: every channel closed while CONNECTING left its socket (grpc-node #2785).
    expect(proxy.live).toBe(3);

    const wrapped = releasingCredentials(insecure)!;
    expect(wrapped).toBeDefined();
    for (let i = 0; i < 3; i++) await closedWhileConnecting(wrapped);
    expect(await settle(() => proxy.live, 1_000)).toBe(3);
  });

  it('keeps one wrapper per credentials object, equal as its credentials are', () => {
    const tls = grpc.credentials.createSsl();
    const otherTls = grpc.credentials.createSsl();
    const a = releasingCredentials(tls)!;
    expect(releasingCredentials(tls)).toBe(a);
    expect(releasingCredentials(a)).toBe(a);
    expect(a._isSecure()).toBe(true);
    expect(a._equals(releasingCredentials(otherTls)!)).toBe(false);
    const insecureA = releasingCredentials(grpc.credentials.createInsecure())!;
    const insecureB = releasingCredentials(grpc.credentials.createInsecure())!;
    expect(insecureA).not.toBe(insecureB);
    expect(insecureA._equals(insecureB)).toBe(true);
    // Something that only looks like credentials cannot be wrapped: the watchdog backs off instead.
    expect(releasingCredentials({ _isSecure: () => false } as never)).toBeUndefined();
  });
});
