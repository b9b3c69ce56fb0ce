import { checkHedgingOptions, type HedgingOptions } from './hedging-options.js';
import type { ChannelOptions } from '@grpc/grpc-js';
import { checkBreakerOptions, type BreakerOptions } from './breaker-options.js';
import { checkChannelOptions, POOL_CHANNEL_DEFAULTS } from './channel-options.js';
import { checkMsOrFalse, checkOptionsObject, keysOf, withDefined, type Resolved } from './check-helpers.js';
import { checkEjectionOptions, type EndpointEjectionOptions } from './ejection-options.js';
import { checkAdaptiveThrottlingOptions, type AdaptiveThrottlingOptions } from './adaptive-throttling-options.js';
import { checkPolicy, mergePolicy, POLICY_DEFAULTS, POLICY_KEYS, type PolicyOptions, type ResolvedPolicy } from './policy.js';
import {
  BUDGET_DEFAULTS,
  checkBudgetOptions,
  checkThrottlingOptions,
  THROTTLE_DEFAULTS,
  type RetryBudgetOptions,
  type RetryThrottlingOptions,
} from './throttling-options.js';

// The options of `new ChannelPool(options)`: their type, their defaults, their check, and the
// pool's settings they resolve to.

/** Options of a {@link ChannelPool}: defaults for every client and channel it creates. */
export interface ChannelPoolOptions extends PolicyOptions {
  /**
   * grpc-js channel options applied to every channel of the pool (a client's own
   * `channelOptions` are merged over them, key by key). They are part of the channel's key:
   * clients with different channel options get different channels. Passed to grpc-js untouched,
   * except that `grpc.service_config_disable_resolution` defaults to 1, `grpc.keepalive_time_ms`
   * to 360000 (6 min) and `grpc.keepalive_timeout_ms` to 20000 (20 s) (see README, "Liveness";
   * `'grpc.keepalive_time_ms': -1` turns keepalive off). Default: `{}`.
   */
  channelOptions?: ChannelOptions | undefined;
  /**
   * Retry throttling per channel (gRFC A6), or `false` to turn it off. Default:
   * `{ maxTokens: 10, tokenRatio: 0.1 }`. See {@link RetryThrottlingOptions}.
   */
  retryThrottling?: RetryThrottlingOptions | false | undefined;
  /**
   * Retry budget per channel, beside `retryThrottling`: a share of the traffic that succeeds
   * (deposits of `retryPercent` % per successful call over `ttlMs`, a token per retry it pays for,
   * given back when the call then succeeds, and `minRetriesPerSec` on top while calls succeed).
   * It pays for the retries the token bucket refuses, so that one sick endpoint among healthy
   * ones cannot stop retries; `false` turns it off. Default:
   * `{ ttlMs: 10000, retryPercent: 20, minRetriesPerSec: 10 }`. See {@link RetryBudgetOptions}.
   */
  retryBudget?: RetryBudgetOptions | false | undefined;
  /**
   * Client-side adaptive throttling of first attempts, per channel (the SRE book's client-side
   * throttling): while a target's servers refuse most calls (RESOURCE_EXHAUSTED, UNAVAILABLE), a
   * share of new calls fails at once, locally, with a `StatusError` whose `throttled` is true
   * (code UNAVAILABLE), instead of adding to the overload. `{}` turns it on with
   * `{ acceptMultiplier: 2, requestPadding: 8, maxRejectPercent: 80, windowMs: 30000, bins: 100 }`;
   * a client may turn it on, off, or change fields for its channel. Default: `false` (off; see
   * the README, "Adaptive throttling"). See {@link AdaptiveThrottlingOptions}.
   */
  adaptiveThrottling?: AdaptiveThrottlingOptions | false | undefined;
  /**
   * Circuit breaking for every channel, or `false` for none. Default: on, with
   * `{ errorThresholdPercentage: 50, volumeThreshold: 20, windowMs: 10000, resetTimeoutMs: 10000,
   * scope: 'method' }`. See {@link BreakerOptions}.
   */
  breaker?: BreakerOptions | false | undefined;
  /**
   * Adaptive hedging for the idempotent unary and server-stream methods of every client, or
   * `false`. Default: `false` (off). See {@link HedgingOptions}.
   */
  hedging?: HedgingOptions | false | undefined;
  /**
   * Connect watchdog: a channel that stays CONNECTING longer than this many ms is replaced by a
   * fresh one (grpc-js has no connect timeout, grpc-node #2785). `false` turns it off.
   * Default: 20000 (the gRPC connection-backoff spec's MIN_CONNECT_TIMEOUT).
   */
  connectTimeoutMs?: number | false | undefined;
  /**
   * Endpoint ejection for multi-endpoint targets, or `false` for grpc-js's default LB
   * (pick_first). Default: on, see {@link EndpointEjectionOptions}.
   */
  endpointEjection?: EndpointEjectionOptions | false | undefined;
  /**
   * Stall detector, in ms: when a channel is READY, unary calls are waiting, and nothing at all
   * (headers, a message, a status) has come from the server for this long, the connection is
   * taken for silently dead (no FIN, no RST: a dropped NAT entry, a frozen VM) and the channel
   * is replaced by one on a new TCP connection, and the channel's open circuits probe at once
   * (reason 'connection-replaced'). On a channel that tracks several endpoints the same rule
   * applies per endpoint: the connection to an endpoint whose unary calls heard nothing from it
   * for this long is dropped (grpc-js reconnects) while the others serve. It sends no ping (the
   * pool's default keepalive, one ping per 6 minutes while calls are open, is for streams).
   * Streams are not watched (their response headers count as heard). A false alarm (the server
   * was only slow: its answer arrives on the replaced channel) costs one new connection, never a
   * call, and doubles the channel's (or endpoint's) timeout, up to 60 s. `false` turns both off.
   * Default: 5000 (5 s). See the README's "Liveness".
   */
  stallTimeoutMs?: number | false | undefined;
  /**
   * DNS re-resolution, in ms: channels to DNS targets (`host:port`, `dns:host:port`) ask DNS
   * again this often, so endpoints added behind a name get traffic within one interval and
   * removed ones are drained (grpc-js alone re-resolves only after a connection drops). Spread
   * calls over the endpoints with `round_robin`; `pick_first` stays on its endpoint while it is
   * in the answer. IP literals and other schemes (`ipv4:`, `unix:`, `xds:`) are not affected.
   * Intervals under 30 s also lower `grpc.dns_min_time_between_resolutions_ms` unless set.
   * `false` turns it off (grpc-js's own behaviour). Default: 30000 (30 s).
   */
  dnsRefreshMs?: number | false | undefined;
}

