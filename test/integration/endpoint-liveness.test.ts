// Per-endpoint liveness on real sockets (issue 19 row 4; the timed scenario with 3 endpoints and
// 8 callers is test/chaos/endpoint-liveness.test.ts): two test servers, each behind a fault
// proxy, one `ipv4:` target. The established connection to one endpoint goes silent (no byte, no
// FIN, no RST): the pool drops that connection (the sockets are filed by channel and remote
// address in releasing-credentials.ts), grpc-js reconnects, and calls succeed again. No timing is asserted: the loops end by an event or their bound.
import { afterEach, describe, expect, it } from 'vitest';
import { ChannelPool, type EndpointStalledReplacement } from '../../src/index.js';
import { startProxiedServer, type FaultProxy } from '../helpers/fault-proxy.js';
import { TestServiceClient } from '../helpers/protos.js';

const cleanups: Array<() => Promise<unknown>> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

const proxiedServer = (): Promise<FaultProxy> => startProxiedServer(cleanups);

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

describe('per-endpoint liveness', () => {
  it("drops the silent endpoint's connection; grpc-js reconnects to it and calls succeed", async () => {
    const proxies = [await proxiedServer(), await proxiedServer()];
    // Long enough that a busy machine's slow answers from the healthy endpoint are no stall.
    const pool = new ChannelPool({ stallTimeoutMs: 2_000 });
    cleanups.push(() => pool.close({ graceMs: 0 }));
    const drops: EndpointStalledReplacement[] = [];
    pool.onChannelReplaced((event) => {
      if (event.reason === 'endpoint-stalled') drops.push(event);
    });
    const echo = pool.client(TestServiceClient, `ipv4:${proxies[0]!.address},${proxies[1]!.address}`);
    for (let i = 0; i < 10 && proxies.some((p) => p.accepted === 0); i++) await echo.Echo({ message: 'warm' });
    await Promise.all([echo.Echo({ message: 'warm' }), echo.Echo({ message: 'warm' })]);
    expect(proxies.map((p) => p.accepted)).toEqual([1, 1]);

    expect(proxies[0]!.freezeEstablished()).toBe(1);
    // Calls keep going until the frozen endpoint's connection is dropped (bounded).
    const calls: Array<Promise<unknown>> = [];
    for (let i = 0; i < 600 && !drops.some((d) => d.address === proxies[0]!.address); i++) {
      calls.push(echo.Echo({ message: `${i}` }).catch((error: unknown) => error));
      await sleep(50);
    }
    await Promise.all(calls);
    const drop = drops.find((d) => d.address === proxies[0]!.address);
    expect(drop, JSON.stringify(drops)).toBeDefined();
    expect(drop).toMatchObject({ stallTimeoutMs: 2_000, replacements: 0 });
    expect(drop!.silentMs).toBeGreaterThanOrEqual(2_000);

    // grpc-js reconnects to the endpoint through the proxy (new connections pass), and both
    // endpoints answer again: 20 calls in a row succeed (a call picked in the moment the dropped
    // connection closes may still fail UNAVAILABLE, hence the bounded loop).
    let inARow = 0;
    for (let i = 0; i < 200 && inARow < 20; i++) {
      const ok = await echo.Echo({ message: `after-${i}` }).then(
        () => true,
        () => false,
      );
      inARow = ok ? inARow + 1 : 0;
    }
    expect(inARow).toBe(20);
    expect(proxies[0]!.accepted).toBe(2);
    expect(pool.stats().perChannel[0]!.endpointStalls).toBeGreaterThanOrEqual(1);
  }, 60_000);

  it('a single-endpoint target has no endpoint watch: the stall detector replaces the channel', async () => {
    const proxy = await proxiedServer();
    const pool = new ChannelPool({ stallTimeoutMs: 500, deadlineMs: 2_000 });
    cleanups.push(() => pool.close({ graceMs: 0 }));
    const reasons: string[] = [];
    pool.onChannelReplaced((event) => reasons.push(event.reason));
    const echo = pool.client(TestServiceClient, proxy.address);
    await echo.Echo({ message: 'warm' });
    expect(proxy.freezeEstablished()).toBe(1);
    const calls: Array<Promise<unknown>> = [];
    for (let i = 0; i < 600 && reasons.length === 0; i++) {
      calls.push(echo.Echo({ message: `${i}` }).catch((error: unknown) => error));
      await sleep(50);
    }
    await Promise.all(calls);
    expect(reasons[0]).toBe('stalled');
    expect(reasons).not.toContain('endpoint-stalled');
    expect(pool.stats().perChannel[0]!.endpointStalls).toBe(0);
  }, 60_000);
});

describe('an attempt that grpc-js threw while making it', () => {
  for (const several of [false, true]) {
    it(`leaves no waiting call behind for the liveness watches (${several ? 'two endpoints' : 'one endpoint'})`, async () => {
      const proxies = several ? [await proxiedServer(), await proxiedServer()] : [await proxiedServer()];
      const pool = new ChannelPool({ stallTimeoutMs: 300 });
      cleanups.push(() => pool.close({ graceMs: 0 }));
      const echo = pool.client(TestServiceClient, several ? `ipv4:${proxies.map((p) => p.address).join(',')}` : proxies[0]!.address);
      await echo.Echo({ message: 'warm' });
      const thrower = () => {
        throw new Error('interceptor bug');
      };
      for (let i = 0; i < 5; i++)
        await expect(echo.Echo({ message: 'x' }, { interceptors: [thrower] })).rejects.toMatchObject({ code: 13 });
      // Were those calls still counted as waiting, the channel (or an endpoint) would look silent after 300 ms.
      await sleep(1_000);
      expect(pool.stats().perChannel[0]).toMatchObject({ stalls: 0, endpointStalls: 0, replacements: 0 });
    }, 30_000);
  }
});
