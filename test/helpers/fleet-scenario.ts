// Shared set-up of the partial-failure scenarios (issue 11): a fleet of test servers behind one
// multi-address target, a pool on it, and the load helpers. Used by the fast tier
// (test/integration/partial-failures.test.ts) and the slow one (test/chaos/partial-failures-matrix.test.ts).
import { afterEach } from 'vitest';
import { ChannelPool, type ChannelPoolOptions, type ServerStreamMethod, type UnaryMethod } from '../../src/index.js';
import { startFleet, type EndpointMode, type Fleet } from './endpoint-fleet.js';
import { drive } from './load.js';
import type { EchoRequest, EchoResponse, StreamRequest, UserRequest, BasicInfo } from './protos.js';

/** The detection window: sick endpoints must be out of rotation after this long. */
export const DETECTION_WINDOW_MS = 3_000;
/** Calls measured after the window (each case must reach >= 99 % of them). */
export const MEASURED_CALLS = 200;
/** How long an endpoint that recovered may wait before it gets traffic again (an assumption: */
/** the issue says "gets traffic again"; the ejection time is the pool's default to choose). */
export const RECOVERY_LIMIT_MS = 10_000;
export const ROUND_ROBIN = JSON.stringify({ loadBalancingConfig: [{ round_robin: {} }] });

export interface Test {
  Echo: UnaryMethod<Partial<EchoRequest>, EchoResponse>;
  ServerStream: ServerStreamMethod<Partial<StreamRequest>, EchoResponse>;
}
export interface Users {
  QueryBasicInfoByID: UnaryMethod<UserRequest, BasicInfo>;
}

let pool: ChannelPool | undefined;
let fleet: Fleet | undefined;

/** Closes the pool and the fleet of the test that just ran; call once per test file. */
export function closeScenariosAfterEach(): void {
  afterEach(async () => {
    await pool?.close({ graceMs: 0 });
    await fleet?.close();
    pool = undefined;
    fleet = undefined;
  });
}

export async function setUp(modes: EndpointMode[], options: ChannelPoolOptions = {}): Promise<{ fleet: Fleet; pool: ChannelPool }> {
  fleet = await startFleet(modes);
  pool = new ChannelPool(options);
  return { fleet, pool };
}

/** `sick` at index 0 ('first') or at the end ('last') of `n` endpoints, the others healthy. */
export function modesWith(sick: EndpointMode, n: number, position: 'first' | 'last'): EndpointMode[] {
  const modes: EndpointMode[] = Array.from({ length: n }, () => 'healthy');
  modes[position === 'first' ? 0 : n - 1] = sick;
  return modes;
}

/** Calls for the detection window (outcomes ignored), then measures MEASURED_CALLS calls. */
export async function afterDetectionWindow(call: () => Promise<unknown>) {
  await drive(call, { durationMs: DETECTION_WINDOW_MS, maxCalls: 5_000, concurrency: 4 });
  return drive(call, { durationMs: 15_000, maxCalls: MEASURED_CALLS, concurrency: 4 });
}

export async function streamToEnd(stream: AsyncIterable<unknown>): Promise<{ messages: number; error: unknown }> {
  let messages = 0;
  try {
    for await (const _ of stream) messages++;
    return { messages, error: undefined };
  } catch (error) {
    return { messages, error };
  }
}
