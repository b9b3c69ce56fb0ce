// Periodic DNS re-resolution: the name is looked up again every interval, endpoints added behind
// it get traffic, removed ones are drained. The name's answer comes from node's
// dns.promises.lookup, which grpc-js's own DNS resolver calls (replaced here by an answer the test
// changes; grpc-js itself is real); the endpoints are three servers on 127.0.0.1, .2 and .3, one
// port.
import dns from 'node:dns';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { ChannelPool } from '../../src/index.js';
import { refreshingTarget, REFRESHING_DNS_SCHEME } from '../../src/channel/refreshing-resolver.js';
import { TestServiceClient } from '../helpers/protos.js';
import { startTestServer, type TestServer } from '../helpers/test-server.js';

const NAME = 'svc.resilient-grpc.test';
const ROUND_ROBIN = { 'grpc.service_config': JSON.stringify({ loadBalancingConfig: [{ round_robin: {} }] }) };

const cleanups: Array<() => Promise<unknown>> = [];
afterEach(async () => {
  vi.restoreAllMocks();
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** Three servers on one port, at 127.0.0.1, 127.0.0.2 and 127.0.0.3, and a DNS answer to change. */
async function endpoints() {
  const a = await startTestServer({ host: '127.0.0.1' });
  cleanups.push(() => a.kill());
  const b = await startTestServer({ host: '127.0.0.2', port: a.port });
  cleanups.push(() => b.kill());
  const c = await startTestServer({ host: '127.0.0.3', port: a.port });
  cleanups.push(() => c.kill());
  const answer = { hosts: ['127.0.0.1', '127.0.0.2'], lookups: 0 };
  const realLookup = dns.promises.lookup.bind(dns.promises);
  vi.spyOn(dns.promises, 'lookup').mockImplementation((async (hostname: string, options: unknown) => {
    if (hostname !== NAME) return realLookup(hostname, options as dns.LookupAllOptions);
    answer.lookups++;
    return answer.hosts.map((address) => ({ address, family: 4 }));
  }) as typeof dns.promises.lookup);
  return { servers: { a, b, c }, answer, port: a.port };
}

type Counts = Record<'a' | 'b' | 'c' | 'failed' | 'calls', number>;

/**
 * Calls back to back until `done` says so, given what each server has received meanwhile (or
 * 5,000 calls); returns those counts. Each phase ends on what the servers saw, not after a set
 * time, which a loaded machine fills with fewer calls.
 */
async function spread(
  echo: { Echo(request: { message: string }): Promise<unknown> },
  servers: Record<string, TestServer>,
  done: (counts: Counts) => boolean,
): Promise<Counts> {
  const before = Object.fromEntries(Object.entries(servers).map(([name, server]) => [name, server.calls.length]));
  let failed = 0;
  let calls = 0;
  const counts = (): Counts =>
    ({
      ...Object.fromEntries(Object.entries(servers).map(([name, server]) => [name, server.calls.length - before[name]!])),
      failed,
      calls,
    }) as Counts;
  while (calls < 5_000 && !done(counts())) {
    calls++;
    await echo.Echo({ message: 'x' }).catch(() => failed++);
  }
  return counts();
}

describe('DNS re-resolution', () => {
  it('looks the name up again every interval: an added endpoint gets traffic, a removed one is drained', async () => {
    const { servers, answer, port } = await endpoints();
    const pool = new ChannelPool({ dnsRefreshMs: 300, channelOptions: ROUND_ROBIN });
    cleanups.push(() => pool.close({ graceMs: 0 }));
    const echo = pool.client(TestServiceClient, `${NAME}:${port}`);

    const before = await spread(echo, servers, (n) => n.a > 0 && n.b > 0);
    expect(before.a).toBeGreaterThan(0);
    expect(before.b).toBeGreaterThan(0);
    expect(before.c).toBe(0);

    answer.hosts = ['127.0.0.2', '127.0.0.3'];
    const lookupsAtChange = answer.lookups;
    // The next refresh looks the name up again by itself (grpc-js alone never would, see below;
    // 10 s is slack for a loaded machine, and a third of the 30 s default interval)...
    await expect.poll(() => answer.lookups, { timeout: 10_000 }).toBeGreaterThan(lookupsAtChange);
    // ...the added endpoint then gets traffic...
    const switching = await spread(echo, servers, (n) => n.c > 0);
    expect(switching.c).toBeGreaterThan(0);
    // ...and from then on the removed one gets none: 60 calls over the two endpoints left.
    const after = await spread(echo, servers, (n) => n.calls >= 60);
    expect(after.a).toBe(0);
    expect(after.b).toBeGreaterThan(0);
    expect(after.c).toBeGreaterThan(0);
    expect(before.failed + switching.failed + after.failed).toBe(0);
    console.info(
      `[dns-refresh] before: ${JSON.stringify(before)}, switching: ${JSON.stringify(switching)}, after [B, C]: ${JSON.stringify(after)}, lookups ${answer.lookups}`,
    );
  });

  it('without it (dnsRefreshMs: false) an added endpoint gets nothing: grpc-js alone does not look again', async () => {
    const { servers, answer, port } = await endpoints();
    const pool = new ChannelPool({ dnsRefreshMs: false, channelOptions: ROUND_ROBIN });
    cleanups.push(() => pool.close({ graceMs: 0 }));
    const echo = pool.client(TestServiceClient, `dns:${NAME}:${port}`);
    await spread(echo, servers, (n) => n.a > 0 && n.b > 0);
    answer.hosts = ['127.0.0.1', '127.0.0.2', '127.0.0.3'];
    // Two intervals of the test above: time enough for a refresh, were there one.
    await sleep(700);
    const after = await spread(echo, servers, (n) => n.calls >= 60);
    expect(after.c).toBe(0);
    expect(answer.lookups).toBe(1);
  });

  it('rewrites DNS targets only', () => {
    const s = REFRESHING_DNS_SCHEME;
    expect(refreshingTarget('users.internal:50051')).toBe(`${s}:///users.internal:50051`);
    expect(refreshingTarget('users.internal')).toBe(`${s}:///users.internal`);
    expect(refreshingTarget('dns:users.internal:50051')).toBe(`${s}:///users.internal:50051`);
    expect(refreshingTarget('dns:///users.internal:50051')).toBe(`${s}:///users.internal:50051`);
    expect(refreshingTarget('localhost:50051')).toBe(`${s}:///localhost:50051`);
    for (const untouched of [
      '127.0.0.1:50051',
      '[::1]:50051',
      'dns:10.0.0.1:80',
      'dns://8.8.8.8/users.internal:50051',
      'ipv4:127.0.0.1:1,127.0.0.2:1',
      'unix:/run/app.sock',
      'xds:///users',
      '::1',
    ]) {
      expect(refreshingTarget(untouched), untouched).toBeUndefined();
    }
  });

  it('dnsRefreshMs is validated', () => {
    expect(() => new ChannelPool({ dnsRefreshMs: -1 })).toThrow(RangeError);
    expect(() => new ChannelPool({ dnsRefreshMs: Number.NaN })).toThrow(TypeError);
  });
});
