// Partial outage: 1 of 3 endpoints goes wrong. What share of calls succeeds, how fast, at what
// cost, for each contender side by side in one run?
//
// Four scenarios (issue 19's table), one after another. In each, every contender gets its own
// three endpoints behind one `ipv4:a,b,c` target, the first of them the one that goes wrong:
// healthy for a warm-up, then at the onset, at the same moment for every contender:
//
//   error    it answers every call UNAVAILABLE (a test server's interceptor, endpoint-fleet.ts)
//   hang     it hangs: a test server in a child process, stopped with SIGSTOP (the connection
//            stays open, nothing answers: no status, no PING ack, no FIN, no RST)
//   freeze   its established connection freezes: a fault proxy in front of it stops forwarding
//            both ways, without FIN or RST; new connections pass (a dropped NAT/conntrack entry)
//   flap     it flips UNAVAILABLE / healthy every 700 ms, starting sick
//
// In hang and freeze the sick endpoint sits behind a fault proxy that counts the HTTP/2 streams
// (attempts) clients open through it, so attempts sent into a stopped server or a frozen
// connection are counted too; everywhere else attempts are counted at the servers.
//
// Each contender gets CALLERS concurrent callers (8), each making one call after another, paced
// so that the contender is offered at most RATE calls/s (1,000) in all: a caller starts its next
// call at its next slot (every CALLERS / RATE s) or when its previous call settles, whichever is
// later, and does not catch up on slots it missed. So a fast failure cannot spin a caller, and on
// a machine that cannot serve RATE the contenders share it instead of queueing without end (the
// calls/s column says what each one got). Every call has a 1 s deadline. The contenders:
//
//   raw grpc-js round_robin    the generated callback client, {"loadBalancingConfig":[{"round_robin":{}}]}
//   grpc-js outlier_detection  outlier_detection over round_robin (interval 1 s, failure_percentage
//     + retryPolicy            50 % over >= 5 calls, minimum_hosts 2, max_ejection_percent 50) and a
//                              retryPolicy (3 attempts, UNAVAILABLE) in the service config
//   resilient-grpc             a pool on defaults, with deadlineMs 1000 as every other contender
//   resilient-grpc idempotent  the same with idempotent: true and perAttemptTimeoutMs 250
// and with PARTIAL_OUTAGE_CONTENDERS=all also
//   raw grpc-js pick_first     the same client, default LB, no retries
//   nice-grpc + retry          nice-grpc with its deadline and retry middlewares (3 attempts)
//
// Reported per scenario and contender, over the calls started from 1 s after the onset to the
// end of the scenario (the issue's goals count from there): success %, p50 / p99 latency of
// every call (from the call to its settlement, ok or not), attempts per call; beside it the
// success counted from the onset itself. The goal, per scenario: resilient-grpc on defaults has
// the highest success and the lowest p99 of all contenders that are not resilient-grpc.
// Servers (but the stopped one) share this process's event loop with the clients: figures are
// comparable between contenders, not absolute.
//
// Run alone: node --expose-gc --import tsx bench/partial-outage.ts   (after npm run build)
//   PARTIAL_OUTAGE_SECONDS=10     each scenario's length from its onset
//   PARTIAL_OUTAGE_WARMUP_SECONDS=2  healthy calls before the onset
//   PARTIAL_OUTAGE_RATE=1000      calls/s offered per contender at most, in every scenario
//   PARTIAL_OUTAGE_CALLERS=8      concurrent callers per contender
//   PARTIAL_OUTAGE_SCENARIOS=error,hang,freeze,flap   (a subset, in that order)
//   PARTIAL_OUTAGE_CONTENDERS=all (adds pick_first and nice-grpc)
import { cpus, loadavg } from 'node:os';
import * as grpc from '@grpc/grpc-js';
import { createChannel, createClientFactory } from 'nice-grpc';
import { deadlineMiddleware } from 'nice-grpc-client-middleware-deadline';
import { retryMiddleware } from 'nice-grpc-client-middleware-retry';
import { startFleet, type Fleet } from '../test/helpers/endpoint-fleet.js';
import { OD_RETRY_SERVICE_CONFIG, OUTLIER_DETECTION } from '../test/helpers/grpc-js-rival.js';
import { startFaultProxy, type FaultProxy } from '../test/helpers/fault-proxy.js';
import { TestServiceClient, testServiceDefinition } from '../test/helpers/protos.js';
import type { EchoRequest, EchoResponse } from '../test/helpers/protos.js';
import { startTestServerProcess, type TestServerProcess } from '../test/helpers/test-server-process.js';
import { fmt, loadPackage, positiveEnv, median, percentile, progress, report, type Table, type Target } from './lib.js';

