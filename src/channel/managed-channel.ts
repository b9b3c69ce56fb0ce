// One channel of the pool and everything it owns. Over 300 lines on purpose: the mechanisms
// live in their own files (connect-watchdog.ts, stall-detector.ts, endpoint-liveness.ts,
// endpoint-ejection.ts, endpoint-lb.ts, health-check.ts, channel-breakers.ts, retry-throttle.ts,
// retry-budget.ts, adaptive-throttle.ts, releasing-credentials.ts, in-flight.ts); this file
// holds the channel's state and wires them to it, and each verb is a few lines.
import { Channel, Client, connectivityState, type ChannelCredentials, type ChannelOptions } from '@grpc/grpc-js';
import type { Breaker, BreakerStateChange, BucketRotation } from './circuit-breaker.js';
import { ChannelBreakers } from './channel-breakers.js';
import { ConnectWatchdog } from './connect-watchdog.js';
import { EndpointTracker, type EjectionSettings, type EndpointEjection } from './endpoint-ejection.js';
import { ownPolicyName, registerTracker, unregisterTracker, withPolicy } from './endpoint-lb.js';
import { registerHealthSink, unregisterHealthSink, type EndpointHealthChange } from './health-check.js';
import type { HealthCheckSettings } from '../config/health-check-options.js';
import { mayHaveSeveralEndpoints } from './target.js';
import type { EventSource } from '../events/events.js';
import type { BreakerOptions } from '../config/breaker-options.js';
import type { RetryBudgetOptions, RetryThrottlingOptions } from '../config/throttling-options.js';
import { dropSockets, LIVENESS_OPTION, releasingCredentials } from './releasing-credentials.js';
import { EndpointLiveness } from './endpoint-liveness.js';
import { grpcOwnsRetries } from './service-config.js';
import { RetryBudget } from './retry-budget.js';
import { RetryThrottle } from './retry-throttle.js';
import { AdaptiveThrottle, throttleVerdict, type AdaptiveThrottleSettings, type AdaptiveThrottlingChange } from './adaptive-throttle.js';
import { StallDetector, type Watch } from './stall-detector.js';
import { InFlightCalls, type InFlight } from './in-flight.js';
import type { ChannelReplaced, ChannelState, ChannelStateChange, ChannelStats } from './channel-stats.js';
import type { Resolved } from '../config/check-helpers.js';

const STATE_NAMES: Record<connectivityState, ChannelState> = {
  [connectivityState.IDLE]: 'idle',
  [connectivityState.CONNECTING]: 'connecting',
  [connectivityState.READY]: 'ready',
  [connectivityState.TRANSIENT_FAILURE]: 'transient-failure',
  [connectivityState.SHUTDOWN]: 'shutdown',
};

/** The part of a grpc-js `Channel` a managed channel uses: the seam for fake channels in unit tests. */
export interface ChannelLike {
  getTarget(): string;
  getConnectivityState(tryToConnect: boolean): connectivityState;
  watchConnectivityState(current: connectivityState, deadline: Date | number, callback: (error?: Error) => void): void;
  close(): void;
}

/** Makes the grpc-js channel of a key, and the one `Client` that makes calls on it. */
export type ChannelFactory = (
  target: string,
  credentials: ChannelCredentials,
  options: ChannelOptions,
) => { channel: ChannelLike; client: Client };

/** The real factory: a grpc-js `Channel` and a `Client` over it (`channelOverride`). */
export const grpcChannelFactory: ChannelFactory = (target, credentials, options) => {
  const channel = new Channel(target, credentials, options);
  return { channel, client: new Client(target, credentials, { channelOverride: channel }) };
};

/** What every channel of a pool shares. */
export interface ChannelContext {
  throttling: Resolved<RetryThrottlingOptions> | false;
  /** The retry budget beside the throttling bucket (retry-budget.ts), or false; unset: none. */
  budget?: Resolved<RetryBudgetOptions> | false | undefined;
  /** Connect watchdog limit in ms, or false. */
  connectTimeoutMs: number | false;
  rotation: BucketRotation;
  factory: ChannelFactory;
  /** Stall detector timeout in ms (see stall-detector.ts), or false / undefined for none. */
  stallTimeoutMs?: number | false | undefined;
  onChannelStateChange: EventSource<ChannelStateChange>;
  onChannelReplaced: EventSource<ChannelReplaced>;
  onBreakerStateChange: EventSource<BreakerStateChange>;
  onEndpointEjection: EventSource<EndpointEjection>;
  onEndpointHealth: EventSource<EndpointHealthChange>;
  /** Where a channel's adaptive throttle reports starting and stopping to shed; unset: nowhere. */
  onAdaptiveThrottling?: EventSource<AdaptiveThrottlingChange> | undefined;
}

