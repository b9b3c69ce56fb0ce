// Client-side health checking (gRFC A17, the `healthCheck` client option) against real grpc-js
// servers on 127.0.0.1, each serving the standard health service (test/helpers/health-service.ts)
// beside TestService. What a user notices: an endpoint that says NOT_SERVING gets no new calls
// and no call fails for it; SERVING brings it back; a server without the health service still
// serves, with one warning event; close() ends every health stream.
//
// No wall-clock margins here (this is the fast tier): "no new calls" is asserted for the calls
// started after the pool reported NOT_SERVING, and the server stops serving at that point, so a
// call picked for it would fail (retries are off). How fast the report arrives under load is
// measured in test/chaos/health-check.test.ts.
import * as grpc from '@grpc/grpc-js';
import { afterEach, describe, expect, it } from 'vitest';
import { startFleet, type Fleet } from '../helpers/endpoint-fleet.js';
import { describeLoad, drive } from '../helpers/load.js';
import { TestServiceClient } from '../helpers/protos.js';
import { startTestServer, type TestServer } from '../helpers/test-server.js';
import { ChannelPool, type EndpointHealthChange } from '../../src/index.js';

interface Test {
  Echo(request: { message: string }, options?: { metadata?: Record<string, string> }): Promise<{ message: string }>;
}

const cleanups: Array<() => Promise<unknown>> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function fleetOf(n: number): Promise<Fleet> {
  const fleet = await startFleet(
    Array.from({ length: n }, () => 'healthy' as const),
    { health: true },
  );
  cleanups.push(() => fleet.close());
  return fleet;
}

function poolFor(): { pool: ChannelPool; events: EndpointHealthChange[] } {
  const pool = new ChannelPool({ deadlineMs: 10_000 });
  cleanups.push(() => pool.close({ graceMs: 0 }));
  const events: EndpointHealthChange[] = [];
  pool.onEndpointHealth((event) => events.push(event));
  return { pool, events };
}

/**
 * Resolves once `events` holds one matching `match` at index `from` or later, polling (events
 * arrive from grpc-js callbacks).
 */
async function eventFor(events: EndpointHealthChange[], match: Partial<EndpointHealthChange>, from = 0): Promise<EndpointHealthChange> {
  let found: EndpointHealthChange | undefined;
  await expect
    .poll(
      () => {
        found = events
          .slice(from)
          .find((e) => Object.entries(match).every(([key, value]) => e[key as keyof EndpointHealthChange] === value));
        return found !== undefined;
      },
      { message: `an onEndpointHealth event ${JSON.stringify(match)}` },
    )
    .toBe(true);
  return found!;
}