const { ChannelPool } = await loadPackage();

const FAULT_SECONDS = positiveEnv('PARTIAL_OUTAGE_SECONDS', 10);
const WARMUP_SECONDS = positiveEnv('PARTIAL_OUTAGE_WARMUP_SECONDS', 2);
const RATE = positiveEnv('PARTIAL_OUTAGE_RATE', 1000);
const CALLERS = Math.round(positiveEnv('PARTIAL_OUTAGE_CALLERS', 8));
/** The issue's goals count from this long after the onset. */
const COUNT_FROM_MS = 1_000;
const DEADLINE_MS = 1_000;
const FLAP_MS = 700;
/** The scenario clock's tick: the onset and each flap happen within this of their time. */
const CLOCK_MS = 10;
const REQUEST: EchoRequest = { message: 'hello', delayMs: 0, payload: Buffer.alloc(0) };

const SCENARIO_NAMES = ['error', 'hang', 'freeze', 'flap'] as const;
type ScenarioName = (typeof SCENARIO_NAMES)[number];
const SCENARIO_TEXT: Record<ScenarioName, string> = {
  error: '1 of 3 endpoints answers UNAVAILABLE',
  hang: '1 of 3 endpoints hangs (server process SIGSTOPped, connection open)',
  freeze: "1 of 3 endpoints' established connection freezes (no FIN, no RST; new connections pass)",
  flap: `1 of 3 endpoints flips UNAVAILABLE / healthy every ${FLAP_MS} ms`,
};
/** The issue's bar for resilient-grpc on defaults, beside "the highest"; none for freeze (its bar counts after stallTimeoutMs). */
const SUCCESS_BAR: Record<ScenarioName, number | undefined> = { error: 99.5, hang: 99, freeze: undefined, flap: 99.5 };


function scenariosFromEnv(): ScenarioName[] {
  const raw = process.env.PARTIAL_OUTAGE_SCENARIOS;
  if (raw === undefined || raw.trim() === '') return [...SCENARIO_NAMES];
  const wanted = raw.split(',').map((s) => s.trim());
  const unknown = wanted.filter((s) => !(SCENARIO_NAMES as readonly string[]).includes(s));
  if (unknown.length > 0) throw new RangeError(`PARTIAL_OUTAGE_SCENARIOS: unknown scenario(s) ${unknown.join(', ')} (known: ${SCENARIO_NAMES.join(', ')})`);
  return SCENARIO_NAMES.filter((s) => wanted.includes(s));
}

function contenderSetFromEnv(): 'core' | 'all' {
  const raw = process.env.PARTIAL_OUTAGE_CONTENDERS;
  if (raw === undefined || raw === '' || raw === 'core') return 'core';
  if (raw === 'all') return 'all';
  throw new RangeError(`PARTIAL_OUTAGE_CONTENDERS must be core or all, got ${raw}`);
}


interface RawTestClient extends grpc.Client {
  Echo(request: EchoRequest, options: grpc.CallOptions, callback: (error: grpc.ServiceError | null, response?: EchoResponse) => void): grpc.ClientUnaryCall;
}
const echoDefinition = testServiceDefinition as unknown as {
  Echo: grpc.MethodDefinition<EchoRequest, EchoResponse> & { requestStream: false; responseStream: false };
};

type Call = () => Promise<unknown>;
interface Built {
  call: Call;
  close(): unknown;
}
interface ContenderSpec {
  name: string;
  /** resilient-grpc on defaults: the one the goals are about. */
  ours?: true;
  /** Another resilient-grpc configuration: shown, not a rival for the goals. */
  family?: 'resilient';
  make(target: string): Built;
}

function rawCall(client: RawTestClient): Call {
  return () =>
    new Promise((resolve, reject) => {
      client.Echo(REQUEST, { deadline: Date.now() + DEADLINE_MS }, (error, response) => (error ? reject(error) : resolve(response)));
    });
}

function rawContender(name: string, options: grpc.ChannelOptions): ContenderSpec {
  return {
    name,
    make(target) {
      const client = new TestServiceClient(target, grpc.credentials.createInsecure(), options) as unknown as RawTestClient;
      return { call: rawCall(client), close: () => client.close() };
    },
  };
}

