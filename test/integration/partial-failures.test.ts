// Partial failures stay partial (issue 11): one sick endpoint of a multi-address target, one
// broken method of a target, healthy streams and caller aborts must not turn into a total
// outage; a target whose every endpoint fails still fails fast. Pool defaults unless a row of
// the table says otherwise. Real grpc-js servers on 127.0.0.1, one per endpoint
// (test/helpers/endpoint-fleet.ts), scripted as a whole: UNAVAILABLE, INTERNAL or hanging.
//
// Targets from the issue: after a detection window of at most 3 s, >= 99 % of calls succeed in
// every "1 sick of N >= 2" case; 100 % for the healthy methods and services of a target with
// one failing method; with every endpoint failing, >= 80 % of calls are refused at once; a
// sick endpoint that recovers gets traffic again.
import * as grpc from '@grpc/grpc-js';
import { afterEach, describe, expect, it } from 'vitest';
import { ChannelPool, CircuitOpenError, type ChannelPoolOptions, type ServerStreamMethod, type UnaryMethod } from '../../src/index.js';
import { startFleet, TEST_ECHO_PATH, type EndpointMode, type Fleet } from '../helpers/endpoint-fleet.js';
import { describeLoad, drive } from '../helpers/load.js';
import { TestServiceClient, UserServiceClient } from '../helpers/protos.js';
import type { EchoRequest, EchoResponse, StreamRequest, UserRequest, BasicInfo } from '../helpers/protos.js';

/** The detection window: sick endpoints must be out of rotation after this long. */
const DETECTION_WINDOW_MS = 3_000;
/** Calls measured after the window (each case must reach >= 99 % of them). */
const MEASURED_CALLS = 200;
/** How long an endpoint that recovered may wait before it gets traffic again (an assumption: */
/** the issue says "gets traffic again"; the ejection time is the pool's default to choose). */
const RECOVERY_LIMIT_MS = 10_000;
const ROUND_ROBIN = JSON.stringify({ loadBalancingConfig: [{ round_robin: {} }] });

interface Test {
  Echo: UnaryMethod<Partial<EchoRequest>, EchoResponse>;
  ServerStream: ServerStreamMethod<Partial<StreamRequest>, EchoResponse>;
}
interface Users {
  QueryBasicInfoByID: UnaryMethod<UserRequest, BasicInfo>;
}

let pool: ChannelPool | undefined;
let fleet: Fleet | undefined;

afterEach(async () => {
  await pool?.close({ graceMs: 0 });
  await fleet?.close();
  pool = undefined;
  fleet = undefined;
});

async function setUp(modes: EndpointMode[], options: ChannelPoolOptions = {}): Promise<{ fleet: Fleet; pool: ChannelPool }> {
  fleet = await startFleet(modes);
  pool = new ChannelPool(options);
  return { fleet, pool };
}

/** `sick` at index 0 ('first') or at the end ('last') of `n` endpoints, the others healthy. */
function modesWith(sick: EndpointMode, n: number, position: 'first' | 'last'): EndpointMode[] {
  const modes: EndpointMode[] = Array.from({ length: n }, () => 'healthy');
  modes[position === 'first' ? 0 : n - 1] = sick;
  return modes;
}

/** Calls for the detection window (outcomes ignored), then measures MEASURED_CALLS calls. */
async function afterDetectionWindow(call: () => Promise<unknown>) {
  await drive(call, { durationMs: DETECTION_WINDOW_MS, maxCalls: 5_000, concurrency: 4 });
  return drive(call, { durationMs: 15_000, maxCalls: MEASURED_CALLS, concurrency: 4 });
}

async function streamToEnd(stream: AsyncIterable<unknown>): Promise<{ messages: number; error: unknown }> {
  let messages = 0;
  try {
    for await (const _ of stream) messages++;
    return { messages, error: undefined };
  } catch (error) {
    return { messages, error };
  }
}

type SickCase = { label: string; mode: EndpointMode; method: { deadlineMs?: number; idempotent?: boolean; retry?: { perAttemptTimeoutMs: number } } };
const SICK_CASES: SickCase[] = [
  { label: 'UNAVAILABLE', mode: grpc.status.UNAVAILABLE, method: {} },
  { label: 'INTERNAL (idempotent)', mode: grpc.status.INTERNAL, method: { idempotent: true } },
  // The row: hangs, 1 s deadline, perAttemptTimeoutMs 250, idempotent.
  { label: 'hanging (1 s deadline, perAttemptTimeoutMs 250, idempotent)', mode: 'hang', method: { deadlineMs: 1_000, idempotent: true, retry: { perAttemptTimeoutMs: 250 } } },
];
const SHAPES = [
  { n: 2, position: 'first' },
  { n: 2, position: 'last' },
  { n: 3, position: 'first' },
  { n: 3, position: 'last' },
] as const;