/** Defaults of the pool-wide options that are not part of the cascading policy (POLICY_DEFAULTS). */
export const POOL_DEFAULTS = {
  /** The pool's channel options; the user's are merged over them, key by key. */
  channelOptions: POOL_CHANNEL_DEFAULTS,
  retryThrottling: THROTTLE_DEFAULTS,
  retryBudget: BUDGET_DEFAULTS,
  /** Off: a pool or a client turns it on with an object (its fields over ADAPTIVE_THROTTLING_DEFAULTS). */
  adaptiveThrottling: false,
  /** On: each client's breaker options are resolved over BREAKER_DEFAULTS. */
  breaker: {},
  /** Off: opt-in per pool, client or method. */
  hedging: false,
  /** The connect watchdog: the gRPC connection-backoff spec's MIN_CONNECT_TIMEOUT. */
  connectTimeoutMs: 20_000,
  /** On: each client's ejection options are resolved over EJECTION_DEFAULTS. */
  endpointEjection: {},
  /** The stall detector (stall-detector.ts): silence on a READY channel while unary calls wait. */
  stallTimeoutMs: 5_000,
  /** DNS re-resolution (refreshing-resolver.ts); grpc-js's own minimum time between resolutions. */
  dnsRefreshMs: 30_000,
} as const satisfies Resolved<Omit<ChannelPoolOptions, keyof PolicyOptions>>;

