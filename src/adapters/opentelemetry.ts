/**
 * The pool's calls as OpenTelemetry metrics and traces: {@link openTelemetry}. Register a global
 * propagator (the API's default is a no-op) for the trace context to reach the server.
 * @module resilient-grpc/opentelemetry
 */

// `resilient-grpc/opentelemetry`: the pool's calls as OpenTelemetry metrics and traces.
// Metrics: the semantic conventions' `rpc.client.call.duration`, gRPC's own per-attempt and
// per-call instruments (gRFC A66) and retry instruments (gRFC A96), and the resilience layer's
// instruments under `resilient_grpc.`. Traces: one span per logical call with one child span per
// attempt (gRFC A72's shape), retries and refusals as events on the call span, and the trace
// context of each attempt injected into its request metadata with the global propagator (a no-op
// until the application registers one, e.g. W3C trace context) so the server joins the trace.
// Built only on the pool's public events and stats(). @opentelemetry/api is an optional peer
// dependency, loaded only by this subpath.
// Over 300 lines on purpose: one adapter, whose metric definitions each take a few lines.
import {
  context,
  metrics,
  propagation,
  trace,
  SpanKind,
  SpanStatusCode,
  ValueType,
  type Attributes,
  type Context,
  type Counter,
  type Histogram,
  type MeterProvider,
  type Span,
  type TextMapSetter,
  type TracerProvider,
} from '@opentelemetry/api';
import type { Metadata } from '@grpc/grpc-js';
import type {
  AttemptEndEvent,
  AttemptStartEvent,
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
  /** `pool.onAttemptStart`: each attempt before it goes on the wire. */
  onAttemptStart: Event<AttemptStartEvent>;
  /** `pool.onAttemptEnd`: each attempt's outcome. */
  onAttemptEnd: Event<AttemptEndEvent>;
  /** `pool.onRetry`: each retry before its backoff. */
  onRetry: Event<RetryEvent>;
  /** `pool.onBreakerStateChange`: each circuit state change. */
  onBreakerStateChange: Event<BreakerStateChange>;
  /** `pool.onChannelReplaced`: each channel replaced by the watchdog or the stall detector. */
  onChannelReplaced: Event<ChannelReplaced>;
  /** `pool.onEndpointEjection`: each endpoint taken out of rotation (optional for pools made before it existed). */
  onEndpointEjection?: Event<EndpointEjection> | undefined;
  /** `pool.stats()`: read at collection time. */
  stats(): PoolStats;
}

/** Options of {@link openTelemetry}. */
export interface OpenTelemetryOptions {
  /** Where the instruments are created. Default: the global meter provider (`metrics.getMeterProvider()`). */
  meterProvider?: MeterProvider;
  /** Where the spans are created. Default: the global tracer provider (`trace.getTracerProvider()`). */
  tracerProvider?: TracerProvider;
  /** Record metrics. Default true. */
  metrics?: boolean;
  /** Record spans and inject the trace context into each attempt's metadata. Default true. */
  traces?: boolean;
  /**
   * A child span per attempt. Default true. Set it false beside
   * `@opentelemetry/instrumentation-grpc`, whose own span per grpc-js call then is the attempt
   * span (under the call span; it injects its own context): no two spans for one attempt.
   * Without attempt spans (and without that instrumentation) the call span's context is injected.
   * A call whose span is not recording (not sampled) gets no attempt spans whatever this says.
   */
  attemptSpans?: boolean;
}

const SCOPE_NAME = 'resilient-grpc';

/** The semantic conventions' bucket advice for `rpc.client.call.duration`, in seconds. */
export const RPC_DURATION_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10];