describe('an endpoint that reports NOT_SERVING', () => {
  for (const n of [2, 3]) {
    it(`1 of ${n}: gets no new calls once reported, no call started after the report fails under 8 callers, and SERVING brings it back`, async () => {
      const fleet = await fleetOf(n);
      const { pool, events } = poolFor();
      // Retries off: a call picked for the endpoint after it stopped serving would fail.
      const test = pool.client(TestServiceClient, fleet.target, { healthCheck: { serviceName: '' }, retry: false }) as unknown as Test;
      const sick = fleet.endpoints[0]!;
      // A channel connects at its first call; then every endpoint says SERVING.
      await test.Echo({ message: 'warm' });
      for (const endpoint of fleet.endpoints) await eventFor(events, { address: endpoint.address, status: 'SERVING' });

      let phase: 'before' | 'reported' | 'back' = 'before';
      const afterReport = new Set<string>();
      // Calls started before the report may already be on their way to the endpoint when it
      // starts failing (a busy machine delays them): those may fail, at most one per caller.
      const failedFromBefore: string[] = [];
      let stop = false;
      const load = drive(
        async (i) => {
          const id = `call-${i}`;
          const startedIn = phase;
          if (phase === 'reported') afterReport.add(id);
          try {
            await test.Echo({ message: 'x' }, { metadata: { 'x-call-id': id } });
          } catch (error) {
            if (startedIn !== 'before' || !sick.callIds.includes(id)) throw error;
            failedFromBefore.push(id);
          }
        },
        { durationMs: 120_000, maxCalls: 1_000_000, concurrency: 8, until: () => stop },
      );

      await expect.poll(() => sick.arrived, { message: 'the endpoint gets calls before' }).toBeGreaterThan(20);
      sick.health!.set('', 'NOT_SERVING');
      const report = await eventFor(events, { address: sick.address, status: 'NOT_SERVING' });
      expect(report).toEqual({ target: fleet.target, address: sick.address, serviceName: '', status: 'NOT_SERVING', serving: false });
      // From here the endpoint would fail every call: none may reach it.
      sick.setMode(grpc.status.UNAVAILABLE);
      phase = 'reported';
      const started = afterReport.size;
      await expect.poll(() => afterReport.size - started, { message: 'calls after the report' }).toBeGreaterThan(500);
      const reached = sick.callIds.filter((id) => id !== undefined && afterReport.has(id));
      expect(reached, 'calls started after the report that reached the NOT_SERVING endpoint').toEqual([]);
      expect(pool.stats().perChannel[0]!.endpoints.find((e) => e.address === sick.address)?.serving).toBe(false);

      // SERVING again: it gets calls again.
      sick.setMode('healthy');
      sick.resetCounts();
      sick.health!.set('', 'SERVING');
      await eventFor(events, { address: sick.address, status: 'SERVING' }, events.indexOf(report) + 1);
      phase = 'back';
      await expect.poll(() => sick.arrived, { message: 'calls reach it again' }).toBeGreaterThan(20);
      stop = true;
      const result = await load;
      expect(result.ok, describeLoad(result)).toBe(result.calls);
      expect(failedFromBefore.length, 'calls in flight at the report that failed at the endpoint').toBeLessThanOrEqual(8);
      expect(pool.stats().perChannel[0]!.endpoints.every((e) => e.serving)).toBe(true);
    });
  }

  it('SERVICE_UNKNOWN (the watched service name is unknown there) counts as not serving', async () => {
    const fleet = await fleetOf(2);
    fleet.endpoints[1]!.health!.set('users.v1.UserService', 'SERVING');
    const { pool, events } = poolFor();
    const test = pool.client(TestServiceClient, fleet.target, {
      healthCheck: { serviceName: 'users.v1.UserService' },
      retry: false,
    }) as unknown as Test;
    await test.Echo({ message: 'warm' });
    await eventFor(events, { address: fleet.endpoints[0]!.address, status: 'SERVICE_UNKNOWN', serving: false });
    await eventFor(events, { address: fleet.endpoints[1]!.address, status: 'SERVING' });
    fleet.endpoints[0]!.setMode(grpc.status.UNAVAILABLE);
    fleet.resetCounts();
    for (let i = 0; i < 50; i++) await test.Echo({ message: 'x' });
    expect(fleet.endpoints[0]!.arrived).toBe(0);
    expect(fleet.endpoints[1]!.arrived).toBe(50);
    expect(fleet.endpoints[0]!.health!.asked).toEqual(['users.v1.UserService']);
  });

  it('every endpoint NOT_SERVING: calls fail fast with UNAVAILABLE, and succeed again on SERVING', async () => {
    const fleet = await fleetOf(2);
    const { pool, events } = poolFor();
    const test = pool.client(TestServiceClient, fleet.target, { healthCheck: {}, retry: false, breaker: false }) as unknown as Test;
    await test.Echo({ message: 'warm' });
    for (const endpoint of fleet.endpoints) endpoint.health!.set('', 'NOT_SERVING');
    for (const endpoint of fleet.endpoints) await eventFor(events, { address: endpoint.address, status: 'NOT_SERVING' });
    await expect(test.Echo({ message: 'x' })).rejects.toMatchObject({ code: grpc.status.UNAVAILABLE });
    expect(fleet.arrived()).toBe(1);
    for (const endpoint of fleet.endpoints) endpoint.health!.set('', 'SERVING');
    await expect.poll(() => events.filter((e) => e.status === 'SERVING').length).toBe(4);
    await expect(test.Echo({ message: 'y' })).resolves.toMatchObject({ message: 'y' });
  });
});

describe('a server without the health service', () => {
  it('counts as serving, with exactly one UNIMPLEMENTED warning event for the channel', async () => {
    const servers: TestServer[] = [];
    for (let i = 0; i < 3; i++) servers.push(await startTestServer());
    cleanups.push(() => Promise.all(servers.map((s) => s.kill())));
    const target = `ipv4:${servers.map((s) => s.address).join(',')}`;
    const { pool, events } = poolFor();
    const test = pool.client(TestServiceClient, target, { healthCheck: { serviceName: '' } }) as unknown as Test;
    for (let i = 0; i < 60; i++) await test.Echo({ message: 'x' });
    // Every endpoint took calls: none was held back for want of a health report.
    for (const server of servers) expect(server.calls.filter((c) => c.method === 'Echo').length).toBeGreaterThan(0);
    await expect.poll(() => events.length).toBe(1);
    expect(events).toEqual([
      { target, address: expect.stringMatching(/^127\.0\.0\.1:\d+$/), serviceName: '', status: 'UNIMPLEMENTED', serving: true },
    ]);
  });
});

describe('single-address targets', () => {
  it('health-check too: NOT_SERVING fails calls fast with UNAVAILABLE instead of sending them', async () => {
    const fleet = await fleetOf(1);
    const { pool, events } = poolFor();
    const endpoint = fleet.endpoints[0]!;
    const test = pool.client(TestServiceClient, endpoint.address, {
      healthCheck: { serviceName: '' },
      retry: false,
      breaker: false,
    }) as unknown as Test;
    await expect(test.Echo({ message: 'a' })).resolves.toMatchObject({ message: 'a' });
    endpoint.health!.set('', 'NOT_SERVING');
    await eventFor(events, { status: 'NOT_SERVING' });
    await expect(test.Echo({ message: 'b' })).rejects.toMatchObject({ code: grpc.status.UNAVAILABLE });
    expect(endpoint.arrived).toBe(1);
    endpoint.health!.set('', 'SERVING');
    await eventFor(events, { status: 'SERVING' }, 2);
    await expect(test.Echo({ message: 'c' })).resolves.toMatchObject({ message: 'c' });
  });

  it('without healthCheck, nothing is watched', async () => {
    const fleet = await fleetOf(2);
    const { pool, events } = poolFor();
    const test = pool.client(TestServiceClient, fleet.target) as unknown as Test;
    for (let i = 0; i < 10; i++) await test.Echo({ message: 'x' });
    expect(fleet.endpoints.map((e) => e.health!.watchesStarted)).toEqual([0, 0]);
    expect(events).toEqual([]);
  });
});

