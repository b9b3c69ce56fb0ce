import { grpcOwnsRetries } from '../channel/service-config.js';
import type { HedgingOptions } from '../config/hedging-options.js';
import type { ChannelCredentials, ChannelOptions } from '@grpc/grpc-js';
import { channelOptionsKey, sameCredentials } from './channel-key.js';
import { CallEvents } from '../events/call-events.js';
import { BucketRotation, type BreakerStateChange } from '../channel/circuit-breaker.js';
import { EventSource } from '../events/events.js';
import { grpcChannelFactory, ManagedChannel, type ChannelContext, type ChannelFactory } from '../channel/managed-channel.js';
import type { BreakerOptions } from '../config/breaker-options.js';
import { resolveEjection, type EndpointEjectionOptions } from '../config/ejection-options.js';
import type { ResolvedPolicy } from '../config/policy.js';
import type { ResolvedPoolOptions } from '../config/pool-options.js';
import type { EjectionSettings, EndpointEjection } from '../channel/endpoint-ejection.js';
import type { EndpointHealthChange } from '../channel/health-check.js';
import { resolveHealthCheck, type HealthCheckOptions, type HealthCheckSettings } from '../config/health-check-options.js';
import { resolveAdaptiveThrottling, type AdaptiveThrottlingOptions } from '../config/adaptive-throttling-options.js';
import type { AdaptiveThrottleSettings, AdaptiveThrottlingChange } from '../channel/adaptive-throttle.js';
import type { CloseResult, PoolState, PoolStats } from './pool-stats.js';
import type { ChannelReplaced, ChannelStateChange } from '../channel/channel-stats.js';
import type { RetryEvent } from '../call/retry-event.js';
import { withRefreshingDns } from '../channel/refreshing-resolver.js';
import { DefaultCredentials, type ParsedTarget } from '../channel/target.js';
import { checkCloseOptions } from '../config/close-options.js';
import { optionError } from '../core/option-error.js';
import { withDefined } from '../config/check-helpers.js';

// Channels sharing target and options but not credentials are kept apart; above this many in
// one bucket the caller is almost certainly creating credentials per call (grpc-node #1756).
const CREDENTIALS_WARNING_THRESHOLD = 8;

/** The pool's settings: its options once validated, with the defaults applied (`poolSettings()`). */
export type PoolSettings = ResolvedPoolOptions<ChannelFactory>;

/**
 * The engine behind `ChannelPool`: the channel map, the events and the close() state machine.
 * `close()` is idempotent and concurrent callers share one completion; calls after it began are
 * refused; each channel drains its own calls (the grace period, then cancellation) and is
 * closed; then every timer and listener of ours is gone.
 */
export class PoolEngine {
  #state: PoolState = 'open';
  readonly #defaultCredentials = new DefaultCredentials();
  /** Channel options key (target and options) to the channels under it, one per credentials. */
  readonly #buckets = new Map<string, ManagedChannel[]>();
  #channelsCreated = 0;
  #channelsClosed = 0;
  #closing: Promise<CloseResult> | undefined;
  #warnedCredentials = false;
  readonly #closeHooks = new Set<() => void>();
  readonly onRetry = new EventSource<RetryEvent>('onRetry');
  readonly onBreakerStateChange = new EventSource<BreakerStateChange>('onBreakerStateChange');
  readonly onChannelStateChange = new EventSource<ChannelStateChange>('onChannelStateChange');
  readonly onChannelReplaced = new EventSource<ChannelReplaced>('onChannelReplaced');
  readonly onEndpointEjection = new EventSource<EndpointEjection>('onEndpointEjection');
  readonly onEndpointHealth = new EventSource<EndpointHealthChange>('onEndpointHealth');
  readonly onAdaptiveThrottling = new EventSource<AdaptiveThrottlingChange>('onAdaptiveThrottling');
  readonly callEvents = new CallEvents();
  readonly #rotation = new BucketRotation();
  readonly #context: ChannelContext;
  readonly policy: ResolvedPolicy;
  readonly breakerOptions: BreakerOptions | false;
  /** The pool's `hedging` option (clients and methods merge over it). */
  readonly hedgingOptions: HedgingOptions | false;
  readonly ejectionOptions: EndpointEjectionOptions | false;
  /** The pool's `adaptiveThrottling` (a client's is merged over it). */
  readonly adaptiveThrottling: AdaptiveThrottlingOptions | false;
  readonly #channelOptions: ChannelOptions;