/** gRFC A66's latency buckets, in seconds (for `grpc.client.*.duration` and `grpc.client.call.retry_delay`). */
export const GRPC_LATENCY_BUCKETS = [
  0, 0.00001, 0.00005, 0.0001, 0.0003, 0.0006, 0.0008, 0.001, 0.002, 0.003, 0.004, 0.005, 0.006, 0.008, 0.01, 0.013, 0.016, 0.02, 0.025,
  0.03, 0.04, 0.05, 0.065, 0.08, 0.1, 0.13, 0.16, 0.2, 0.25, 0.3, 0.4, 0.5, 0.65, 0.8, 1, 2, 5, 10, 20, 50, 100,
];

/** gRFC A96's buckets for `grpc.client.call.retries`. */
export const GRPC_RETRY_BUCKETS = [1, 2, 3, 4, 5];

/** gRPC status names as the gRPC spec writes them (`rpc.status_code`, `grpc.status`, `error.type`). */
const STATUS_NAMES = [
  'OK',
  'CANCELLED',
  'UNKNOWN',
  'INVALID_ARGUMENT',
  'DEADLINE_EXCEEDED',
  'NOT_FOUND',
  'ALREADY_EXISTS',
  'PERMISSION_DENIED',
  'RESOURCE_EXHAUSTED',
  'FAILED_PRECONDITION',
  'ABORTED',
  'OUT_OF_RANGE',
  'UNIMPLEMENTED',
  'INTERNAL',
  'UNAVAILABLE',
  'DATA_LOSS',
  'UNAUTHENTICATED',
] as const;

function statusName(code: number): string {
  return STATUS_NAMES[code] ?? String(code);
}

const metadataSetter: TextMapSetter<Metadata> = {
  set(carrier, key, value) {
    carrier.set(key, value);
  },
};

/** Per target and method: the attribute sets and names, made once and reused for every measurement. */
interface MethodAttributes {
  /** `rpc.method`: `pkg.Service/Method`, the call span's name. */
  rpcMethod: string;
  /** gRFC A72's attempt span name, `Attempt.pkg.Service.Method`. */
  attemptName: string;
  /** Semantic-conventions attributes without the status: rpc.system.name, rpc.method, server.*. */
  rpc: Attributes;
  /** gRFC A66 attributes without the status: grpc.method, grpc.target. */
  grpc: Attributes;
  rpcByCode: Attributes[];
  grpcByCode: Attributes[];
  /** An attempt span's attributes at its start, by attempt number. */
  attemptByNumber: Attributes[];
  /** Attempts started so far: `grpc.client.attempt.started`, reported when the metrics are collected. */
  attemptsStarted: number;
}

interface CallState {
  span: Span;
  /** The caller's context with the call span in it: every attempt span's parent. */
  context: Context;
  /** The attempt running now and its number. */
  attempt: Span | undefined;
  attemptNumber: number;
  /** A hedge racing it (adaptive hedging: at most one per call) and its number. */
  hedge: Span | undefined;
  hedgeNumber: number;
}

/** The most peer addresses whose parsed form is kept (endpoints are few; a bound keeps churn from growing it). */
const PEER_CACHE_SIZE = 256;

/**
 * Records the pool's calls with OpenTelemetry: metrics on `meterProvider`, spans on
 * `tracerProvider` (the global ones by default). Returns a subscription whose `dispose()`
 * stops recording (instruments stay with their meter: OpenTelemetry has no way to remove them).
 *
 * Span shape: a CLIENT span per logical call named `pkg.Service/Method` (the semantic
 * conventions' RPC client span), a child CLIENT span per attempt named
 * `Attempt.pkg.Service.Method` (gRFC A72), whose context is injected into the attempt's
 * metadata with the global propagator and is active while the grpc-js call is made, so
 * `@opentelemetry/instrumentation-grpc`'s own span nests under it. The OpenTelemetry API's
 * default global propagator is a no-op: register one (`propagation.setGlobalPropagator(new
 * W3CTraceContextPropagator())`, or the SDK's `register()`) for a `traceparent` to be sent.
 */