const OURS = 'resilient-grpc (defaults, deadlineMs 1000)';
const CORE: ContenderSpec[] = [
  rawContender('raw grpc-js round_robin', { 'grpc.service_config': JSON.stringify({ loadBalancingConfig: [{ round_robin: {} }] }) }),
  rawContender('grpc-js outlier_detection + retryPolicy', { 'grpc.service_config': JSON.stringify(OD_RETRY_SERVICE_CONFIG) }),
  {
    name: OURS,
    ours: true,
    make(target) {
      const pool = new ChannelPool({ deadlineMs: DEADLINE_MS });
      const client = pool.client(TestServiceClient, target);
      return { call: () => client.Echo(REQUEST) as Promise<unknown>, close: () => pool.close({ graceMs: 0 }) };
    },
  },
  // What a method that may run twice gets: a hung endpoint's attempts end at 250 ms and are
  // retried elsewhere (a non-idempotent call sent to a hung endpoint can only wait).
  {
    name: 'resilient-grpc (idempotent, perAttemptTimeoutMs 250)',
    family: 'resilient',
    make(target) {
      const pool = new ChannelPool({ deadlineMs: DEADLINE_MS, idempotent: true, retry: { perAttemptTimeoutMs: 250 } });
      const client = pool.client(TestServiceClient, target);
      return { call: () => client.Echo(REQUEST) as Promise<unknown>, close: () => pool.close({ graceMs: 0 }) };
    },
  },
];
const EXTRA: ContenderSpec[] = [
  rawContender('raw grpc-js pick_first', {}),
  {
    name: 'nice-grpc + retry middleware',
    make(target) {
      const channel = createChannel(target);
      const client = createClientFactory().use(retryMiddleware).use(deadlineMiddleware).create(echoDefinition, channel);
      const options = { deadline: DEADLINE_MS, retry: true, retryMaxAttempts: 2 };
      return { call: () => client.Echo(REQUEST, options), close: () => channel.close() };
    },
  },
];

// ---------------------------------------------------------------------------------------------
// A contender's endpoints in one scenario

interface Endpoints {
  /** `ipv4:` target, the sick endpoint first. */
  target: string;
  /** Attempts that reached (or, behind the proxy, were sent to) the three endpoints so far. */
  attempts(): number;
  /** Attempts per endpoint, in target order. */
  perEndpoint(): number[];
  /** Applies the fault for this moment; called on every tick from the onset on (idempotent). */
  fault(sinceOnsetMs: number): void;
  /** Drops the call records the in-process servers keep (a heap that grows with every call would slow the run). */
  dropRecords(): void;
  close(): Promise<void>;
}

/** Three in-process endpoints; the first one behind a stream-counting fault proxy to `proxied` (its own by default). */
async function proxiedEndpoints(proxied: { port: number } | undefined, onFault: (proxy: FaultProxy) => void): Promise<Endpoints> {
  const fleet = await startFleet(proxied === undefined ? ['healthy', 'healthy', 'healthy'] : ['healthy', 'healthy']);
  const sick = proxied ?? { port: fleet.endpoints[0]!.server.port };
  const proxy = await startFaultProxy({ port: sick.port }, { countStreams: true });
  const healthy = proxied === undefined ? fleet.endpoints.slice(1) : fleet.endpoints;
  let applied = false;
  return {
    target: `ipv4:${[proxy.address, ...healthy.map((e) => e.address)].join(',')}`,
    // Behind the proxy, the proxy counts (the server behind it would count the same calls again).
    attempts: () => proxy.streams + healthy.reduce((sum, e) => sum + e.arrived, 0),
    perEndpoint: () => [proxy.streams, ...healthy.map((e) => e.arrived)],
    dropRecords: () => dropRecords(fleet),
    fault() {
      if (applied) return;
      applied = true;
      onFault(proxy);
    },
    async close() {
      await proxy.close();
      await fleet.close();
    },
  };
}

function dropRecords(fleet: Fleet): void {
  for (const e of fleet.endpoints) {
    e.server.calls.length = 0;
    (e.callIds as unknown[]).length = 0;
  }
}

