// Partial outage: 1 of 3 endpoints sick. What share of calls succeeds, how fast, at what cost?
//
// Every contender gets its own three test servers behind one `ipv4:a,b,c` target
// (test/helpers/endpoint-fleet.ts), the first of them sick: for the first half of the run it
// answers every call UNAVAILABLE, for the second half it hangs (never answers). The phase switch
// happens at the same moment for every contender. The contenders run side by side in this one
// process, each offered the same open-loop load (RATE calls/s, started on a timer whatever the
// answers, at most MAX_IN_FLIGHT in flight), every call with a 1 s deadline:
//
//   raw grpc-js pick_first     the generated callback client, default LB, no retries
//   raw grpc-js round_robin    the same with {"loadBalancingConfig":[{"round_robin":{}}]}
//   grpc-js outlier_detection  outlier_detection over round_robin (interval 1 s, failure_percentage
//     + retryPolicy            50 % over >= 5 calls, minimum_hosts 2, max_ejection_percent 50) and a
//                              retryPolicy (3 attempts, UNAVAILABLE) in the service config
//   nice-grpc + retry          nice-grpc with its deadline and retry middlewares (3 attempts,
//                              retry: true, its default retryable codes), default LB
//   resilient-grpc             a pool on defaults, with deadlineMs 1000 as every other contender
//   resilient-grpc idempotent  the same with idempotent: true and perAttemptTimeoutMs 250
//
// Reported per contender: success %, goodput (ok calls/s), p50 / p99 latency of every call (from
// the call to its settlement), attempts per call counted at the servers, and success % per phase.
// Servers share this process's event loop with the clients (the endpoint scripts are server
// interceptors): figures are comparable between contenders, not absolute.
//
// Run alone: node --expose-gc --import tsx bench/partial-outage.ts
//   PARTIAL_OUTAGE_SECONDS=6 (default 20), PARTIAL_OUTAGE_RATE=100 (calls/s per contender)
import * as grpc from '@grpc/grpc-js';
import { createChannel, createClientFactory } from 'nice-grpc';
import { deadlineMiddleware } from 'nice-grpc-client-middleware-deadline';
import { retryMiddleware } from 'nice-grpc-client-middleware-retry';
import { startFleet, type Fleet } from '../test/helpers/endpoint-fleet.js';
import { TestServiceClient, testServiceDefinition } from '../test/helpers/protos.js';
import type { EchoRequest, EchoResponse } from '../test/helpers/protos.js';
import { fmt, loadPackage, median, percentile, progress, report, type Target } from './lib.js';

const { ChannelPool } = await loadPackage();

const SECONDS = positiveEnv('PARTIAL_OUTAGE_SECONDS', 20);
const RATE = positiveEnv('PARTIAL_OUTAGE_RATE', 100);
const DEADLINE_MS = 1_000;
const MAX_IN_FLIGHT = 500;
const TICK_MS = 10;
const REQUEST: EchoRequest = { message: 'hello', delayMs: 0, payload: Buffer.alloc(0) };

function positiveEnv(name: string, fallback: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!(value > 0 && Number.isFinite(value))) throw new RangeError(`${name} must be a positive number, got ${raw}`);
  return value;
}

const OUTLIER_DETECTION = {
  outlier_detection: {
    interval: { seconds: 1, nanos: 0 },
    base_ejection_time: { seconds: 5, nanos: 0 },
    max_ejection_time: { seconds: 30, nanos: 0 },
    max_ejection_percent: 50,
    failure_percentage_ejection: { threshold: 50, enforcement_percentage: 100, minimum_hosts: 2, request_volume: 5 },
    child_policy: [{ round_robin: {} }],
  },
};
const OD_RETRY_SERVICE_CONFIG = {
  loadBalancingConfig: [OUTLIER_DETECTION],
  methodConfig: [
    {
      name: [{ service: 'resilient.test.v1.TestService' }],
      retryPolicy: { maxAttempts: 3, initialBackoff: '0.01s', maxBackoff: '0.1s', backoffMultiplier: 2, retryableStatusCodes: ['UNAVAILABLE'] },
    },
  ],
};
grpc.experimental.parseLoadBalancingConfig(OUTLIER_DETECTION); // throws if grpc-js would not accept it

interface RawTestClient extends grpc.Client {
  Echo(request: EchoRequest, options: grpc.CallOptions, callback: (error: grpc.ServiceError | null, response?: EchoResponse) => void): grpc.ClientUnaryCall;
}
const echoDefinition = testServiceDefinition as unknown as {
  Echo: grpc.MethodDefinition<EchoRequest, EchoResponse> & { requestStream: false; responseStream: false };
};

type Call = () => Promise<unknown>;

interface Contender {
  name: string;
  fleet: Fleet;
  call: Call;
  close(): Promise<unknown> | unknown;
  // Figures
  latenciesMs: number[];
  ok: number;
  failed: number;
  codes: Record<string, number>;
  phaseOk: [number, number];
  phaseCalls: [number, number];
  inFlight: number;
  skipped: number;
}