export function openTelemetry(pool: ObservablePool, options: OpenTelemetryOptions = {}): Subscription {
  const subscriptions: Subscription[] = [];
  // Target, then method path: no string is built per event.
  const byTarget = new Map<string, Map<string, MethodAttributes>>();
  const attributesOf = (event: CallInfo): MethodAttributes => {
    let byMethod = byTarget.get(event.target);
    if (byMethod === undefined) byTarget.set(event.target, (byMethod = new Map()));
    let entry = byMethod.get(event.method);
    if (entry === undefined) {
      const rpcMethod = event.method.startsWith('/') ? event.method.slice(1) : event.method;
      const server = serverAddress(event.target);
      const rpc: Attributes = { 'rpc.system.name': 'grpc', 'rpc.method': rpcMethod, 'server.address': server.address };
      if (server.port !== undefined) rpc['server.port'] = server.port;
      entry = {
        rpcMethod,
        attemptName: `Attempt.${event.service}.${event.methodName}`,
        rpc,
        grpc: { 'grpc.method': rpcMethod, 'grpc.target': canonicalTarget(event.target) },
        rpcByCode: [],
        grpcByCode: [],
        attemptByNumber: [],
        attemptsStarted: 0,
      };
      byMethod.set(event.method, entry);
    }
    return entry;
  };
  const rpcAttributes = (entry: MethodAttributes, code: number): Attributes =>
    (entry.rpcByCode[code] ??=
      code === 0
        ? { ...entry.rpc, 'rpc.status_code': 'OK' }
        : { ...entry.rpc, 'rpc.status_code': statusName(code), 'error.type': statusName(code) });
  const grpcAttributes = (entry: MethodAttributes, code: number): Attributes =>
    (entry.grpcByCode[code] ??= { ...entry.grpc, 'grpc.status': statusName(code) });
  const attemptAttributes = (entry: MethodAttributes, attempt: number): Attributes =>
    (entry.attemptByNumber[attempt] ??= { ...entry.rpc, 'previous-rpc-attempts': attempt - 1, 'transparent-retry': false });
  const peers = new Map<string, { address: string; port: number | undefined }>();
  const peerOf = (peer: string): { address: string; port: number | undefined } => {
    let parsed = peers.get(peer);
    if (parsed === undefined) {
      if (peers.size >= PEER_CACHE_SIZE) peers.clear();
      peers.set(peer, (parsed = peerAddress(peer)));
    }
    return parsed;
  };

  const instruments =
    options.metrics === false
      ? undefined
      : createInstruments(options.meterProvider ?? metrics.getMeterProvider(), pool, byTarget, subscriptions);
  const tracer = options.traces === false ? undefined : (options.tracerProvider ?? trace.getTracerProvider()).getTracer(SCOPE_NAME);
  const attemptSpans = options.attemptSpans !== false;
  const calls = new Map<number, CallState>();

  // One listener per event for metrics and traces together: one lookup of the method's entry.
  if (tracer !== undefined) {
    subscriptions.push(
      pool.onCallStart((event) => {
        const entry = attributesOf(event);
        const parent = context.active();
        const span = tracer.startSpan(entry.rpcMethod, { kind: SpanKind.CLIENT, attributes: entry.rpc }, parent);
        calls.set(event.callId, {
          span,
          context: trace.setSpan(parent, span),
          attempt: undefined,
          attemptNumber: 0,
          hedge: undefined,
          hedgeNumber: 0,
        });
      }),
      pool.onRetry((event) => {
        calls.get(event.callId)?.span.addEvent('resilient_grpc.retry', {
          'resilient_grpc.retry.failed_attempt': event.attempt,
          'rpc.status_code': statusName(event.code),
          'resilient_grpc.retry.backoff_ms': event.delayMs,
          'resilient_grpc.retry.pushback': event.pushback,
        });
      }),
    );
  }
  // With neither, nothing listens: calls stay unobserved.
  if (instruments !== undefined || tracer !== undefined) {
    subscriptions.push(
      pool.onAttemptStart((event) => {
        const entry = attributesOf(event);
        entry.attemptsStarted++;
        const call = tracer === undefined ? undefined : calls.get(event.callId);
        if (call === undefined) return;
        let attemptContext = call.context;
        // A call span that records nothing (its sampler said no) gets no attempt spans: under the
        // SDK's default ParentBased sampler they would record nothing either, and the call's own
        // context carries the decision (traceparent flags 00) to the server all the same.
        if (attemptSpans && call.span.isRecording()) {
          const span = tracer!.startSpan(
            entry.attemptName,
            { kind: SpanKind.CLIENT, attributes: attemptAttributes(entry, event.attempt) },
            call.context,
          );
          if (event.hedge) {
            span.setAttribute('resilient_grpc.hedge', true);
            call.hedge = span;
            call.hedgeNumber = event.attempt;
          } else {
            call.attempt = span;
            call.attemptNumber = event.attempt;
          }
          attemptContext = trace.setSpan(call.context, span);
        }
        propagation.inject(attemptContext, event.metadata, metadataSetter);
        event.scope = (start) => context.with(attemptContext, start);
      }),
      pool.onAttemptEnd((event) => {
        if (instruments !== undefined)
          instruments.attemptDuration.record(event.durationMs / 1000, grpcAttributes(attributesOf(event), event.code));
        const call = tracer === undefined ? undefined : calls.get(event.callId);
        if (call === undefined) return;
        let span: Span | undefined;
        if (call.attempt !== undefined && call.attemptNumber === event.attempt) {
          span = call.attempt;
          call.attempt = undefined;
        } else if (call.hedge !== undefined && call.hedgeNumber === event.attempt) {
          span = call.hedge;
          call.hedge = undefined;
        }
        if (span === undefined) return;
        if (span.isRecording()) {
          if (event.won !== undefined) span.setAttribute('resilient_grpc.hedge.won', event.won);
          span.setAttribute('rpc.status_code', statusName(event.code));
          if (event.peer !== undefined) {
            const peer = peerOf(event.peer);
            span.setAttribute('network.peer.address', peer.address);
            if (peer.port !== undefined) span.setAttribute('network.peer.port', peer.port);
          }
          if (event.code !== 0) {
            span.setAttribute('error.type', statusName(event.code));
            span.setStatus({ code: SpanStatusCode.ERROR, message: statusName(event.code) });
          }
        }
        span.end();
      }),
      pool.onCallEnd((event) => {
        if (instruments !== undefined) {
          const entry = attributesOf(event);
          const seconds = event.durationMs / 1000;
          instruments.rpcDuration.record(seconds, rpcAttributes(entry, event.code));
          instruments.callDuration.record(seconds, grpcAttributes(entry, event.code));
          // gRFC A96: retries and hedges apart; neither is reported when 0.
          const retries = event.attempts - 1 - event.hedges;
          if (retries > 0) {
            instruments.retries.record(retries, entry.grpc);
            instruments.retryDelay.record(event.backoffMs / 1000, entry.grpc);
          }
          if (event.hedges > 0) instruments.hedges.record(event.hedges, entry.grpc);
          if (event.refused !== undefined) instruments.refused.add(1, { ...entry.grpc, 'resilient_grpc.refusal': event.refused });
        }
        const call = tracer === undefined ? undefined : calls.get(event.callId);
        if (call === undefined) return;
        calls.delete(event.callId);
        const { span } = call;
        if (span.isRecording()) {
          if (event.refused === 'circuit') span.addEvent('resilient_grpc.circuit_open', { 'resilient_grpc.attempts': event.attempts });
          if (event.refused === 'pool') span.addEvent('resilient_grpc.pool_closing');
          if (event.refused === 'throttle') span.addEvent('resilient_grpc.throttled');
          span.setAttribute('rpc.status_code', statusName(event.code));
          span.setAttribute('resilient_grpc.attempts', event.attempts);
          span.setAttribute('resilient_grpc.backoff_ms', event.backoffMs);
          if (event.hedges > 0) span.setAttribute('resilient_grpc.hedges', event.hedges);
          if (event.code !== 0) {
            span.setAttribute('error.type', statusName(event.code));
            // gRFC A72: the status description is the code name and the details.
            span.setStatus({
              code: SpanStatusCode.ERROR,
              message: event.details === undefined ? statusName(event.code) : `${statusName(event.code)}, ${event.details}`,
            });
          }
        }
        // An attempt whose end was not reported (the adapter was disposed meanwhile) ends with the call.
        call.attempt?.end();
        call.hedge?.end();
        span.end();
      }),
    );
  }

  let disposed = false;
  const dispose = (): void => {
    if (disposed) return;
    disposed = true;
    for (const subscription of subscriptions) subscription.dispose();
  };
  return { dispose, [Symbol.dispose]: dispose };
}