async function fleetEndpoints(fault: (fleet: Fleet, sinceOnsetMs: number) => void): Promise<Endpoints> {
  const fleet = await startFleet(['healthy', 'healthy', 'healthy']);
  return {
    target: fleet.target,
    attempts: () => fleet.arrived(),
    perEndpoint: () => fleet.endpoints.map((e) => e.arrived),
    dropRecords: () => dropRecords(fleet),
    fault: (sinceOnsetMs) => fault(fleet, sinceOnsetMs),
    close: () => fleet.close(),
  };
}

interface ScenarioSetup {
  /** Builds one contender's endpoints. */
  endpoints(): Promise<Endpoints>;
  /** Once, at the onset, for the whole scenario (after every contender's fault). */
  onset?(): void;
  /** Once the calls have settled, before the endpoints close. */
  close?(): Promise<void>;
}

async function setUpScenario(name: ScenarioName): Promise<ScenarioSetup> {
  switch (name) {
    case 'error':
      return { endpoints: () => fleetEndpoints((fleet) => fleet.endpoints[0]!.setMode(grpc.status.UNAVAILABLE)) };
    case 'flap':
      return {
        endpoints: () =>
          fleetEndpoints((fleet, since) => {
            const sick = Math.floor(since / FLAP_MS) % 2 === 0;
            const mode = sick ? grpc.status.UNAVAILABLE : 'healthy';
            if (fleet.endpoints[0]!.mode !== mode) fleet.endpoints[0]!.setMode(mode);
          }),
      };
    case 'freeze':
      return { endpoints: () => proxiedEndpoints(undefined, (proxy) => proxy.freezeEstablished()) };
    case 'hang': {
      // One server process for every contender (each reaches it through its own counting proxy).
      const server: TestServerProcess = await startTestServerProcess();
      return {
        endpoints: () => proxiedEndpoints({ port: server.port }, () => {}),
        onset: () => server.pause(),
        close: () => server.kill(),
      };
    }
  }
}

// ---------------------------------------------------------------------------------------------
// One scenario, every contender side by side

interface Sample {
  startMs: number;
  latencyMs: number;
  /** undefined: ok; else the error's name and gRPC code. */
  failure: string | undefined;
}

interface Running {
  spec: ContenderSpec;
  built: Built;
  endpoints: Endpoints;
  samples: Sample[];
}

interface ContenderFigures {
  name: string;
  ours: boolean;
  rival: boolean;
  calls: number;
  callsPerSec: number;
  ok: number;
  success: number;
  successFromOnset: number;
  p50: number;
  p99: number;
  attemptsPerCall: number;
  /** Failures in the counted time, by error name and code. */
  codes: Record<string, number>;
  perEndpoint: number[];
}

interface ScenarioResult {
  name: ScenarioName;
  /** How late the scenario's clock ticks ran, p99 (a busy event loop). */
  tickLagP99Ms: number;
  contenders: ContenderFigures[];
}

function errorKey(error: unknown): string {
  const { name, code } = error as { name?: unknown; code?: unknown };
  return `${typeof name === 'string' ? name : 'Error'} ${typeof code === 'number' ? (grpc.status[code] ?? code) : '?'}`;
}