/** The known keys of the pool's options: the policy's, then the pool's own. */
export const POOL_KEYS: ReadonlyArray<keyof ChannelPoolOptions> = [...POLICY_KEYS, ...keysOf(POOL_DEFAULTS)];

/**
 * The pool's options once validated, with the defaults applied. `Factory` is the type of the
 * channel factory, the pool layer's (pool/pool-engine.ts): the options never set one.
 */
export interface ResolvedPoolOptions<Factory = never> {
  policy: ResolvedPolicy;
  channelOptions: ChannelOptions;
  breakerOptions: BreakerOptions | false;
  hedging: HedgingOptions | false;
  ejectionOptions: EndpointEjectionOptions | false;
  throttling: Resolved<RetryThrottlingOptions> | false;
  budget: Resolved<RetryBudgetOptions> | false;
  /** `adaptiveThrottling` as the pool sets it (each client's is merged over it), or false. */
  adaptiveThrottling: AdaptiveThrottlingOptions | false;
  connectTimeoutMs: number | false;
  /** Stall detector timeout, or false. */
  stallTimeoutMs?: number | false;
  /** DNS re-resolution interval, or false. */
  dnsRefreshMs?: number | false;
  /** Makes the grpc-js channels; replaced by fake channels in unit tests. */
  factory?: Factory;
}

/** Validates the pool-wide options (not the policy, `retryThrottling` nor `retryBudget`: see poolSettings). */
export function checkPoolOptions(options: unknown): ChannelPoolOptions {
  checkOptionsObject('ChannelPoolOptions', options, POOL_KEYS);
  const opts = (options ?? {}) as ChannelPoolOptions;
  checkChannelOptions('channelOptions', opts.channelOptions);
  checkBreakerOptions('breaker', opts.breaker);
  checkHedgingOptions('hedging', opts.hedging);
  checkEjectionOptions('endpointEjection', opts.endpointEjection);
  checkAdaptiveThrottlingOptions('adaptiveThrottling', opts.adaptiveThrottling);
  checkMsOrFalse('connectTimeoutMs', opts.connectTimeoutMs);
  checkMsOrFalse('stallTimeoutMs', opts.stallTimeoutMs);
  checkMsOrFalse('dnsRefreshMs', opts.dnsRefreshMs);
  return opts;
}

/** Validates `new ChannelPool(options)` and applies the defaults; throws naming a bad option. */
export function poolSettings(options: unknown): ResolvedPoolOptions {
  const opts = checkPoolOptions(options);
  return {
    policy: mergePolicy(POLICY_DEFAULTS, checkPolicy('', opts)),
    channelOptions: withDefined(POOL_DEFAULTS.channelOptions, opts.channelOptions ?? {}),
    breakerOptions: opts.breaker ?? POOL_DEFAULTS.breaker,
    hedging: opts.hedging ?? POOL_DEFAULTS.hedging,
    ejectionOptions: opts.endpointEjection ?? POOL_DEFAULTS.endpointEjection,
    throttling: checkThrottlingOptions('retryThrottling', opts.retryThrottling),
    budget: checkBudgetOptions('retryBudget', opts.retryBudget),
    adaptiveThrottling: opts.adaptiveThrottling ?? POOL_DEFAULTS.adaptiveThrottling,
    connectTimeoutMs: opts.connectTimeoutMs ?? POOL_DEFAULTS.connectTimeoutMs,
    stallTimeoutMs: opts.stallTimeoutMs ?? POOL_DEFAULTS.stallTimeoutMs,
    dnsRefreshMs: opts.dnsRefreshMs ?? POOL_DEFAULTS.dnsRefreshMs,
  };
}