/** The synchronous instruments the call events record into. */
interface Instruments {
  rpcDuration: Histogram;
  attemptDuration: Histogram;
  callDuration: Histogram;
  retries: Histogram;
  hedges: Histogram;
  retryDelay: Histogram;
  refused: Counter;
}

/**
 * Creates the instruments on `meterProvider`'s meter, and the observable ones' callback (read
 * at collection: `grpc.client.attempt.started` from each method's count, the rest from
 * `stats()`), whose removal goes into `subscriptions`.
 */
function createInstruments(
  meterProvider: MeterProvider,
  pool: ObservablePool,
  byTarget: Map<string, Map<string, MethodAttributes>>,
  subscriptions: Subscription[],
): Instruments {
  const meter = meterProvider.getMeter(SCOPE_NAME);
  const histogram = (name: string, description: string, unit: string, buckets: number[], valueType?: ValueType): Histogram =>
    meter.createHistogram(name, {
      description,
      unit,
      advice: { explicitBucketBoundaries: buckets },
      ...(valueType === undefined ? {} : { valueType }),
    });
  const instruments: Instruments = {
    rpcDuration: histogram(
      'rpc.client.call.duration',
      'Measures the duration of an outgoing Remote Procedure Call (RPC).',
      's',
      RPC_DURATION_BUCKETS,
    ),
    attemptDuration: histogram(
      'grpc.client.attempt.duration',
      'End-to-end time taken to complete an RPC attempt including the time it takes to pick a subchannel.',
      's',
      GRPC_LATENCY_BUCKETS,
    ),
    callDuration: histogram(
      'grpc.client.call.duration',
      "End-to-end time the gRPC library takes to complete an RPC from the application's perspective.",
      's',
      GRPC_LATENCY_BUCKETS,
    ),
    retries: histogram(
      'grpc.client.call.retries',
      'Number of retries during the client call. If there were no retries, 0 is not reported.',
      '{retry}',
      GRPC_RETRY_BUCKETS,
      ValueType.INT,
    ),
    hedges: histogram(
      'grpc.client.call.hedges',
      'Number of hedges during the client call. If there were no hedges, 0 is not reported.',
      '{hedge}',
      GRPC_RETRY_BUCKETS,
      ValueType.INT,
    ),
    retryDelay: histogram(
      'grpc.client.call.retry_delay',
      'Total time of delay while there is no active attempt during the client call (recorded for calls that retried).',
      's',
      GRPC_LATENCY_BUCKETS,
    ),
    refused: meter.createCounter('resilient_grpc.client.call.refused', {
      description:
        'Calls refused without reaching the network: resilient_grpc.refusal "circuit" (circuit open), "pool" (pool closing) or "throttle" (adaptive throttling).',
      unit: '{call}',
      valueType: ValueType.INT,
    }),
  };
  // A monotonic sum like a synchronous counter's, counted by the adapter and read at collection:
  // an attempt costs one increment instead of an SDK measurement (which hashes its attributes).
  const attemptStarted = meter.createObservableCounter('grpc.client.attempt.started', {
    description: 'The total number of RPC attempts started, including those that have not completed.',
    unit: '{attempt}',
    valueType: ValueType.INT,
  });
  const circuitOpened = meter.createCounter('resilient_grpc.client.circuit.opened', {
    description: 'Times a circuit breaker opened.',
    unit: '{transition}',
    valueType: ValueType.INT,
  });
  const replacements = meter.createCounter('resilient_grpc.client.channel.replacements', {
    description: 'Channels replaced by the connect watchdog (stuck CONNECTING) or the stall detector (silent while READY).',
    unit: '{channel}',
    valueType: ValueType.INT,
  });
  const ejections = meter.createCounter('resilient_grpc.client.endpoint.ejections', {
    description:
      'Times an endpoint of a target was taken out of rotation, by resilient_grpc.ejection.reason ("consecutive-failures", "failure-percentage", "silent", "not-serving").',
    unit: '{ejection}',
    valueType: ValueType.INT,
  });
  const throttled = meter.createObservableCounter('resilient_grpc.client.retries.throttled', {
    description:
      'Retries the policy allowed but retry throttling refused (the gRFC A6 bucket, then the retry budget), summed over the open channels of each target.',
    unit: '{retry}',
    valueType: ValueType.INT,
  });
  const budgetPaid = meter.createObservableCounter('resilient_grpc.client.retries.budget', {
    description:
      'Retries the retry budget paid for (the gRFC A6 bucket alone would have refused them), summed over the open channels of each target.',
    unit: '{retry}',
    valueType: ValueType.INT,
  });
  const circuitState = meter.createObservableGauge('resilient_grpc.client.circuit.state', {
    description:
      'State of each circuit breaker: 1 for its current resilient_grpc.circuit.state ("closed", "open", "half-open"), 0 for the others.',
    unit: '1',
    valueType: ValueType.INT,
  });
  const inFlight = meter.createObservableUpDownCounter('resilient_grpc.client.call.in_flight', {
    description: 'Calls in flight (started, not yet completed), per target.',
    unit: '{call}',
    valueType: ValueType.INT,
  });
  const throttleRejected = meter.createObservableCounter('resilient_grpc.client.adaptive_throttling.rejected', {
    description:
      'Calls rejected locally by adaptive throttling, summed over the open channels of each target (targets with adaptiveThrottling only).',
    unit: '{call}',
    valueType: ValueType.INT,
  });
  const throttleProbability = meter.createObservableGauge('resilient_grpc.client.adaptive_throttling.reject_probability', {
    description:
      'Probability (0 to 1) that adaptive throttling rejects a new call now, the highest over the open channels of each target (targets with adaptiveThrottling only).',
    unit: '1',
    valueType: ValueType.DOUBLE,
  });
  const observables = [attemptStarted, throttled, budgetPaid, circuitState, inFlight, throttleRejected, throttleProbability];
  const observe = (result: Parameters<Parameters<typeof meter.addBatchObservableCallback>[0]>[0]): void => {
    for (const byMethod of byTarget.values()) {
      for (const entry of byMethod.values())
        if (entry.attemptsStarted > 0) result.observe(attemptStarted, entry.attemptsStarted, entry.grpc);
    }
    const stats = pool.stats();
    const perTarget = new Map<
      string,
      { throttled: number; budget: number; inFlight: number; adaptive: { rejected: number; p: number } | undefined }
    >();
    for (const channel of stats.perChannel) {
      const sums = perTarget.get(channel.target) ?? { throttled: 0, budget: 0, inFlight: 0, adaptive: undefined };
      sums.throttled += channel.throttledRetries;
      sums.budget += channel.budgetRetries;
      sums.inFlight += channel.inFlight;
      const throttle = channel.adaptiveThrottling;
      if (throttle !== undefined) {
        sums.adaptive ??= { rejected: 0, p: 0 };
        sums.adaptive.rejected += throttle.rejected;
        sums.adaptive.p = Math.max(sums.adaptive.p, throttle.rejectProbability);
      }
      perTarget.set(channel.target, sums);
      for (const breaker of channel.breakers) {
        for (const state of ['closed', 'open', 'half-open'] as const) {
          const attributes: Attributes = { 'grpc.target': canonicalTarget(channel.target), 'resilient_grpc.circuit.state': state };
          if (breaker.method !== undefined) attributes['grpc.method'] = breaker.method.replace(/^\//, '');
          result.observe(circuitState, breaker.state === state ? 1 : 0, attributes);
        }
      }
    }
    for (const [target, sums] of perTarget) {
      const attributes = { 'grpc.target': canonicalTarget(target) };
      result.observe(throttled, sums.throttled, attributes);
      result.observe(budgetPaid, sums.budget, attributes);
      result.observe(inFlight, sums.inFlight, attributes);
      if (sums.adaptive !== undefined) {
        result.observe(throttleRejected, sums.adaptive.rejected, attributes);
        result.observe(throttleProbability, sums.adaptive.p, attributes);
      }
    }
  };
  meter.addBatchObservableCallback(observe, observables);
  subscriptions.push(
    { dispose: () => meter.removeBatchObservableCallback(observe, observables), [Symbol.dispose]: () => {} },
    pool.onBreakerStateChange((change) => {
      if (change.state !== 'open') return;
      const attributes: Attributes = { 'grpc.target': canonicalTarget(change.target) };
      if (change.method !== undefined) attributes['grpc.method'] = change.method.replace(/^\//, '');
      circuitOpened.add(1, attributes);
    }),
    pool.onChannelReplaced((event) => replacements.add(1, { 'grpc.target': canonicalTarget(event.target) })),
  );
  const onEjection = pool.onEndpointEjection;
  if (onEjection !== undefined) {
    subscriptions.push(
      onEjection((event) => {
        if (event.ejected)
          ejections.add(1, { 'grpc.target': canonicalTarget(event.target), 'resilient_grpc.ejection.reason': event.reason });
      }),
    );
  }
  return instruments;
}

const SCHEMES = /^(dns|ipv4|ipv6|unix|unix-abstract|xds|vsock|google-c2p):/;

/**
 * gRFC A66's `grpc.target`: the target URI with its scheme (`dns:///host:port` when the target
 * had none; a scheme-qualified target as it is, a resolver plugin's `scheme://...` included).
 */
export function canonicalTarget(target: string): string {
  return SCHEMES.test(target) || /^[a-z][a-z0-9+.-]*:\/\//.test(target) ? target : `dns:///${target}`;
}

/**
 * `server.address` and `server.port` from a target, as the semantic conventions' gRPC page
 * says: host and port of `host:port` and `dns:[//authority/]host:port`; the socket path of
 * `unix:`; the whole target (and no port) otherwise.
 */
export function serverAddress(target: string): {
  /** `server.address`: the host, the socket path, or the whole target. */
  address: string;
  /** `server.port`, when the target has one. */
  port: number | undefined;
} {
  if (target.startsWith('unix:')) return { address: target.replace(/^unix:(\/\/)?/, ''), port: undefined };
  let rest = target;
  if (rest.startsWith('dns:')) {
    rest = rest.slice(4);
    if (rest.startsWith('//')) rest = rest.slice(rest.indexOf('/', 2) + 1);
  } else if (SCHEMES.test(rest)) {
    return { address: target, port: undefined };
  }
  const hostPort = peerAddress(rest);
  return hostPort.address === '' ? { address: target, port: undefined } : hostPort;
}

/** `host:port`, `[v6]:port` or `host` to its parts. */
function peerAddress(peer: string): { address: string; port: number | undefined } {
  const v6 = /^\[([^\]]+)\](?::(\d+))?$/.exec(peer);
  if (v6 !== null) return { address: v6[1]!, port: v6[2] === undefined ? undefined : Number(v6[2]) };
  const colon = peer.lastIndexOf(':');
  if (colon > 0 && peer.indexOf(':') === colon && /^\d+$/.test(peer.slice(colon + 1)))
    return { address: peer.slice(0, colon), port: Number(peer.slice(colon + 1)) };
  return { address: peer, port: undefined };
}