  constructor(settings: PoolSettings) {
    this.policy = settings.policy;
    this.breakerOptions = settings.breakerOptions;
    this.hedgingOptions = settings.hedging;
    this.ejectionOptions = settings.ejectionOptions;
    this.adaptiveThrottling = settings.adaptiveThrottling ?? false;
    this.#channelOptions = settings.channelOptions;
    this.#context = {
      throttling: settings.throttling,
      budget: settings.budget,
      connectTimeoutMs: settings.connectTimeoutMs,
      stallTimeoutMs: settings.stallTimeoutMs,
      rotation: this.#rotation,
      // Fake factories (unit tests) get the targets as they are.
      factory: settings.factory ?? withRefreshingDns(grpcChannelFactory, settings.dnsRefreshMs ?? false),
      onChannelStateChange: this.onChannelStateChange,
      onChannelReplaced: this.onChannelReplaced,
      onBreakerStateChange: this.onBreakerStateChange,
      onEndpointEjection: this.onEndpointEjection,
      onEndpointHealth: this.onEndpointHealth,
      onAdaptiveThrottling: this.onAdaptiveThrottling,
    };
  }

  get state(): PoolState {
    return this.#state;
  }

  get isOpen(): boolean {
    return this.#state === 'open';
  }

  /**
   * The channel for a target, credentials (the target's default when undefined), channel
   * options (merged over the pool's), endpoint ejection settings and the client's `healthCheck`
   * (over the service config's `healthCheckConfig`), created on first use. Never re-created
   * because a call failed.
   * @throws TypeError naming the option for a malformed `healthCheckConfig` in the service config.
   */
  /** Whether grpc-js would own retries (and hedging) on the channel `channelFor` gives these arguments (service-config.ts). */
  grpcOwnsRetriesOn(target: ParsedTarget, channelOptions: ChannelOptions | undefined): boolean {
    return grpcOwnsRetries(target.target, withDefined(this.#channelOptions, channelOptions ?? {}));
  }

  channelFor(
    target: ParsedTarget,
    credentials: ChannelCredentials | undefined,
    channelOptions: ChannelOptions | undefined,
    ejection: EjectionSettings | false = resolveEjection(this.ejectionOptions),
    healthCheck?: HealthCheckOptions | false,
    adaptive: AdaptiveThrottleSettings | false = resolveAdaptiveThrottling(this.adaptiveThrottling),
  ): ManagedChannel {
    const creds = credentials ?? this.#defaultCredentials.for(target);
    const options = withDefined(this.#channelOptions, channelOptions ?? {});
    const health = resolveHealthCheck(healthCheck, options['grpc.service_config']);
    const key = `${channelOptionsKey(target.target, options)}\n${JSON.stringify(ejection)}\n${JSON.stringify(health)}\n${JSON.stringify(adaptive)}`;
    const bucket = this.#buckets.get(key) ?? [];
    for (const channel of bucket) {
      if (sameCredentials(channel.credentials, creds)) return channel;
    }
    const channel = this.#newChannel(target.target, creds, options, ejection, health, adaptive);
    bucket.push(channel);
    this.#buckets.set(key, bucket);
    this.#channelsCreated++;
    if (bucket.length > CREDENTIALS_WARNING_THRESHOLD && !this.#warnedCredentials) {
      this.#warnedCredentials = true;
      process.emitWarning(
        `${bucket.length} channels to ${target.target} differ only by their credentials objects. ` +
          'Create channel credentials once and reuse them: each distinct TLS credentials object gets its own channel and connection.',
        { code: 'RESILIENT_GRPC_CREDENTIALS_PER_CALL', type: 'ResilientGrpcWarning' },
      );
    }
    return channel;
  }

  #newChannel(
    target: string,
    credentials: ChannelCredentials,
    options: ChannelOptions,
    ejection: EjectionSettings | false,
    health: HealthCheckSettings | false,
    adaptive: AdaptiveThrottleSettings | false,
  ): ManagedChannel {
    try {
      return new ManagedChannel(target, credentials, options, this.#context, ejection, health, adaptive);
    } catch (error) {
      // grpc-js validates the service config when it makes the channel, with a plain Error
      // ("Invalid service config: ...", "Invalid method config: ...", "Invalid retryPolicy ...").
      if (error instanceof Error && options['grpc.service_config'] !== undefined && /config|policy|throttling/i.test(error.message)) {
        throw Object.assign(
          optionError(
            'type',
            'channelOptions["grpc.service_config"]',
            `a service config grpc-js accepts (${error.message})`,
            undefined,
            'an invalid one',
          ),
          { cause: error },
        );
      }
      throw error;
    }
  }

  *#channels(): Iterable<ManagedChannel> {
    for (const bucket of this.#buckets.values()) yield* bucket;
  }

  /** Runs `hook` once when the pool has closed; returns a function that removes it. */
  onClosed(hook: () => void): () => void {
    this.#closeHooks.add(hook);
    return () => this.#closeHooks.delete(hook);
  }

  stats(): PoolStats {
    const perChannel = [...this.#channels()].map((channel) => channel.snapshot());
    return {
      state: this.#state,
      channels: perChannel.length,
      channelsCreated: this.#channelsCreated,
      channelsClosed: this.#channelsClosed,
      inFlight: perChannel.reduce((sum, channel) => sum + channel.inFlight, 0),
      perChannel,
    };
  }

  close(options: unknown): Promise<CloseResult> {
    if (this.#closing !== undefined) return this.#closing;
    let graceMs: number;
    try {
      ({ graceMs } = checkCloseOptions(options));
    } catch (error) {
      // A bad option does not start closing: the pool stays open and usable.
      return Promise.reject(error);
    }
    this.#state = 'closing';
    this.#closing = this.#shutdown(graceMs);
    return this.#closing;
  }

  async #shutdown(graceMs: number): Promise<CloseResult> {
    const startedAt = performance.now();
    const channels = [...this.#channels()];
    const results = await Promise.all(channels.map((channel) => channel.drain(graceMs)));
    for (const channel of channels) {
      channel.close();
      this.#channelsClosed++;
    }
    this.#buckets.clear();
    this.#rotation.close();
    this.#state = 'closed';
    for (const hook of this.#closeHooks) hook();
    this.#closeHooks.clear();
    for (const source of [
      this.onRetry,
      this.onBreakerStateChange,
      this.onChannelStateChange,
      this.onChannelReplaced,
      this.onEndpointEjection,
      this.onEndpointHealth,
      this.onAdaptiveThrottling,
    ])
      source.clear();
    this.callEvents.clear();
    let drained = 0;
    let cancelled = 0;
    for (const result of results) {
      drained += result.drained;
      cancelled += result.cancelled;
    }
    return { drained, cancelled, durationMs: performance.now() - startedAt };
  }
}