describe("the user's own pick_first", () => {
  it('is not health-checked, as A17 says: it would stick to an unhealthy endpoint rather than move', async () => {
    const fleet = await fleetOf(2);
    const { pool, events } = poolFor();
    const channelOptions = { 'grpc.service_config': JSON.stringify({ loadBalancingConfig: [{ pick_first: {} }] }) };
    const test = pool.client(TestServiceClient, fleet.target, { channelOptions, healthCheck: {} }) as unknown as Test;
    for (let i = 0; i < 10; i++) await test.Echo({ message: 'x' });
    expect(fleet.arrived()).toBe(10);
    expect(fleet.endpoints.map((e) => e.health!.watchesStarted)).toEqual([0, 0]);
    expect(events).toEqual([]);
  });
});

describe('the service config', () => {
  it('healthCheckConfig turns it on, and healthCheck: false turns it off over it', async () => {
    const fleet = await fleetOf(2);
    for (const endpoint of fleet.endpoints) endpoint.health!.set('svc', 'SERVING');
    const { pool, events } = poolFor();
    const channelOptions = { 'grpc.service_config': JSON.stringify({ healthCheckConfig: { serviceName: 'svc' } }) };
    const on = pool.client(TestServiceClient, fleet.target, { channelOptions }) as unknown as Test;
    await on.Echo({ message: 'x' });
    await expect.poll(() => fleet.endpoints.map((e) => e.health!.asked.join())).toEqual(['svc', 'svc']);
    await expect.poll(() => events.length).toBe(2);
    expect(events.map((e) => [e.serviceName, e.status])).toEqual([
      ['svc', 'SERVING'],
      ['svc', 'SERVING'],
    ]);
    const off = pool.client(TestServiceClient, fleet.target, { channelOptions, healthCheck: false }) as unknown as Test;
    for (let i = 0; i < 4; i++) await off.Echo({ message: 'x' });
    expect(pool.stats().channels).toBe(2);
    expect(fleet.endpoints.map((e) => e.health!.watchesStarted)).toEqual([1, 1]);
  });
});

describe('close()', () => {
  it('ends every health stream', async () => {
    const fleet = await fleetOf(3);
    const { pool, events } = poolFor();
    const test = pool.client(TestServiceClient, fleet.target, { healthCheck: { serviceName: '' } }) as unknown as Test;
    await test.Echo({ message: 'x' });
    await expect.poll(() => events.length).toBe(3);
    expect(fleet.endpoints.map((e) => e.health!.openWatches)).toEqual([1, 1, 1]);
    await pool.close({ graceMs: 0 });
    await expect.poll(() => fleet.endpoints.map((e) => e.health!.openWatches)).toEqual([0, 0, 0]);
  });
});

describe('bad healthCheck options', () => {
  it.each([
    [true, 'healthCheck must be false or an object { serviceName: string } ("" for the whole server), got true'],
    ['svc', 'healthCheck must be false or an object { serviceName: string } ("" for the whole server), got "svc"'],
    [{ serviceName: 5 }, 'healthCheck.serviceName must be a string (the service name to watch, "" for the whole server), got 5'],
    [{ service: 'x' }, 'healthCheck.service must be one of the known options (serviceName), got an unknown option'],
  ])('%j is refused before any call, naming the option and the value; the pool stays usable', async (value, message) => {
    const fleet = await fleetOf(1);
    const { pool } = poolFor();
    expect(() => pool.client(TestServiceClient, fleet.target, { healthCheck: value as never })).toThrow(message);
    expect(fleet.arrived()).toBe(0);
    expect(pool.stats().channels).toBe(0);
    const test = pool.client(TestServiceClient, fleet.endpoints[0]!.address) as unknown as Test;
    await expect(test.Echo({ message: 'ok' })).resolves.toMatchObject({ message: 'ok' });
  });

  it('a malformed healthCheckConfig in the service config is refused, naming it', () => {
    const { pool } = poolFor();
    const channelOptions = { 'grpc.service_config': JSON.stringify({ healthCheckConfig: { serviceName: 7 } }) };
    expect(() => pool.client(TestServiceClient, '127.0.0.1:1', { channelOptions })).toThrow(
      'channelOptions["grpc.service_config"].healthCheckConfig.serviceName must be a string ("" for the whole server), got 7',
    );
    expect(pool.stats().channels).toBe(0);
  });
});