/**
 * One channel owned by the pool: the grpc-js channel, the single grpc-js `Client` that makes
 * calls on it (through `channelOverride`), its calls in flight, its breakers, its
 * retry-throttling bucket and retry budget, a watch on its connectivity (for events and the connect watchdog),
 * and the figures `stats()` reports. Calls report to it through verbs; closing it drains its
 * own calls. The pool never calls `Client.close()`: it would close the shared channel (grpc-js
 * closes an overriding channel too).
 */
export class ManagedChannel {
  #channel: ChannelLike;
  #client: Client;
  /** Bumped each time the watchdog replaces the grpc-js channel. */
  #generation = 0;
  readonly #inFlight = new InFlightCalls();
  readonly #throttle: RetryThrottle | undefined;
  /** The retry budget: pays for the retries the bucket refuses; only with a bucket (no bucket, no limit). */
  readonly #budget: RetryBudget | undefined;
  /** Client-side adaptive throttling of first attempts (adaptive-throttle.ts), when `adaptiveThrottling` is on. */
  readonly #adaptive: AdaptiveThrottle | undefined;
  readonly grpcOwnsRetries: boolean;
  readonly #breakers: ChannelBreakers;
  readonly #watchdog: ConnectWatchdog | undefined;
  readonly #stall: StallDetector | undefined;
  /** Per-endpoint liveness (endpoint-liveness.ts), for a channel that tracks its endpoints. */
  readonly #endpointLiveness: EndpointLiveness | undefined;
  /** What grpc-js gets: the credentials, wrapped to release unanswered sockets when possible. */
  readonly #wireCredentials: ChannelCredentials;
  #retries = 0;
  #throttledRetries = 0;
  #budgetRetries = 0;
  #hedges = 0;
  #hedgesWon = 0;
  #state: ChannelState = 'idle';
  #closed = false;
  readonly #grpcTarget: string;
  /** The endpoint ejection books, for a channel that can have several endpoints. */
  readonly #endpoints: EndpointTracker | undefined;
  readonly #trackerId: number | undefined;
  /** The sink the policy's health checks report to (health-check.ts), when health checking is on. */
  readonly #healthSinkId: number | undefined;
  /** The options handed to grpc-js: the user's, with the pool's LB policy when it tracks endpoints. */
  #grpcOptions: ChannelOptions;