function rawCall(client: RawTestClient): Call {
  return () =>
    new Promise((resolve, reject) => {
      client.Echo(REQUEST, { deadline: Date.now() + DEADLINE_MS }, (error, response) => (error ? reject(error) : resolve(response)));
    });
}

async function contender(name: string, make: (target: string) => { call: Call; close(): unknown }): Promise<Contender> {
  const fleet = await startFleet([grpc.status.UNAVAILABLE, 'healthy', 'healthy']);
  const { call, close } = make(fleet.target);
  return { name, fleet, call, close, latenciesMs: [], ok: 0, failed: 0, codes: {}, phaseOk: [0, 0], phaseCalls: [0, 0], inFlight: 0, skipped: 0 };
}

const startedAt = performance.now();
const contenders: Contender[] = [
  await contender('raw grpc-js pick_first', (target) => {
    const client = new TestServiceClient(target, grpc.credentials.createInsecure()) as unknown as RawTestClient;
    return { call: rawCall(client), close: () => client.close() };
  }),
  await contender('raw grpc-js round_robin', (target) => {
    const client = new TestServiceClient(target, grpc.credentials.createInsecure(), {
      'grpc.service_config': JSON.stringify({ loadBalancingConfig: [{ round_robin: {} }] }),
    }) as unknown as RawTestClient;
    return { call: rawCall(client), close: () => client.close() };
  }),
  await contender('grpc-js outlier_detection + retryPolicy', (target) => {
    const client = new TestServiceClient(target, grpc.credentials.createInsecure(), {
      'grpc.service_config': JSON.stringify(OD_RETRY_SERVICE_CONFIG),
    }) as unknown as RawTestClient;
    return { call: rawCall(client), close: () => client.close() };
  }),
  await contender('nice-grpc + retry middleware', (target) => {
    const channel = createChannel(target);
    const client = createClientFactory().use(retryMiddleware).use(deadlineMiddleware).create(echoDefinition, channel);
    const options = { deadline: DEADLINE_MS, retry: true, retryMaxAttempts: 2 };
    return { call: () => client.Echo(REQUEST, options), close: () => channel.close() };
  }),
  await contender('resilient-grpc (defaults, deadlineMs 1000)', (target) => {
    const pool = new ChannelPool({ deadlineMs: DEADLINE_MS });
    const client = pool.client(TestServiceClient, target);
    return { call: () => client.Echo(REQUEST) as Promise<unknown>, close: () => pool.close({ graceMs: 0 }) };
  }),
  // What a method that may run twice gets: a hung endpoint's attempts end at 250 ms and are
  // retried elsewhere (a non-idempotent call sent to a hung endpoint can only wait).
  await contender('resilient-grpc (idempotent, perAttemptTimeoutMs 250)', (target) => {
    const pool = new ChannelPool({ deadlineMs: DEADLINE_MS, idempotent: true, retry: { perAttemptTimeoutMs: 250 } });
    const client = pool.client(TestServiceClient, target);
    return { call: () => client.Echo(REQUEST) as Promise<unknown>, close: () => pool.close({ graceMs: 0 }) };
  }),
];

function start(c: Contender, phase: 0 | 1): void {
  if (c.inFlight >= MAX_IN_FLIGHT) {
    c.skipped++;
    return;
  }
  c.inFlight++;
  c.phaseCalls[phase]++;
  const t0 = performance.now();
  c.call().then(
    () => {
      c.inFlight--;
      c.latenciesMs.push(performance.now() - t0);
      c.ok++;
      c.phaseOk[phase]++;
    },
    (error: unknown) => {
      c.inFlight--;
      c.latenciesMs.push(performance.now() - t0);
      c.failed++;
      const { name, code } = error as { name?: unknown; code?: unknown };
      const key = `${typeof name === 'string' ? name : 'Error'} ${typeof code === 'number' ? (grpc.status[code] ?? code) : '?'}`;
      c.codes[key] = (c.codes[key] ?? 0) + 1;
    },
  );
}

progress(`${contenders.length} contenders, ${RATE} calls/s each, ${SECONDS} s (UNAVAILABLE for ${SECONDS / 2} s, then hanging)`);
const runMs = SECONDS * 1000;
const t0 = performance.now();
let issued = 0;
let phase: 0 | 1 = 0;
await new Promise<void>((resolve) => {
  const timer = setInterval(() => {
    const elapsed = performance.now() - t0;
    if (phase === 0 && elapsed >= runMs / 2) {
      phase = 1;
      for (const c of contenders) c.fleet.endpoints[0]!.setMode('hang');
      progress(`t=${fmt.fixed(elapsed / 1000, 1)} s: the sick endpoint now hangs`);
    }
    if (elapsed >= runMs) {
      clearInterval(timer);
      resolve();
      return;
    }
    const due = Math.floor((elapsed * RATE) / 1000) - issued;
    for (let i = 0; i < due; i++) for (const c of contenders) start(c, phase);
    issued += Math.max(0, due);
  }, TICK_MS);
});
// Let the last calls settle (each has a 1 s deadline; retries may add their backoff).
const settleBy = performance.now() + DEADLINE_MS * 3;
while (contenders.some((c) => c.inFlight > 0) && performance.now() < settleBy) await new Promise((r) => setTimeout(r, 20));

