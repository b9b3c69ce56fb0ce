import type { BreakerStats } from './circuit-breaker.js';
import type { EndpointStats } from './endpoint-ejection.js';
import type { AdaptiveThrottlingStats } from './adaptive-throttle.js';

// One channel's public figures and events: its stats() entry, its connectivity, its replacements.

/** Connectivity state of a channel, as grpc-js reports it, in lower-kebab case. */
export type ChannelState = 'idle' | 'connecting' | 'ready' | 'transient-failure' | 'shutdown';

/** Per-channel figures in a {@link PoolStats} snapshot. */
export interface ChannelStats {
  /** The target handed to grpc-js. */
  target: string;
  /**
   * Connectivity state, read with `getConnectivityState(false)`: reading it never starts a
   * connection. A channel is not a TCP connection: an idle channel has none, a channel to a
   * multi-address target may have several.
   */
  state: ChannelState;
  /** Whether the channel's credentials are secure (TLS). */
  secure: boolean;
  /** Calls started on this channel and not yet settled. */
  inFlight: number;
  /** Calls started on this channel (each call once, however many attempts it made). */
  started: number;
  /** Calls that settled with a response. */
  succeeded: number;
  /** Calls that settled with an error (status, abort, cancellation or open circuit). */
  failed: number;
  /** Retries started (attempts after the first). */
  retries: number;
  /** Retries the policy allowed but retry throttling refused (the bucket, and the budget after it). */
  throttledRetries: number;
  /** Tokens in the channel's retry-throttling bucket; undefined when throttling is off. */
  retryTokens: number | undefined;
  /** Retries the retry budget paid for (those the token bucket alone would have refused). */
  budgetRetries: number;
  /** Hedges sent (`hedging`): attempts that raced a first attempt still out. Not counted in `retries`. */
  hedges: number;
  /** Hedges whose response came first and committed their call (the first attempt was cancelled). */
  hedgesWon: number;
  /**
   * Tokens in the channel's retry budget (`retryBudget`), its reserve included while that counts;
   * may be negative. Undefined when the budget or throttling is off.
   */
  retryBudget: number | undefined;
  /**
   * The channel's adaptive throttle (`adaptiveThrottling`): its reject probability now, the
   * requests and accepts in its window, the calls it rejected locally so far, and whether it is
   * shedding. Undefined when `adaptiveThrottling` is off for the channel.
   */
  adaptiveThrottling: AdaptiveThrottlingStats | undefined;
  /**
   * grpc-js owns retries on this channel, and ours are off: an `xds:` target (the mesh's route
   * retry policies), or a service config with a retry or hedging policy; false when the channel
   * options set `grpc.enable_retries: 0` (grpc-js retries nothing, the pool owns retries).
   */
  grpcOwnsRetries: boolean;
  /** The channel's circuit breakers: one, or one per method with `scope: 'method'`. */
  breakers: BreakerStats[];
  /**
   * Times the grpc-js channel was replaced: by the connect watchdog (it stayed CONNECTING too
   * long) or by the stall detector (it was READY but silent, see `stalls`).
   */
  replacements: number;
  /**
   * The channel's endpoints, when it tracks them (a target that can resolve to several, see
   * `endpointEjection`): address, ejected or not, attempts and failures. Empty otherwise.
   */
  endpoints: EndpointStats[];
  /** Replacements by the stall detector: unary calls waited `stallTimeoutMs` on a READY channel that said nothing. */
  stalls: number;
  /**
   * Stalls later disproved: an answer arrived on the replaced channel (the server was slow, not
   * gone). Each one doubles the channel's stall timeout, up to 60 s.
   */
  falseStalls: number;
  /**
   * Endpoint connections dropped by per-endpoint liveness: unary calls picked for one endpoint of
   * a channel that tracks its endpoints heard nothing from it for `stallTimeoutMs`.
   */
  endpointStalls: number;
}

/** A channel's connectivity change, reported by `pool.onChannelStateChange`. */
export interface ChannelStateChange {
  /** The channel's target, as given to `pool.client()`. */
  target: string;
  /** The connectivity state it left. */
  previous: ChannelState;
  /** The connectivity state it is in now. */
  state: ChannelState;
}

/**
 * Reported by `pool.onChannelReplaced` when the connect watchdog replaces a stuck channel
 * (`reason` 'connect-timeout') or the stall detector a silent one (`reason` 'stalled'), and when
 * per-endpoint liveness drops the connection to one silent endpoint of a channel that tracks its
 * endpoints (`reason` 'endpoint-stalled': the channel stays, grpc-js reconnects to that endpoint).
 */
export type ChannelReplaced = ConnectTimeoutReplacement | StalledReplacement | EndpointStalledReplacement;

/** The connect watchdog replaced a channel that stayed CONNECTING for `connectTimeoutMs`. */
export interface ConnectTimeoutReplacement {
  /** The channel's target, as given to `pool.client()`. */
  target: string;
  /** The channel stayed CONNECTING longer than `connectTimeoutMs`. */
  reason: 'connect-timeout';
  /** How long the channel had been CONNECTING. */
  connectingMs: number;
  /** Replacements of this channel so far, this one included. */
  replacements: number;
}

/** The stall detector replaced a READY channel on which unary calls heard nothing for the stall timeout. */
export interface StalledReplacement {
  /** The channel's target, as given to `pool.client()`. */
  target: string;
  /** Nothing came from the server for `stallTimeoutMs` while unary calls waited on a READY channel. */
  reason: 'stalled';
  /** How long nothing had been heard while calls waited, in ms. */
  silentMs: number;
  /** The channel's stall timeout from now on, in ms (doubled when this stall was the second in a row with nothing heard). */
  stallTimeoutMs: number;
  /** Replacements of this channel so far, this one included. */
  replacements: number;
}

/**
 * Per-endpoint liveness dropped the connection to one endpoint of a channel that tracks its
 * endpoints: unary calls picked for it heard nothing from it for its stall timeout. The channel
 * is kept (its other endpoints serve); grpc-js reconnects to the endpoint.
 */
export interface EndpointStalledReplacement {
  /** The channel's target, as given to `pool.client()`. */
  target: string;
  /** One endpoint's connection heard nothing for `stallTimeoutMs` while attempts waited on it: that connection was dropped, the channel kept. */
  reason: 'endpoint-stalled';
  /** The endpoint, `host:port`. */
  address: string;
  /** How long nothing had been heard from it while calls waited, in ms. */
  silentMs: number;
  /** The endpoint's stall timeout from now on, in ms (doubled after a false alarm, or a second silence in a row with nothing heard). */
  stallTimeoutMs: number;
  /** Replacements of the channel so far (unchanged by this event: the channel is kept). */
  replacements: number;
}
