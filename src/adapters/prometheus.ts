/**
 * The pool's calls as Prometheus metrics (prom-client), with go-grpc-middleware's names: {@link prometheusMetrics}.
 * @module resilient-grpc/prometheus
 */

// `resilient-grpc/prometheus`: the pool's calls as Prometheus metrics, with the names and labels
// of go-grpc-middleware v2's prometheus provider (providers/prometheus/client_metrics.go), so
// dashboards made for Go and Java gRPC clients work as they are, plus the resilience layer's
// own metrics under the same `grpc_client_` family. Built only on the pool's public events and
// stats(): nothing here knows the pool's internals. prom-client is an optional peer dependency,
// loaded only by this subpath.
// Over 300 lines on purpose: one adapter, whose metric definitions each take a few lines.
import { Counter, Gauge, Histogram, register, type Registry } from 'prom-client';
import type {
  AttemptEndEvent,
  BreakerStateChange,
  CallEndEvent,
  CallInfo,
  CallStartEvent,
  ChannelReplaced,
  EndpointEjection,
  Event,
  PoolStats,
  RetryEvent,
  Subscription,
} from '../index.js';

/** What the adapter needs of a pool: its events and `stats()` (a `ChannelPool` has them all). */
export interface ObservablePool {
  /** `pool.onCallStart`: each call as it is admitted. */
  onCallStart: Event<CallStartEvent>;
  /** `pool.onCallEnd`: each call's outcome. */
  onCallEnd: Event<CallEndEvent>;
  /** `pool.onAttemptEnd`: each attempt's outcome. */
  onAttemptEnd: Event<AttemptEndEvent>;
  /** `pool.onRetry`: each retry before its backoff. */
  onRetry: Event<RetryEvent>;
  /** `pool.onBreakerStateChange`: each circuit state change. */
  onBreakerStateChange: Event<BreakerStateChange>;
  /** `pool.onChannelReplaced`: each channel replaced by the watchdog or the stall detector. */
  onChannelReplaced: Event<ChannelReplaced>;
  /** `pool.onEndpointEjection`: each endpoint ejected and returned. */
  onEndpointEjection: Event<EndpointEjection>;
  /** `pool.stats()`: read at collection time. */
  stats(): PoolStats;
}

/** Options of {@link prometheusMetrics}. */
export interface PrometheusMetricsOptions {
  /** The registry to register on. Default: prom-client's default registry (`register`). */
  registry?: Registry;
  /**
   * Buckets of `grpc_client_handling_seconds`, in seconds. Default: Prometheus's DefBuckets,
   * `[0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10]`, as go-grpc-middleware uses.
   */
  buckets?: number[];
}

/**
 * go-grpc-middleware's `grpc_code` values: Go's `codes.Code.String()`, e.g. `OK`, `Canceled`,
 * `DeadlineExceeded`, `Unavailable` (not the UPPER_SNAKE names of the gRPC spec).
 */
const GO_CODE_NAMES = [
  'OK',
  'Canceled',
  'Unknown',
  'InvalidArgument',
  'DeadlineExceeded',
  'NotFound',
  'AlreadyExists',
  'PermissionDenied',
  'ResourceExhausted',
  'FailedPrecondition',
  'Aborted',
  'OutOfRange',
  'Unimplemented',
  'Internal',
  'Unavailable',
  'DataLoss',
  'Unauthenticated',
] as const;

/** A status code as go-grpc-middleware's `grpc_code` label writes it (`Code(17)` beyond the known ones). */
export function goCodeName(code: number): string {
  return GO_CODE_NAMES[code] ?? `Code(${code})`;
}

const DEFAULT_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
const BREAKER_STATES = ['closed', 'open', 'half-open'] as const;

type MethodLabelSet = { grpc_type: string; grpc_service: string; grpc_method: string };
type CodeLabelSet = MethodLabelSet & { grpc_code: string };

/**
 * One method's counts since the last scrape. The call path only adds to these numbers (a
 * prom-client `inc()` hashes its labels each time, about a microsecond); each counter's
 * `collect()` hands them to prom-client when the registry is read.
 */