const rows: string[][] = [];
const data: Record<string, unknown> = {};
for (const c of contenders) {
  const calls = c.ok + c.failed;
  const attempts = c.fleet.arrived();
  const success = (c.ok * 100) / calls;
  rows.push([
    c.name,
    fmt.int(calls),
    `${fmt.fixed(success, 2)} %`,
    `${fmt.fixed((c.phaseOk[0] * 100) / c.phaseCalls[0], 1)} %`,
    `${fmt.fixed((c.phaseOk[1] * 100) / c.phaseCalls[1], 1)} %`,
    fmt.fixed(c.ok / SECONDS, 1),
    `${fmt.fixed(median(c.latenciesMs), 2)} ms`,
    `${fmt.fixed(percentile(c.latenciesMs, 99), 1)} ms`,
    fmt.fixed(attempts / calls, 3),
    Object.entries(c.codes).map(([k, v]) => `${k}: ${v}`).join(', ') || '-',
  ]);
  data[c.name] = { calls, ok: c.ok, failed: c.failed, codes: c.codes, attempts, perEndpoint: c.fleet.endpoints.map((e) => e.arrived), phaseOk: c.phaseOk, phaseCalls: c.phaseCalls, skipped: c.skipped, unsettled: c.inFlight };
}

for (const c of contenders) await c.close();
for (const c of contenders) await c.fleet.close();

// The issue's targets are for resilient-grpc on defaults, against the other libraries.
const ours = contenders.find((c) => c.name.startsWith('resilient-grpc (defaults'))!;
const others = contenders.filter((c) => !c.name.startsWith('resilient-grpc'));
const oursCalls = ours.ok + ours.failed;
const oursSuccess = (ours.ok * 100) / oursCalls;
const oursP99 = percentile(ours.latenciesMs, 99);
const othersBestSuccess = Math.max(...others.map((c) => (c.ok * 100) / (c.ok + c.failed)));
const othersBestP99 = Math.min(...others.map((c) => percentile(c.latenciesMs, 99)));
const oursAttempts = ours.fleet.arrived() / oursCalls;
const targets: Target[] = [
  { what: 'resilient-grpc success', figure: `${fmt.fixed(oursSuccess, 2)} %`, target: '≥ 99.5 % and the highest', met: oursSuccess >= 99.5 && oursSuccess >= othersBestSuccess },
  { what: 'resilient-grpc p99 latency', figure: `${fmt.fixed(oursP99, 1)} ms`, target: `the lowest (others' best ${fmt.fixed(othersBestP99, 1)} ms)`, met: oursP99 <= othersBestP99 },
  { what: 'resilient-grpc attempts per call', figure: fmt.fixed(oursAttempts, 3), target: '≤ 1.1', met: oursAttempts <= 1.1 },
];

report({
  name: 'partial-outage',
  title: `Partial outage: 1 of 3 endpoints sick for ${SECONDS} s (UNAVAILABLE, then hanging), ${RATE} calls/s per contender, 1 s deadline`,
  durationSec: (performance.now() - startedAt) / 1000,
  tables: [
    {
      title: `partial-outage (open-loop ${RATE} calls/s each, side by side; latency of every call, ok or not; attempts counted at the servers)`,
      header: ['contender', 'calls', 'success', 'UNAVAILABLE phase', 'hang phase', 'goodput/s', 'p50', 'p99', 'attempts/call', 'failures'],
      rows,
    },
  ],
  targets,
  notes: [
    `each contender has its own 3 servers, the first one sick; at t = ${SECONDS / 2} s every sick endpoint switches from answering UNAVAILABLE to hanging.`,
    `grpc-js outlier_detection config: ${JSON.stringify(OUTLIER_DETECTION)}; retryPolicy: ${JSON.stringify(OD_RETRY_SERVICE_CONFIG.methodConfig[0]!.retryPolicy)}.`,
    'nice-grpc: createChannel(target) (grpc-js default LB, pick_first), retry middleware with retry: true, retryMaxAttempts: 2 (3 attempts), its default retryable codes (UNKNOWN, INTERNAL, UNAVAILABLE, CANCELLED), deadline middleware 1 s.',
    `calls that could not start because ${MAX_IN_FLIGHT} were in flight: ${contenders.map((c) => `${c.name} ${c.skipped}`).join(', ')}.`,
    'servers and clients share one event loop (the endpoint scripts are grpc-js server interceptors in this process).',
  ],
  data,
});