/** One caller: a call after another until `endMs`, paced to one per `intervalMs` at most. */
async function caller(c: Running, t0: number, endMs: number, intervalMs: number, firstSlotMs: number): Promise<void> {
  let slot = firstSlotMs;
  for (;;) {
    let now = performance.now() - t0;
    if (slot > now) {
      await sleep(slot - now);
      now = performance.now() - t0;
    }
    if (now >= endMs) return;
    // The next slot; one missed while this call ran is not made up.
    slot = Math.max(slot + intervalMs, now);
    const started = performance.now();
    let failure: string | undefined;
    try {
      await c.built.call();
    } catch (error) {
      failure = errorKey(error);
    }
    c.samples.push({ startMs: now, latencyMs: performance.now() - started, failure });
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

async function runScenario(name: ScenarioName, specs: readonly ContenderSpec[]): Promise<ScenarioResult> {
  progress(`[${name}] ${SCENARIO_TEXT[name]}: setting up ${specs.length} contenders`);
  const setup = await setUpScenario(name);
  const running: Running[] = [];
  try {
    for (const spec of specs) {
      const endpoints = await setup.endpoints();
      running.push({ spec, built: spec.make(endpoints.target), endpoints, samples: [] });
    }
    const warmupMs = WARMUP_SECONDS * 1000;
    const endMs = warmupMs + FAULT_SECONDS * 1000;
    const intervalMs = (CALLERS * 1000) / RATE;
    progress(`[${name}] ${CALLERS} callers per contender, ${RATE} calls/s at most; onset at ${WARMUP_SECONDS} s, end at ${endMs / 1000} s`);
    const t0 = performance.now();
    // The scenario's clock: the onset, the flaps, the attempt counts from COUNT_FROM_MS on.
    let onset = false;
    let attemptsAtCount: number[] = [];
    const tickLags: number[] = [];
    let nextTick = 0;
    const clock = setInterval(() => {
      const elapsed = performance.now() - t0;
      tickLags.push(Math.max(0, elapsed - nextTick));
      nextTick = elapsed + CLOCK_MS;
      for (const c of running) c.endpoints.dropRecords();
      if (elapsed < warmupMs) return;
      for (const c of running) c.endpoints.fault(elapsed - warmupMs);
      if (!onset) {
        onset = true;
        setup.onset?.();
        progress(`[${name}] t=${fmt.fixed(elapsed / 1000, 2)} s: onset`);
      }
      if (attemptsAtCount.length === 0 && elapsed >= warmupMs + COUNT_FROM_MS) attemptsAtCount = running.map((c) => c.endpoints.attempts());
    }, CLOCK_MS);
    // The callers of every contender, their first slots spread over one interval.
    try {
      await Promise.all(running.flatMap((c) => Array.from({ length: CALLERS }, (_, i) => caller(c, t0, endMs, intervalMs, (i * intervalMs) / CALLERS))));
    } finally {
      clearInterval(clock);
    }

    const countFrom = warmupMs + COUNT_FROM_MS;
    const countedSec = (endMs - countFrom) / 1000;
    const contenders = running.map((c, i): ContenderFigures => {
      const counted = c.samples.filter((s) => s.startMs >= countFrom);
      const fromOnset = c.samples.filter((s) => s.startMs >= warmupMs);
      const ok = counted.filter((s) => s.failure === undefined).length;
      const latencies = counted.map((s) => s.latencyMs);
      const codes: Record<string, number> = {};
      for (const s of counted) if (s.failure !== undefined) codes[s.failure] = (codes[s.failure] ?? 0) + 1;
      return {
        name: c.spec.name,
        ours: c.spec.ours === true,
        rival: c.spec.ours !== true && c.spec.family !== 'resilient',
        calls: counted.length,
        callsPerSec: counted.length / countedSec,
        ok,
        success: (ok * 100) / counted.length,
        successFromOnset: (fromOnset.filter((s) => s.failure === undefined).length * 100) / fromOnset.length,
        p50: median(latencies),
        p99: percentile(latencies, 99),
        attemptsPerCall: (c.endpoints.attempts() - (attemptsAtCount[i] ?? 0)) / counted.length,
        codes,
        perEndpoint: c.endpoints.perEndpoint(),
      };
    });
    return { name, tickLagP99Ms: percentile(tickLags, 99), contenders };
  } finally {
    for (const c of running) await c.built.close();
    await setup.close?.();
    for (const c of running) await c.endpoints.close();
  }
}

// ---------------------------------------------------------------------------------------------
// Run and report

const startedAt = performance.now();
const loadAtStart = loadavg();
const scenarios = scenariosFromEnv();
const contenderSet = contenderSetFromEnv();
const specs = contenderSet === 'all' ? [...CORE, ...EXTRA] : CORE;
progress(`${scenarios.length} scenario(s) (${scenarios.join(', ')}), ${specs.length} contenders, ${CALLERS} callers and <= ${RATE} calls/s each, ${WARMUP_SECONDS} s healthy then ${FAULT_SECONDS} s of fault`);

const results: ScenarioResult[] = [];
for (const name of scenarios) results.push(await runScenario(name, specs));

const tables: Table[] = [];
const targets: Target[] = [];
for (const r of results) {
  const bar = SUCCESS_BAR[r.name];
  tables.push({
    title: `${r.name}: ${SCENARIO_TEXT[r.name]}; counted from ${COUNT_FROM_MS / 1000} s after the onset (goal: resilient-grpc on defaults the highest success${bar === undefined ? '' : `, >= ${bar} %`} and the lowest p99)`,
    header: ['contender', 'calls', 'calls/s', 'success', 'p50', 'p99', 'attempts/call', 'from onset', 'failures'],
    rows: r.contenders.map((c) => [
      c.name,
      fmt.int(c.calls),
      fmt.int(c.callsPerSec),
      `${fmt.fixed(c.success, 2)} %`,
      `${fmt.fixed(c.p50, 2)} ms`,
      `${fmt.fixed(c.p99, 1)} ms`,
      fmt.fixed(c.attemptsPerCall, 3),
      `${fmt.fixed(c.successFromOnset, 2)} %`,
      Object.entries(c.codes)
        .map(([k, v]) => `${k}: ${v}`)
        .join(', ') || '-',
    ]),
  });
  const ours = r.contenders.find((c) => c.ours);
  const rivals = r.contenders.filter((c) => c.rival);
  if (ours === undefined || rivals.length === 0) continue;
  const bestSuccess = rivals.reduce((best, c) => (c.success > best.success ? c : best));
  const bestP99 = rivals.reduce((best, c) => (c.p99 < best.p99 ? c : best));
  targets.push(
    {
      what: `${r.name}: resilient-grpc success`,
      figure: `${fmt.fixed(ours.success, 2)} %`,
      target: `${bar === undefined ? '' : `≥ ${bar} % and `}the highest (best other: ${fmt.fixed(bestSuccess.success, 2)} %, ${bestSuccess.name})`,
      met: ours.success >= bestSuccess.success && (bar === undefined || ours.success >= bar),
    },
    {
      what: `${r.name}: resilient-grpc p99`,
      figure: `${fmt.fixed(ours.p99, 1)} ms`,
      target: `the lowest (best other: ${fmt.fixed(bestP99.p99, 1)} ms, ${bestP99.name})`,
      met: ours.p99 <= bestP99.p99,
    },
  );
}

report({
  name: 'partial-outage',
  title: `Partial outage: 1 of 3 endpoints errors, hangs, freezes, flaps (${scenarios.join(', ')}); ${CALLERS} callers and <= ${RATE} calls/s per contender, ${FAULT_SECONDS} s per scenario, 1 s deadline`,
  durationSec: (performance.now() - startedAt) / 1000,
  tables,
  targets,
  notes: [
    `each scenario: every contender has its own 3 endpoints, the first one sick; ${WARMUP_SECONDS} s healthy, then the onset (same moment for all), then ${FAULT_SECONDS} s of fault. Figures count calls started from ${COUNT_FROM_MS / 1000} s after the onset; "from onset" counts from the onset itself.`,
    'hang: one test server in a child process, reached by each contender through its own fault proxy, SIGSTOPped at the onset (SIGCONT only after the calls settled). freeze: a fault proxy in front of the first endpoint freezes the connections open at the onset (bytes dropped both ways, no FIN, no RST); new connections pass.',
    'attempts/call: attempts counted at the servers (hang, freeze: at the sick endpoint, HTTP/2 streams its proxy saw from the client, forwarded or not) from 1 s after the onset until the last call settled, over the calls started in that time.',
    `load: ${CALLERS} callers per contender, paced to ${RATE} calls/s at most (calls/s: what each got in the counted time). The event loop's lag (p99 of the ${CLOCK_MS} ms clock's lateness, a busy process or machine): ${r2(results.map((r) => `${r.name} ${fmt.fixed(r.tickLagP99Ms, 1)} ms`))}.`,
    `grpc-js outlier_detection config: ${JSON.stringify(OUTLIER_DETECTION)}; retryPolicy: ${JSON.stringify(OD_RETRY_SERVICE_CONFIG.methodConfig[0]!.retryPolicy)}.`,
    ...(contenderSet === 'all'
      ? ['nice-grpc: createChannel(target) (grpc-js default LB, pick_first), retry middleware with retry: true, retryMaxAttempts: 2 (3 attempts), its default retryable codes (UNKNOWN, INTERNAL, UNAVAILABLE, CANCELLED), deadline middleware 1 s.']
      : []),
    'servers (but the stopped one) and clients share one event loop (the endpoint scripts are grpc-js server interceptors in this process).',
    `machine: ${cpus().length} cores, load average ${loadAtStart.map((l) => l.toFixed(2)).join(' ')} at the start, ${loadavg()
      .map((l) => l.toFixed(2))
      .join(' ')} at the end.`,
  ],
  data: { rate: RATE, callers: CALLERS, faultSeconds: FAULT_SECONDS, warmupSeconds: WARMUP_SECONDS, countFromMs: COUNT_FROM_MS, scenarios: results },
});

function r2(parts: readonly string[]): string {
  return parts.join(', ');
}