interface MethodCounts {
  labels: MethodLabelSet;
  byCode: CodeLabelSet[];
  /** Labels of `grpc_client_retries_total` (no grpc_type) by code. */
  retryByCode: Array<{ grpc_service: string; grpc_method: string; grpc_code: string }>;
  started: number;
  sent: number;
  received: number;
  handled: number[];
  attempts: number[];
  retries: number[];
  /** Hedges that lost and that won their race (adaptive hedging). */
  hedgesLost: number;
  hedgesWon: number;
}

/** Hands `counts[code]` to `counter` under `labelsOf(code)` and zeroes them. */
function flush<L extends string>(counter: Counter<L>, counts: number[], labelsOf: (code: number) => Partial<Record<L, string>>): void {
  for (let code = 0; code < counts.length; code++) {
    const n = counts[code];
    if (n === undefined || n === 0) continue;
    counter.inc(labelsOf(code), n);
    counts[code] = 0;
  }
}

/**
 * Registers the pool's metrics on `registry` (the default registry if none) and keeps them up
 * to date from the pool's events; `dispose()` unsubscribes and unregisters them. The standard
 * metrics (go-grpc-middleware v2 names and labels):
 *
 * - `grpc_client_started_total` counter {grpc_type, grpc_service, grpc_method}: calls started.
 * - `grpc_client_handled_total` counter {+ grpc_code}: calls completed, one per logical call
 *   however many attempts it took, `grpc_code` as Go names it (`OK`, `Unavailable`).
 * - `grpc_client_msg_sent_total` / `grpc_client_msg_received_total` counters: messages, counted
 *   when the call ends.
 * - `grpc_client_handling_seconds` histogram: call duration, start to status.
 *
 * And the resilience layer's own (see the README, "Observability", for each one's meaning):
 * `grpc_client_attempts_total`, `grpc_client_retries_total`, `grpc_client_retries_throttled_total`,
 * `grpc_client_retries_budget_total`, `grpc_client_hedges_total`,
 * `grpc_client_refused_total`, `grpc_client_circuit_state`, `grpc_client_circuit_opened_total`,
 * `grpc_client_channel_replacements_total`, `grpc_client_endpoint_ejections_total`,
 * `grpc_client_endpoints_ejected`, `grpc_client_in_flight`, `grpc_client_channels`,
 * `grpc_client_adaptive_throttling_rejected_total`, `grpc_client_adaptive_throttling_reject_probability`.
 *
 * @throws Error from prom-client when a metric of the same name is already registered on the
 *   registry (one adapter per registry: give each pool its own registry, or one pool).
 */