  constructor(
    readonly target: string,
    readonly credentials: ChannelCredentials,
    readonly options: ChannelOptions,
    readonly context: ChannelContext,
    ejection: EjectionSettings | false = false,
    health: HealthCheckSettings | false = false,
    adaptive: AdaptiveThrottleSettings | false = false,
  ) {
    const { throttling, connectTimeoutMs } = context;
    // The package's policy takes a channel that can have several endpoints (for ejection), and
    // any channel that health-checks: a single endpoint's NOT_SERVING then fails its calls fast
    // (UNAVAILABLE) instead of sending them to a server that said it cannot serve them.
    const several = mayHaveSeveralEndpoints(target);
    if ((ejection !== false && several) || health !== false) {
      // Endpoint books only where there can be several endpoints (as without health checking): a
      // single endpoint has nowhere else to go, and its liveness is the stall detector's.
      if (ejection !== false && several) {
        this.#endpoints = new EndpointTracker(target, ejection, (change) => context.onEndpointEjection.emit(change));
        this.#trackerId = registerTracker(this.#endpoints);
      }
      if (health !== false) this.#healthSinkId = registerHealthSink(this.#healthSink(health.serviceName));
      const policyHealth = health === false ? undefined : { serviceName: health.serviceName, sink: this.#healthSinkId };
      this.#grpcOptions = withPolicy(options, this.#trackerId, policyHealth);
      // The user's own pick_first sticks to one endpoint: ejection has nowhere to send the calls.
      if (this.#endpoints !== undefined && ownPolicyName(options) === 'pick_first') {
        process.emitWarning(
          `the loadBalancingConfig of ${target} is pick_first: it sends every call to one endpoint, so endpoint ejection cannot ` +
            'take a failing endpoint out of rotation. Leave loadBalancingConfig out (the pool picks the least loaded endpoint) or use round_robin.',
          { code: 'RESILIENT_GRPC_PICK_FIRST', type: 'ResilientGrpcWarning' },
        );
      }
    } else {
      this.#grpcOptions = options;
    }
    this.#throttle = throttling === false ? undefined : new RetryThrottle(throttling.maxTokens, throttling.tokenRatio);
    const { budget } = context;
    this.#budget = this.#throttle === undefined || budget === false || budget === undefined ? undefined : new RetryBudget(budget);
    const onThrottle = context.onAdaptiveThrottling;
    this.#adaptive =
      adaptive === false
        ? undefined
        : new AdaptiveThrottle(adaptive, onThrottle === undefined ? undefined : (change) => onThrottle.emit({ target, ...change }));
    this.#breakers = new ChannelBreakers(context.rotation, (change) => context.onBreakerStateChange.emit({ target, ...change }));
    this.grpcOwnsRetries = grpcOwnsRetries(target, options);
    const releasing = releasingCredentials(credentials);
    this.#wireCredentials = releasing ?? credentials;
    const { stallTimeoutMs } = context;
    this.#stall =
      stallTimeoutMs === false || stallTimeoutMs === undefined
        ? undefined
        : new StallDetector(stallTimeoutMs, (ms) => this.#replace('stalled', ms));
    // Per-endpoint liveness needs the endpoint of each attempt (the tracker's picker) and the
    // sockets of the channel (the releasing credentials file them under the liveness id).
    const trackerId = this.#trackerId;
    const endpoints = this.#endpoints;
    if (this.#stall !== undefined && trackerId !== undefined && endpoints !== undefined && releasing !== undefined) {
      this.#grpcOptions = { ...this.#grpcOptions, [LIVENESS_OPTION]: trackerId };
      this.#endpointLiveness = new EndpointLiveness(
        this.#stall.baseMs,
        (address) => dropSockets(trackerId, address),
        (drop) =>
          context.onChannelReplaced.emit({
            target,
            reason: 'endpoint-stalled',
            address: drop.address,
            silentMs: drop.silentMs,
            stallTimeoutMs: drop.stallTimeoutMs,
            replacements: this.#generation,
          }),
        (address) => endpoints.heard(address, Date.now()),
      );
    }
    this.#stall?.newChannel(false);
    ({ channel: this.#channel, client: this.#client } = context.factory(target, this.#wireCredentials, this.#grpcOptions));
    this.#grpcTarget = this.#channel.getTarget();
    this.#watchdog =
      connectTimeoutMs === false
        ? undefined
        : new ConnectWatchdog(connectTimeoutMs, (ms) => this.#replace('connect-timeout', ms), undefined, releasing === undefined);
    this.#watch(this.#channel);
  }

  /** The client that makes calls on the current grpc-js channel. */
  get client(): Client {
    return this.#client;
  }

  /** The target as grpc-js writes it (`dns:host:port`): an attempt's peer until it has a stream. */
  get grpcTarget(): string {
    return this.#grpcTarget;
  }

  /** The endpoint ejection books of a channel that can have several endpoints; undefined otherwise. */
  get endpoints(): EndpointTracker | undefined {
    return this.#endpoints;
  }

  /** Changes each time the grpc-js channel is replaced: an attempt notes it, to tell later whether its channel went away. */
  get generation(): number {
    return this.#generation;
  }

  /** Per-endpoint liveness, which unary attempts on a channel that tracks its endpoints report to; undefined when off. */
  get endpointLiveness(): EndpointLiveness | undefined {
    return this.#endpointLiveness;
  }

  /** The stall detector's watch of the current grpc-js channel, which its calls report to; undefined when off. */
  get liveness(): Watch | undefined {
    return this.#stall?.watch;
  }

  get inFlight(): number {
    return this.#inFlight.size;
  }

  // ---- calls ----

  /**
   * Whether a call's first attempt may go, by the channel's adaptive throttle: false when the
   * throttle rejects it locally (it is counted there, and nowhere else). Always true when
   * `adaptiveThrottling` is off.
   */
  admitsFirstAttempt(): boolean {
    return this.#adaptive === undefined || this.#adaptive.admits();
  }

  /**
   * Whether the channel's adaptive throttle is shedding load now (false when it is off): for
   * strategies that add load of their own (hedged attempts), which should not while it is.
   */
  get isShedding(): boolean {
    return this.#adaptive?.isShedding === true;
  }

  /**
   * An attempt failed with status `code` (`ours`: a failure of our own making, see
   * `throttleVerdict`): the adaptive throttle counts it as an accept, an overload refusal, or not.
   */
  attemptFailed(code: number, ours: boolean): void {
    if (this.#adaptive === undefined) return;
    const verdict = throttleVerdict(code, ours);
    if (verdict !== 'ignore') this.#adaptive.record(verdict === 'accept');
  }

  /** A call started on this channel: counted, and tracked so that closing drains or cancels it. */
  track(call: InFlight): void {
    this.#inFlight.track(call);
  }

  /** A tracked call settled, with a response (`ok`) or not. */
  settle(call: InFlight, ok: boolean): void {
    this.#inFlight.settle(call, ok);
  }

  /**
   * A call's attempt succeeded: it adds `tokenRatio` to the retry bucket (gRFC A6), and the tokens
   * the call's earlier failed attempts took (`refund`) come back: their retry did its job. Without
   * the refund, one sick endpoint among healthy ones drains the bucket within a second while
   * every call still succeeds on its retry elsewhere; under a total outage nothing succeeds, so
   * the bucket drains as A6 intends. The success deposits in the retry budget too, and when the
   * attempt was a retry the budget paid for (`paidByBudget`), its token comes back.
   */
  attemptSucceeded(refund = 0, paidByBudget = false): void {
    this.#adaptive?.record(true);
    this.#throttle?.onSuccess();
    if (refund > 0) this.#throttle?.refund(refund);
    if (this.#budget !== undefined) {
      this.#budget.deposit();
      if (paidByBudget) this.#budget.refund(1);
    }
  }

  /**
   * An attempt failed with a status its call could retry: it takes a retry token (gRFC A6). When
   * it was a retry the budget paid for (`paidByBudget`), the budget counts it as a failed retry.
   */
  attemptFailedRetryably(paidByBudget = false): void {
    this.#throttle?.onRetryableFailure();
    if (paidByBudget) this.#budget?.retryFailed();
  }

  /**
   * Whether a retry may start now: no throttling, or the bucket (gRFC A6) allows it, or the retry
   * budget holds a token for it. The bucket alone is what a fresh channel and a total outage have;
   * the budget is what keeps retries going at a high rate while calls succeed (retry-budget.ts).
   */
  get allowsRetry(): boolean {
    return this.#throttle === undefined || this.#throttle.allowsRetry || this.#budget?.canRetry() === true;
  }

  /** Whether retry throttling refuses a retry now; a refusal is counted for stats(). */
  retryThrottled(): boolean {
    if (this.allowsRetry) return false;
    this.#throttledRetries++;
    return true;
  }

  /**
   * A retry was decided (`allowsRetry` held): when the bucket does not allow it, the budget pays
   * a token for it. Returns whether the budget paid, so that the call reports how that retry ends
   * (`attemptSucceeded`, `attemptFailedRetryably`).
   */
  retryAdmitted(): boolean {
    if (this.#throttle === undefined || this.#throttle.allowsRetry || this.#budget === undefined) return false;
    if (!this.#budget.withdraw()) return false;
    this.#budgetRetries++;
    return true;
  }

  /** A retry is about to start (after its backoff). */
  retryStarted(): void {
    this.#retries++;
  }

  /** A hedge went out (hedging.ts decided, the budgets paid). */
  hedgeSent(): void {
    this.#hedges++;
  }

  /** A hedge's response came first and committed its call. */
  hedgeWon(): void {
    this.#hedgesWon++;
  }

  /**
   * The breaker for a method under these options (the channel's, or with `scope: 'method'` the
   * method's own), made on first use; see channel-breakers.ts. `key` is `breakerKey(method,
   * options)`, computed once by the caller.
   */
  breakerFor(key: string, method: string, options: Resolved<BreakerOptions>): Breaker {
    return this.#breakers.get(key, method, options);
  }

  snapshot(): ChannelStats {
    return {
      target: this.target,
      state: this.state(),
      secure: this.credentials._isSecure(),
      inFlight: this.#inFlight.size,
      started: this.#inFlight.started,
      succeeded: this.#inFlight.succeeded,
      failed: this.#inFlight.failed,
      retries: this.#retries,
      throttledRetries: this.#throttledRetries,
      retryTokens: this.#throttle?.tokens,
      budgetRetries: this.#budgetRetries,
      hedges: this.#hedges,
      hedgesWon: this.#hedgesWon,
      retryBudget: this.#budget?.balance,
      adaptiveThrottling: this.#adaptive?.stats(),
      grpcOwnsRetries: this.grpcOwnsRetries,
      breakers: this.#breakers.stats(),
      replacements: this.#generation,
      endpoints: this.#endpoints?.stats() ?? [],
      stalls: this.#stall?.stalls ?? 0,
      falseStalls: this.#stall?.falseAlarms ?? 0,
      endpointStalls: this.#endpointLiveness?.drops ?? 0,
    };
  }

  state(): ChannelState {
    return STATE_NAMES[this.#channel.getConnectivityState(false)];
  }

  // ---- closing ----

  /** Drains the channel's calls (see in-flight.ts). */
  drain(graceMs: number): Promise<{ drained: number; cancelled: number }> {
    return this.#inFlight.drain(graceMs);
  }

  /** Closes the grpc-js channel, the breakers and the watchdog. Call after `drain()`. */
  close(): void {
    this.#closed = true;
    this.#watchdog?.stop();
    this.#stall?.stop();
    this.#endpointLiveness?.stop();
    this.#breakers.close();
    if (this.#trackerId !== undefined) unregisterTracker(this.#trackerId);
    // Closing the grpc-js channel destroys its policy, which cancels every health stream.
    if (this.#healthSinkId !== undefined) unregisterHealthSink(this.#healthSinkId);
    this.#channel.close();
  }

  // ---- health checking ----

  /**
   * Where the policy's health checks report: the endpoint books learn whether each endpoint
   * serves, and `onEndpointHealth` hears each change of what an endpoint said, once per status
   * (a reconnection that finds the same status is no news). A server without the health service
   * is reported once per channel, however many endpoints and reconnections say so: it is a
   * warning about the deployment, not news about an endpoint.
   */
  #healthSink(serviceName: string): { report(change: Omit<EndpointHealthChange, 'target'>): void } {
    const said = new Map<string, EndpointHealthChange['status']>();
    let warnedUnimplemented = false;
    return {
      report: (change) => {
        if (this.#closed) return;
        this.#endpoints?.setServing(change.address, change.serving);
        if (change.status === 'UNIMPLEMENTED') {
          if (warnedUnimplemented) return;
          warnedUnimplemented = true;
        } else if (said.get(change.address) === change.status) {
          return;
        }
        said.set(change.address, change.status);
        const event: EndpointHealthChange = {
          target: this.target,
          address: change.address,
          serviceName,
          status: change.status,
          serving: change.serving,
        };
        if (change.code !== undefined) event.code = change.code;
        this.context.onEndpointHealth.emit(event);
      },
    };
  }

  // ---- connectivity ----

  /**
   * Follows the channel's connectivity (grpc-js's watch has no timer with an infinite deadline)
   * for the state events and the watchdog, until the channel is closed or replaced.
   */
  #watch(channel: ChannelLike): void {
    if (this.#closed || channel !== this.#channel) return;
    const raw = channel.getConnectivityState(false);
    if (raw === connectivityState.SHUTDOWN) return;
    this.#onState(STATE_NAMES[raw]);
    channel.watchConnectivityState(raw, Number.POSITIVE_INFINITY, () => this.#watch(channel));
  }

  #onState(state: ChannelState): void {
    const previous = this.#state;
    if (state === previous) return;
    this.#state = state;
    this.context.onChannelStateChange.emit({ target: this.target, previous, state });
    this.#watchdog?.onState(state === 'connecting');
    this.#stall?.onState(state === 'ready');
    if (state === 'ready') this.#watchdog?.connected();
  }

  /**
   * The watchdog found the channel stuck CONNECTING: it is replaced by a fresh one with the
   * same target, credentials and options, and the stuck one is closed (its queued calls fail
   * UNAVAILABLE and may be retried on the new one). The new channel uses a local subchannel
   * pool: with the global one, grpc-js could hand it the same stuck subchannel. This is the only
   * case in which the pool re-creates a channel, with one other: the stall detector found the
   * channel READY but silent (`reason` 'stalled', `ms` how long; see stall-detector.ts), and
   * the local subchannel pool gives the new channel a new TCP connection in the same way.
   */
  #replace(reason: 'connect-timeout' | 'stalled', ms: number): void {
    if (this.#closed || this.#state !== (reason === 'stalled' ? 'ready' : 'connecting')) return;
    const stuck = this.#channel;
    const options = { ...this.#grpcOptions, 'grpc.use_local_subchannel_pool': 1 };
    this.#stall?.newChannel(reason === 'stalled');
    ({ channel: this.#channel, client: this.#client } = this.context.factory(this.target, this.#wireCredentials, options));
    this.#generation++;
    stuck.close();
    const replacements = this.#generation;
    this.context.onChannelReplaced.emit(
      reason === 'stalled'
        ? { target: this.target, reason, silentMs: ms, stallTimeoutMs: this.#stall!.stallMs, replacements }
        : { target: this.target, reason, connectingMs: ms, replacements },
    );
    this.#watch(this.#channel);
    // The circuits that opened on this silence would refuse calls the new connection can take.
    if (reason === 'stalled') this.#breakers.probeNow();
  }
}