describe('one sick endpoint of N >= 2, pool defaults (default LB)', () => {
  for (const sick of SICK_CASES) {
    for (const { n, position } of SHAPES) {
      it(`1 of ${n} ${sick.label}, sick ${position}: >= 99 % succeed after the detection window`, async () => {
        const { fleet, pool } = await setUp(modesWith(sick.mode, n, position));
        const test = pool.client(TestServiceClient, fleet.target, { methods: { Echo: sick.method } }) as unknown as Test;
        const result = await afterDetectionWindow(() => test.Echo({ message: 'x' }));
        expect(result.successPercent, describeLoad(result)).toBeGreaterThanOrEqual(99);
      });
    }
  }
});

describe("the user's own round_robin", () => {
  for (const position of ['first', 'last'] as const) {
    it(`1 of 3 answers INTERNAL, idempotent method, sick ${position}: >= 99 % (retries must not drain)`, async () => {
      const { fleet, pool } = await setUp(modesWith(grpc.status.INTERNAL, 3, position));
      const test = pool.client(TestServiceClient, fleet.target, {
        channelOptions: { 'grpc.service_config': ROUND_ROBIN },
        methods: { Echo: { idempotent: true } },
      }) as unknown as Test;
      const result = await afterDetectionWindow(() => test.Echo({ message: 'x' }));
      expect(result.successPercent, describeLoad(result)).toBeGreaterThanOrEqual(99);
    });

    it(`1 of 2 answers UNAVAILABLE, sick ${position}: >= 99 % (the circuit stays closed for the healthy one)`, async () => {
      const { fleet, pool } = await setUp(modesWith(grpc.status.UNAVAILABLE, 2, position));
      const test = pool.client(TestServiceClient, fleet.target, { channelOptions: { 'grpc.service_config': ROUND_ROBIN } }) as unknown as Test;
      const result = await afterDetectionWindow(() => test.Echo({ message: 'x' }));
      expect(result.successPercent, describeLoad(result)).toBeGreaterThanOrEqual(99);
    });
  }
});

describe('a sick endpoint that recovers', () => {
  it('gets traffic again, and calls keep succeeding', async () => {
    const { fleet, pool } = await setUp([grpc.status.UNAVAILABLE, 'healthy']);
    const test = pool.client(TestServiceClient, fleet.target) as unknown as Test;
    await drive(() => test.Echo({ message: 'x' }), { durationMs: DETECTION_WINDOW_MS, maxCalls: 5_000 });
    const sick = fleet.endpoints[0]!;
    sick.setMode('healthy');
    sick.resetCounts();
    const afterRecovery = await drive(
      async () => {
        if (sick.arrived > 0) return; // stop calling once it has traffic again
        await test.Echo({ message: 'x' });
      },
      { durationMs: RECOVERY_LIMIT_MS, maxCalls: 20_000, concurrency: 2 },
    );
    expect(sick.arrived, `recovered endpoint got no traffic within ${RECOVERY_LIMIT_MS} ms (${describeLoad(afterRecovery)})`).toBeGreaterThan(0);
    const later = await drive(() => test.Echo({ message: 'x' }), { durationMs: 5_000, maxCalls: 100 });
    expect(later.successPercent, describeLoad(later)).toBe(100);
  }, 40_000);
});

describe('every endpoint failing', () => {
  for (const n of [2, 3]) {
    it(`${n} of ${n} UNAVAILABLE: the circuit opens and >= 80 % of calls are refused at once`, async () => {
      const { fleet, pool } = await setUp(Array.from({ length: n }, () => grpc.status.UNAVAILABLE));
      const test = pool.client(TestServiceClient, fleet.target) as unknown as Test;
      const result = await afterDetectionWindow(() => test.Echo({ message: 'x' }));
      expect(result.ok, describeLoad(result)).toBe(0);
      const refused = result.names['CircuitOpenError'] ?? 0;
      expect(refused / result.calls, describeLoad(result)).toBeGreaterThanOrEqual(0.8);
    });
  }
});

describe('one failing method of a target', () => {
  it('does not refuse another service or another method of the same service (100 %)', async () => {
    const { fleet, pool } = await setUp(['healthy', 'healthy']);
    for (const endpoint of fleet.endpoints) endpoint.failMethod(TEST_ECHO_PATH, grpc.status.INTERNAL);
    const test = pool.client(TestServiceClient, fleet.target) as unknown as Test;
    const users = pool.client(UserServiceClient, fleet.target) as unknown as Users;
    // The broken method runs alongside, for the whole test.
    const broken = drive(() => test.Echo({ message: 'x' }), { durationMs: DETECTION_WINDOW_MS + 6_000, maxCalls: 5_000, concurrency: 2 });
    await new Promise((resolve) => setTimeout(resolve, DETECTION_WINDOW_MS));
    const otherService = await drive(() => users.QueryBasicInfoByID({ id: 1 }), { durationMs: 6_000, maxCalls: 150, concurrency: 2 });
    const otherMethod = await drive(
      async () => {
        const { messages, error } = await streamToEnd(test.ServerStream({ message: 's', count: 1 }));
        if (error !== undefined) throw error;
        expect(messages).toBe(1);
      },
      { durationMs: 6_000, maxCalls: 150, concurrency: 2 },
    );
    const brokenResult = await broken;
    expect(brokenResult.ok, 'the broken method must really be broken').toBe(0);
    expect(otherService.successPercent, `another service: ${describeLoad(otherService)}`).toBe(100);
    expect(otherMethod.successPercent, `another method: ${describeLoad(otherMethod)}`).toBe(100);
  });
});

