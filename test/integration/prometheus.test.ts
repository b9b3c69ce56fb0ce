// resilient-grpc/prometheus against a real prom-client registry: scripted traffic of every call
// shape (OK, failures, a retried call, an open circuit) gives the exact exposition text
// go-grpc-middleware v2 dashboards expect, plus the resilience metrics; dispose() unregisters.
import * as grpc from '@grpc/grpc-js';
import { Registry } from 'prom-client';
import { beforeEach, describe, expect, it } from 'vitest';
import {
  type ChannelPool,
  CircuitOpenError,
  type BidiStreamMethod,
  type ClientStreamMethod,
  type ServerStreamMethod,
  type UnaryMethod,
} from '../../src/index.js';
import { goCodeName, prometheusMetrics } from '../../src/adapters/prometheus.js';
import { TestServiceClient, type EchoRequest, type EchoResponse, type StreamRequest } from '../helpers/protos.js';
import { startServerAndPools } from '../helpers/server-and-pools.js';
import type { TestServer } from '../helpers/test-server.js';

interface Echo {
  Echo: UnaryMethod<Partial<EchoRequest>, EchoResponse>;
  ServerStream: ServerStreamMethod<Partial<StreamRequest>, EchoResponse>;
  ClientStream: ClientStreamMethod<Partial<EchoRequest>, EchoResponse>;
  Bidi: BidiStreamMethod<Partial<EchoRequest>, EchoResponse>;
}

let servers: TestServer[];
let pool: ChannelPool;
let callIds = 0;

beforeEach(async () => {
  const [a, b] = [await startServerAndPools(), await startServerAndPools()];
  servers = [a.server, b.server];
  pool = a.newPool({ deadlineMs: 5_000, retry: { initialDelayMs: 1, maxDelayMs: 1 } });
});

function script(headers: Record<string, string | number>): Record<string, string> {
  const metadata: Record<string, string> = { 'x-call-id': `prom-${++callIds}` };
  for (const [key, value] of Object.entries(headers)) metadata[`x-${key}`] = String(value);
  return metadata;
}

async function drain(stream: AsyncIterable<unknown>): Promise<void> {
  for await (const _ of stream);
}

/** Every call shape, OK and failing, a retried call, and a circuit that opens and refuses. */
async function scriptedTraffic(): Promise<void> {
  const a = pool.client(TestServiceClient, servers[0]!.address, { breaker: false }) as unknown as Echo;
  await a.Echo({ message: 'one' });
  await a.Echo({ message: 'two' });
  await expect(a.Echo({ message: 'x' }, { metadata: script({ 'fail-code': grpc.status.NOT_FOUND }) })).rejects.toMatchObject({
    code: grpc.status.NOT_FOUND,
  });
  await a.Echo({ message: 'retried' }, { metadata: script({ 'fail-times': 2 }) });
  await drain(a.ServerStream({ message: 's', count: 3 }));
  await a.ClientStream([{ message: 'a' }, { message: 'b' }]);
  await drain(a.Bidi([{ message: 'a' }, { message: 'b' }, { message: 'c' }]));

  const b = pool.client(TestServiceClient, servers[1]!.address, {
    retry: false,
    // One circuit per channel, as these expectations were written (the default scope is 'method').
    breaker: { scope: 'channel', volumeThreshold: 2, errorThresholdPercentage: 50, windowMs: 10_000, resetTimeoutMs: 60_000 },
  }) as unknown as Echo;
  const failing = script({ 'fail-code': grpc.status.UNAVAILABLE });
  for (let i = 0; i < 2; i++)
    await expect(b.Echo({ message: 'x' }, { metadata: failing })).rejects.toMatchObject({ code: grpc.status.UNAVAILABLE });
  await expect(b.Echo({ message: 'x' })).rejects.toBeInstanceOf(CircuitOpenError);
}

/** The exposition with the random ports replaced, and the histogram's timing-dependent lines left out. */
async function exposition(registry: Registry): Promise<string> {
  let text = await registry.metrics();
  text = text.replaceAll(servers[0]!.address, 'TARGET_A').replaceAll(servers[1]!.address, 'TARGET_B');
  return text
    .split('\n')
    .filter((line) => !/^grpc_client_handling_seconds_(bucket|sum)/.test(line))
    .join('\n');
}