export function prometheusMetrics(pool: ObservablePool, options: PrometheusMetricsOptions = {}): Subscription {
  const registry = options.registry ?? register;
  const registers = [registry];
  const methodLabels = ['grpc_type', 'grpc_service', 'grpc_method'] as const;
  const codeLabels = [...methodLabels, 'grpc_code'] as const;
  const registered: string[] = [];
  const track = <M>(name: string, make: () => M): M => {
    const metric = make();
    registered.push(name);
    return metric;
  };

  // Made once per method path (a path has one call shape) and reused: an event allocates nothing here.
  const byMethod = new Map<string, MethodCounts>();
  const countsOf = (event: CallInfo): MethodCounts => {
    let entry = byMethod.get(event.method);
    if (entry === undefined) {
      entry = {
        labels: { grpc_type: event.type, grpc_service: event.service, grpc_method: event.methodName },
        byCode: [],
        retryByCode: [],
        started: 0,
        sent: 0,
        received: 0,
        handled: [],
        attempts: [],
        retries: [],
        hedgesLost: 0,
        hedgesWon: 0,
      };
      byMethod.set(event.method, entry);
    }
    return entry;
  };
  const withCode = (entry: MethodCounts, code: number): CodeLabelSet =>
    (entry.byCode[code] ??= { ...entry.labels, grpc_code: goCodeName(code) });
  const retryLabels = (entry: MethodCounts, code: number) =>
    (entry.retryByCode[code] ??= {
      grpc_service: entry.labels.grpc_service,
      grpc_method: entry.labels.grpc_method,
      grpc_code: goCodeName(code),
    });
  /** A `collect()` that hands one figure of every method to its counter. */
  const flushing = (take: (entry: MethodCounts) => number) =>
    function (this: Counter<string>): void {
      for (const entry of byMethod.values()) {
        const n = take(entry);
        if (n > 0) this.inc(entry.labels, n);
      }
    };

  let metrics;
  try {
    metrics = {
      started: track(
        'grpc_client_started_total',
        () =>
          new Counter({
            name: 'grpc_client_started_total',
            help: 'Total number of RPCs started on the client.',
            labelNames: methodLabels,
            registers,
            collect: flushing((e) => {
              const n = e.started;
              e.started = 0;
              return n;
            }),
          }),
      ),
      handled: track(
        'grpc_client_handled_total',
        () =>
          new Counter({
            name: 'grpc_client_handled_total',
            help: 'Total number of RPCs completed by the client, regardless of success or failure.',
            labelNames: codeLabels,
            registers,
            collect(this: Counter<(typeof codeLabels)[number]>) {
              for (const entry of byMethod.values()) flush(this, entry.handled, (code) => withCode(entry, code));
            },
          }),
      ),
      msgReceived: track(
        'grpc_client_msg_received_total',
        () =>
          new Counter({
            name: 'grpc_client_msg_received_total',
            help: 'Total number of RPC stream messages received by the client.',
            labelNames: methodLabels,
            registers,
            collect: flushing((e) => {
              const n = e.received;
              e.received = 0;
              return n;
            }),
          }),
      ),
      msgSent: track(
        'grpc_client_msg_sent_total',
        () =>
          new Counter({
            name: 'grpc_client_msg_sent_total',
            help: 'Total number of gRPC stream messages sent by the client.',
            labelNames: methodLabels,
            registers,
            collect: flushing((e) => {
              const n = e.sent;
              e.sent = 0;
              return n;
            }),
          }),
      ),
      handling: track(
        'grpc_client_handling_seconds',
        () =>
          new Histogram({
            name: 'grpc_client_handling_seconds',
            help: 'Histogram of response latency (seconds) of the gRPC until it is finished by the application.',
            labelNames: methodLabels,
            buckets: options.buckets ?? DEFAULT_BUCKETS,
            registers,
          }),
      ),
      attempts: track(
        'grpc_client_attempts_total',
        () =>
          new Counter({
            name: 'grpc_client_attempts_total',
            help: "Total number of RPC attempts (the first and every retry) completed by the client, by the attempt's status.",
            labelNames: codeLabels,
            registers,
            collect(this: Counter<(typeof codeLabels)[number]>) {
              for (const entry of byMethod.values()) flush(this, entry.attempts, (code) => withCode(entry, code));
            },
          }),
      ),
      retries: track(
        'grpc_client_retries_total',
        () =>
          new Counter({
            name: 'grpc_client_retries_total',
            help: 'Total number of retries started by the client, by the status of the attempt that failed.',
            labelNames: ['grpc_service', 'grpc_method', 'grpc_code'],
            registers,
            collect(this: Counter<'grpc_service' | 'grpc_method' | 'grpc_code'>) {
              for (const entry of byMethod.values()) flush(this, entry.retries, (code) => retryLabels(entry, code));
            },
          }),
      ),
      hedges: track(
        'grpc_client_hedges_total',
        () =>
          new Counter({
            name: 'grpc_client_hedges_total',
            help: 'Total number of hedged attempts (adaptive hedging) completed by the client; won "true" when the hedge answered first.',
            labelNames: [...methodLabels, 'won'],
            registers,
            collect(this: Counter<(typeof methodLabels)[number] | 'won'>) {
              for (const entry of byMethod.values()) {
                if (entry.hedgesWon > 0) this.inc({ ...entry.labels, won: 'true' }, entry.hedgesWon);
                if (entry.hedgesLost > 0) this.inc({ ...entry.labels, won: 'false' }, entry.hedgesLost);
                entry.hedgesWon = 0;
                entry.hedgesLost = 0;
              }
            },
          }),
      ),
      refused: track(
        'grpc_client_refused_total',
        () =>
          new Counter({
            name: 'grpc_client_refused_total',
            help: 'Total number of RPCs refused without reaching the network: reason "circuit" (circuit open), "pool" (pool closing) or "throttle" (adaptive throttling).',
            labelNames: [...methodLabels, 'reason'],
            registers,
          }),
      ),
      opened: track(
        'grpc_client_circuit_opened_total',
        () =>
          new Counter({
            name: 'grpc_client_circuit_opened_total',
            help: 'Total number of times a circuit breaker opened (grpc_service and grpc_method empty for a channel-wide breaker).',
            labelNames: ['grpc_target', 'grpc_service', 'grpc_method'],
            registers,
          }),
      ),
      replacements: track(
        'grpc_client_channel_replacements_total',
        () =>
          new Counter({
            name: 'grpc_client_channel_replacements_total',
            help: 'Total number of channels replaced by the connect watchdog (stuck CONNECTING) or the stall detector (silent while READY).',
            labelNames: ['grpc_target'],
            registers,
          }),
      ),
      throttled: track(
        'grpc_client_retries_throttled_total',
        () =>
          new Counter({
            name: 'grpc_client_retries_throttled_total',
            help: 'Retries the policy allowed but retry throttling refused (the gRFC A6 bucket, then the retry budget), summed over the open channels of each target.',
            labelNames: ['grpc_target'],
            registers,
            collect(this: Counter<'grpc_target'>) {
              this.reset();
              for (const [target, n] of sumByTarget(pool.stats(), (c) => c.throttledRetries)) this.inc({ grpc_target: target }, n);
            },
          }),
      ),
      budget: track(
        'grpc_client_retries_budget_total',
        () =>
          new Counter({
            name: 'grpc_client_retries_budget_total',
            help: 'Retries the retry budget paid for (the gRFC A6 bucket alone would have refused them), summed over the open channels of each target.',
            labelNames: ['grpc_target'],
            registers,
            collect(this: Counter<'grpc_target'>) {
              this.reset();
              for (const [target, n] of sumByTarget(pool.stats(), (c) => c.budgetRetries)) this.inc({ grpc_target: target }, n);
            },
          }),
      ),
      circuitState: track(
        'grpc_client_circuit_state',
        () =>
          new Gauge({
            name: 'grpc_client_circuit_state',
            help: 'State of each circuit breaker: 1 for its current state ("closed", "open", "half-open"), 0 for the others.',
            labelNames: ['grpc_target', 'grpc_service', 'grpc_method', 'state'],
            registers,
            collect(this: Gauge<'grpc_target' | 'grpc_service' | 'grpc_method' | 'state'>) {
              this.reset();
              for (const channel of pool.stats().perChannel) {
                for (const breaker of channel.breakers) {
                  const { service, method } = splitPath(breaker.method);
                  for (const state of BREAKER_STATES) {
                    this.set(
                      { grpc_target: channel.target, grpc_service: service, grpc_method: method, state },
                      breaker.state === state ? 1 : 0,
                    );
                  }
                }
              }
            },
          }),
      ),
      inFlight: track(
        'grpc_client_in_flight',
        () =>
          new Gauge({
            name: 'grpc_client_in_flight',
            help: 'RPCs in flight (started, not yet completed), per target.',
            labelNames: ['grpc_target'],
            registers,
            collect(this: Gauge<'grpc_target'>) {
              this.reset();
              for (const [target, n] of sumByTarget(pool.stats(), (c) => c.inFlight)) this.set({ grpc_target: target }, n);
            },
          }),
      ),
      channels: track(
        'grpc_client_channels',
        () =>
          new Gauge({
            name: 'grpc_client_channels',
            help: 'Open channels owned by the pool.',
            registers,
            collect(this: Gauge) {
              this.set(pool.stats().channels);
            },
          }),
      ),
      ejections: track(
        'grpc_client_endpoint_ejections_total',
        () =>
          new Counter({
            name: 'grpc_client_endpoint_ejections_total',
            help: 'Total number of times endpoint ejection took an endpoint of a target out of rotation, by reason (consecutive-failures, failure-percentage, silent, not-serving).',
            labelNames: ['grpc_target', 'reason'],
            registers,
          }),
      ),
      ejected: track(
        'grpc_client_endpoints_ejected',
        () =>
          new Gauge({
            name: 'grpc_client_endpoints_ejected',
            help: 'Endpoints out of rotation now, per target (targets with several endpoints only).',
            labelNames: ['grpc_target'],
            registers,
            collect(this: Gauge<'grpc_target'>) {
              this.reset();
              for (const channel of pool.stats().perChannel) {
                if (channel.endpoints.length === 0) continue;
                this.inc({ grpc_target: channel.target }, channel.endpoints.filter((e) => e.ejected).length);
              }
            },
          }),
      ),
      throttleRejected: track(
        'grpc_client_adaptive_throttling_rejected_total',
        () =>
          new Counter({
            name: 'grpc_client_adaptive_throttling_rejected_total',
            help: 'Calls rejected locally by adaptive throttling, summed over the open channels of each target (targets with adaptiveThrottling only).',
            labelNames: ['grpc_target'],
            registers,
            collect(this: Counter<'grpc_target'>) {
              this.reset();
              for (const channel of pool.stats().perChannel) {
                if (channel.adaptiveThrottling !== undefined)
                  this.inc({ grpc_target: channel.target }, channel.adaptiveThrottling.rejected);
              }
            },
          }),
      ),
      throttleProbability: track(
        'grpc_client_adaptive_throttling_reject_probability',
        () =>
          new Gauge({
            name: 'grpc_client_adaptive_throttling_reject_probability',
            help: 'Probability (0 to 1) that adaptive throttling rejects a new call now, the highest over the open channels of each target (targets with adaptiveThrottling only).',
            labelNames: ['grpc_target'],
            registers,
            collect(this: Gauge<'grpc_target'>) {
              this.reset();
              const highest = new Map<string, number>();
              for (const channel of pool.stats().perChannel) {
                const throttle = channel.adaptiveThrottling;
                if (throttle === undefined) continue;
                highest.set(channel.target, Math.max(highest.get(channel.target) ?? 0, throttle.rejectProbability));
              }
              for (const [target, p] of highest) this.set({ grpc_target: target }, p);
            },
          }),
      ),
    };
  } catch (error) {
    for (const name of registered) registry.removeSingleMetric(name);
    throw error;
  }
  const m = metrics;

  const add = (counts: number[], code: number): void => {
    counts[code] = (counts[code] ?? 0) + 1;
  };
  const subscriptions: Subscription[] = [
    pool.onCallStart((event) => {
      countsOf(event).started++;
    }),
    pool.onCallEnd((event) => {
      const entry = countsOf(event);
      add(entry.handled, event.code);
      entry.sent += event.messagesSent;
      entry.received += event.messagesReceived;
      m.handling.observe(entry.labels, event.durationMs / 1000);
      if (event.refused !== undefined) m.refused.inc({ ...entry.labels, reason: event.refused });
    }),
    pool.onAttemptEnd((event) => {
      const entry = countsOf(event);
      add(entry.attempts, event.code);
      if (event.hedge) {
        if (event.won === true) entry.hedgesWon++;
        else entry.hedgesLost++;
      }
    }),
    pool.onRetry((event) => {
      // A retry's method was started (and counted) first: its entry exists.
      const entry = byMethod.get(event.method);
      if (entry !== undefined) add(entry.retries, event.code);
    }),
    pool.onBreakerStateChange((change) => {
      if (change.state !== 'open') return;
      const { service, method } = splitPath(change.method);
      m.opened.inc({ grpc_target: change.target, grpc_service: service, grpc_method: method });
    }),
    pool.onChannelReplaced((event) => m.replacements.inc({ grpc_target: event.target })),
    pool.onEndpointEjection((event) => {
      if (event.ejected) m.ejections.inc({ grpc_target: event.target, reason: event.reason });
    }),
  ];

  let disposed = false;
  const dispose = (): void => {
    if (disposed) return;
    disposed = true;
    for (const subscription of subscriptions) subscription.dispose();
    for (const name of registered) registry.removeSingleMetric(name);
  };
  return { dispose, [Symbol.dispose]: dispose };
}

/** `/pkg.Service/Method` to its two labels; empty strings for none (a channel-wide breaker). */
function splitPath(path: string | undefined): { service: string; method: string } {
  if (path === undefined) return { service: '', method: '' };
  const slash = path.lastIndexOf('/');
  return { service: path.slice(path.startsWith('/') ? 1 : 0, Math.max(slash, 0)), method: path.slice(slash + 1) };
}

function sumByTarget(stats: PoolStats, figure: (channel: PoolStats['perChannel'][number]) => number): Map<string, number> {
  const sums = new Map<string, number>();
  for (const channel of stats.perChannel) sums.set(channel.target, (sums.get(channel.target) ?? 0) + figure(channel));
  return sums;
}