describe('what a status means, per call shape', () => {
  it('30 healthy subscription streams that end at their own deadline leave the circuit closed', async () => {
    const { fleet, pool } = await setUp(['healthy']);
    const test = pool.client(TestServiceClient, fleet.target) as unknown as Test;
    const streams = await Promise.all(
      Array.from({ length: 30 }, () => streamToEnd(test.ServerStream({ message: 's', count: 10_000, intervalMs: 20 }, { deadlineMs: 300 }))),
    );
    for (const { messages, error } of streams) {
      expect(messages).toBeGreaterThan(0);
      expect((error as { code?: number } | undefined)?.code).toBe(grpc.status.DEADLINE_EXCEEDED);
    }
    await expect(test.Echo({ message: 'after the streams' })).resolves.toMatchObject({ message: 'after the streams' });
  });

  it('calls aborted by the caller count neither way: 30 aborts then 15 UNAVAILABLE open the circuit as 15 UNAVAILABLE alone do', async () => {
    // volumeThreshold 10 so that 15 failures are enough volume on their own (the default, 20, is not).
    const options: ChannelPoolOptions = { retry: false, breaker: { volumeThreshold: 10 } };
    // Control: 15 UNAVAILABLE calls alone open the circuit.
    {
      const { fleet, pool } = await setUp([grpc.status.UNAVAILABLE], options);
      const test = pool.client(TestServiceClient, fleet.target) as unknown as Test;
      for (let i = 0; i < 15; i++) await test.Echo({ message: 'x' }).catch(() => undefined);
      await expect(test.Echo({ message: 'x' }), 'control: 15 UNAVAILABLE alone').rejects.toBeInstanceOf(CircuitOpenError);
      await pool.close({ graceMs: 0 });
      await fleet.close();
    }
    const { fleet: aborted, pool: abortPool } = await setUp(['healthy'], options);
    const test = abortPool.client(TestServiceClient, aborted.target) as unknown as Test;
    for (let i = 0; i < 30; i++) {
      const controller = new AbortController();
      const call = test.Echo({ message: 'slow', delayMs: 1_000 }, { signal: controller.signal });
      setTimeout(() => controller.abort(new Error('caller gave up')), 20);
      await call.catch(() => undefined);
    }
    aborted.endpoints[0]!.setMode(grpc.status.UNAVAILABLE);
    for (let i = 0; i < 15; i++) await test.Echo({ message: 'x' }).catch(() => undefined);
    await expect(test.Echo({ message: 'x' }), 'after 30 aborts and 15 UNAVAILABLE').rejects.toBeInstanceOf(CircuitOpenError);
  });

  it('a long healthy server stream as the half-open probe is judged at its first message', async () => {
    const { fleet, pool } = await setUp([grpc.status.UNAVAILABLE], {
      retry: false,
      breaker: { volumeThreshold: 5, errorThresholdPercentage: 50, resetTimeoutMs: 500 },
    });
    const test = pool.client(TestServiceClient, fleet.target) as unknown as Test;
    for (let i = 0; i < 10; i++) await test.Echo({ message: 'x' }).catch(() => undefined);
    await expect(test.Echo({ message: 'x' })).rejects.toBeInstanceOf(CircuitOpenError);
    fleet.endpoints[0]!.setMode('healthy');
    await new Promise((resolve) => setTimeout(resolve, 700)); // past resetTimeoutMs: the next call is the probe
    const controller = new AbortController();
    const probe = test.ServerStream({ message: 'probe', count: 200, intervalMs: 50 }, { signal: controller.signal, deadlineMs: 20_000 });
    const iterator = probe[Symbol.asyncIterator]();
    try {
      await iterator.next(); // the first message: the probe has succeeded
      await new Promise((resolve) => setTimeout(resolve, 200));
      await expect(test.Echo({ message: 'while the probe streams' })).resolves.toMatchObject({ message: 'while the probe streams' });
    } finally {
      controller.abort(new Error('done'));
      await iterator.return?.().catch(() => undefined);
    }
  });
});

describe('visibility (to be specified with the API)', () => {
  it.todo('stats() lists each endpoint: address, state, ejected, calls, failures');
  it.todo('a typed event reports an ejection and a return');
});