const S = 'grpc_service="resilient.test.v1.TestService"';

describe('prometheusMetrics', () => {
  it('gives the exact go-grpc-middleware names, labels and counts, and the resilience metrics', async () => {
    const registry = new Registry();
    const metrics = prometheusMetrics(pool, { registry });
    await scriptedTraffic();
    expect(await exposition(registry)).toBe(
      [
        '# HELP grpc_client_started_total Total number of RPCs started on the client.',
        '# TYPE grpc_client_started_total counter',
        `grpc_client_started_total{grpc_type="unary",${S},grpc_method="Echo"} 7`,
        `grpc_client_started_total{grpc_type="server_stream",${S},grpc_method="ServerStream"} 1`,
        `grpc_client_started_total{grpc_type="client_stream",${S},grpc_method="ClientStream"} 1`,
        `grpc_client_started_total{grpc_type="bidi_stream",${S},grpc_method="Bidi"} 1`,
        '',
        '# HELP grpc_client_handled_total Total number of RPCs completed by the client, regardless of success or failure.',
        '# TYPE grpc_client_handled_total counter',
        `grpc_client_handled_total{grpc_type="unary",${S},grpc_method="Echo",grpc_code="OK"} 3`,
        `grpc_client_handled_total{grpc_type="unary",${S},grpc_method="Echo",grpc_code="NotFound"} 1`,
        `grpc_client_handled_total{grpc_type="unary",${S},grpc_method="Echo",grpc_code="Unavailable"} 3`,
        `grpc_client_handled_total{grpc_type="server_stream",${S},grpc_method="ServerStream",grpc_code="OK"} 1`,
        `grpc_client_handled_total{grpc_type="client_stream",${S},grpc_method="ClientStream",grpc_code="OK"} 1`,
        `grpc_client_handled_total{grpc_type="bidi_stream",${S},grpc_method="Bidi",grpc_code="OK"} 1`,
        '',
        '# HELP grpc_client_msg_received_total Total number of RPC stream messages received by the client.',
        '# TYPE grpc_client_msg_received_total counter',
        `grpc_client_msg_received_total{grpc_type="unary",${S},grpc_method="Echo"} 3`,
        `grpc_client_msg_received_total{grpc_type="server_stream",${S},grpc_method="ServerStream"} 3`,
        `grpc_client_msg_received_total{grpc_type="client_stream",${S},grpc_method="ClientStream"} 1`,
        `grpc_client_msg_received_total{grpc_type="bidi_stream",${S},grpc_method="Bidi"} 3`,
        '',
        '# HELP grpc_client_msg_sent_total Total number of gRPC stream messages sent by the client.',
        '# TYPE grpc_client_msg_sent_total counter',
        `grpc_client_msg_sent_total{grpc_type="unary",${S},grpc_method="Echo"} 6`,
        `grpc_client_msg_sent_total{grpc_type="server_stream",${S},grpc_method="ServerStream"} 1`,
        `grpc_client_msg_sent_total{grpc_type="client_stream",${S},grpc_method="ClientStream"} 2`,
        `grpc_client_msg_sent_total{grpc_type="bidi_stream",${S},grpc_method="Bidi"} 3`,
        '',
        '# HELP grpc_client_handling_seconds Histogram of response latency (seconds) of the gRPC until it is finished by the application.',
        '# TYPE grpc_client_handling_seconds histogram',
        `grpc_client_handling_seconds_count{grpc_type="unary",${S},grpc_method="Echo"} 7`,
        `grpc_client_handling_seconds_count{grpc_type="server_stream",${S},grpc_method="ServerStream"} 1`,
        `grpc_client_handling_seconds_count{grpc_type="client_stream",${S},grpc_method="ClientStream"} 1`,
        `grpc_client_handling_seconds_count{grpc_type="bidi_stream",${S},grpc_method="Bidi"} 1`,
        '',
        "# HELP grpc_client_attempts_total Total number of RPC attempts (the first and every retry) completed by the client, by the attempt's status.",
        '# TYPE grpc_client_attempts_total counter',
        `grpc_client_attempts_total{grpc_type="unary",${S},grpc_method="Echo",grpc_code="OK"} 3`,
        `grpc_client_attempts_total{grpc_type="unary",${S},grpc_method="Echo",grpc_code="NotFound"} 1`,
        `grpc_client_attempts_total{grpc_type="unary",${S},grpc_method="Echo",grpc_code="Unavailable"} 4`,
        `grpc_client_attempts_total{grpc_type="server_stream",${S},grpc_method="ServerStream",grpc_code="OK"} 1`,
        `grpc_client_attempts_total{grpc_type="client_stream",${S},grpc_method="ClientStream",grpc_code="OK"} 1`,
        `grpc_client_attempts_total{grpc_type="bidi_stream",${S},grpc_method="Bidi",grpc_code="OK"} 1`,
        '',
        '# HELP grpc_client_retries_total Total number of retries started by the client, by the status of the attempt that failed.',
        '# TYPE grpc_client_retries_total counter',
        `grpc_client_retries_total{${S},grpc_method="Echo",grpc_code="Unavailable"} 2`,
        '',
        '# HELP grpc_client_hedges_total Total number of hedged attempts (adaptive hedging) completed by the client; won "true" when the hedge answered first.',
        '# TYPE grpc_client_hedges_total counter',
        '',
        '# HELP grpc_client_refused_total Total number of RPCs refused without reaching the network: reason "circuit" (circuit open), "pool" (pool closing) or "throttle" (adaptive throttling).',
        '# TYPE grpc_client_refused_total counter',
        `grpc_client_refused_total{grpc_type="unary",${S},grpc_method="Echo",reason="circuit"} 1`,
        '',
        '# HELP grpc_client_circuit_opened_total Total number of times a circuit breaker opened (grpc_service and grpc_method empty for a channel-wide breaker).',
        '# TYPE grpc_client_circuit_opened_total counter',
        'grpc_client_circuit_opened_total{grpc_target="TARGET_B",grpc_service="",grpc_method=""} 1',
        '',
        '# HELP grpc_client_channel_replacements_total Total number of channels replaced by the connect watchdog (stuck CONNECTING) or the stall detector (silent while READY).',
        '# TYPE grpc_client_channel_replacements_total counter',
        '',
        '# HELP grpc_client_retries_throttled_total Retries the policy allowed but retry throttling refused (the gRFC A6 bucket, then the retry budget), summed over the open channels of each target.',
        '# TYPE grpc_client_retries_throttled_total counter',
        'grpc_client_retries_throttled_total{grpc_target="TARGET_A"} 0',
        'grpc_client_retries_throttled_total{grpc_target="TARGET_B"} 0',
        '',
        '# HELP grpc_client_retries_budget_total Retries the retry budget paid for (the gRFC A6 bucket alone would have refused them), summed over the open channels of each target.',
        '# TYPE grpc_client_retries_budget_total counter',
        'grpc_client_retries_budget_total{grpc_target="TARGET_A"} 0',
        'grpc_client_retries_budget_total{grpc_target="TARGET_B"} 0',
        '',
        '# HELP grpc_client_circuit_state State of each circuit breaker: 1 for its current state ("closed", "open", "half-open"), 0 for the others.',
        '# TYPE grpc_client_circuit_state gauge',
        'grpc_client_circuit_state{grpc_target="TARGET_B",grpc_service="",grpc_method="",state="closed"} 0',
        'grpc_client_circuit_state{grpc_target="TARGET_B",grpc_service="",grpc_method="",state="open"} 1',
        'grpc_client_circuit_state{grpc_target="TARGET_B",grpc_service="",grpc_method="",state="half-open"} 0',
        '',
        '# HELP grpc_client_in_flight RPCs in flight (started, not yet completed), per target.',
        '# TYPE grpc_client_in_flight gauge',
        'grpc_client_in_flight{grpc_target="TARGET_A"} 0',
        'grpc_client_in_flight{grpc_target="TARGET_B"} 0',
        '',
        '# HELP grpc_client_channels Open channels owned by the pool.',
        '# TYPE grpc_client_channels gauge',
        'grpc_client_channels 2',
        '',
        '# HELP grpc_client_endpoint_ejections_total Total number of times endpoint ejection took an endpoint of a target out of rotation, by reason (consecutive-failures, failure-percentage, silent, not-serving).',
        '# TYPE grpc_client_endpoint_ejections_total counter',
        '',
        '# HELP grpc_client_endpoints_ejected Endpoints out of rotation now, per target (targets with several endpoints only).',
        '# TYPE grpc_client_endpoints_ejected gauge',
        '',
        '# HELP grpc_client_adaptive_throttling_rejected_total Calls rejected locally by adaptive throttling, summed over the open channels of each target (targets with adaptiveThrottling only).',
        '# TYPE grpc_client_adaptive_throttling_rejected_total counter',
        '',
        '# HELP grpc_client_adaptive_throttling_reject_probability Probability (0 to 1) that adaptive throttling rejects a new call now, the highest over the open channels of each target (targets with adaptiveThrottling only).',
        '# TYPE grpc_client_adaptive_throttling_reject_probability gauge',
        '',
      ].join('\n'),
    );
    metrics.dispose();
  });

  it('uses the DefBuckets of go-grpc-middleware for the handling histogram', async () => {
    const registry = new Registry();
    using _ = prometheusMetrics(pool, { registry });
    await (pool.client(TestServiceClient, servers[0]!.address) as unknown as Echo).Echo({ message: 'x' });
    const text = await registry.metrics();
    const les = [...text.matchAll(/grpc_client_handling_seconds_bucket\{le="([^"]+)"/g)].map((m) => m[1]);
    expect(les).toEqual(['0.005', '0.01', '0.025', '0.05', '0.1', '0.25', '0.5', '1', '2.5', '5', '10', '+Inf']);
    expect(text).toMatch(
      /grpc_client_handling_seconds_bucket\{le="\+Inf",grpc_type="unary",grpc_service="resilient.test.v1.TestService",grpc_method="Echo"\} 1/,
    );
  });

  it('dispose() unregisters every metric and stops counting; a second adapter on the same registry is refused', async () => {
    const registry = new Registry();
    const metrics = prometheusMetrics(pool, { registry });
    expect(() => prometheusMetrics(pool, { registry })).toThrow(/already been registered/);
    // The refused second adapter left the first one's metrics in place.
    expect(registry.getMetricsAsArray().length).toBe(20);
    metrics.dispose();
    metrics.dispose();
    expect(registry.getMetricsAsArray()).toEqual([]);
    await (pool.client(TestServiceClient, servers[0]!.address) as unknown as Echo).Echo({ message: 'x' });
    expect(await registry.metrics()).toBe('\n');
    // Registering again after dispose() works.
    prometheusMetrics(pool, { registry }).dispose();
  });

  it('names codes as Go does', () => {
    expect([0, 1, 4, 14, 16, 17].map(goCodeName)).toEqual([
      'OK',
      'Canceled',
      'DeadlineExceeded',
      'Unavailable',
      'Unauthenticated',
      'Code(17)',
    ]);
  });
});

describe('prometheusMetrics between scrapes', () => {
  it('counts what happened since the last scrape on top of what it had (counters never go back)', async () => {
    const registry = new Registry();
    using _ = prometheusMetrics(pool, { registry });
    const echo = pool.client(TestServiceClient, servers[0]!.address) as unknown as Echo;
    const handled = async (): Promise<string | undefined> =>
      (await registry.metrics()).split('\n').find((l) => l.startsWith('grpc_client_handled_total{'));
    await echo.Echo({ message: 'a' });
    expect(await handled()).toMatch(/grpc_code="OK"\} 1$/);
    expect(await handled()).toMatch(/grpc_code="OK"\} 1$/);
    await echo.Echo({ message: 'b' });
    await echo.Echo({ message: 'c' });
    expect(await handled()).toMatch(/grpc_code="OK"\} 3$/);
  });
});
