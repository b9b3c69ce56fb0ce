import { Channel, Client, connectivityState, type ChannelCredentials, type ChannelOptions } from '@grpc/grpc-js';
import { Breaker, BREAKER_KEYS, type BreakerOptions, type BreakerStateChange, type BreakerStats, type BucketRotation } from './circuit-breaker.js';
import type { EventSource } from './events.js';
import { serviceConfigHasRetries } from './retry-policy.js';
import { RetryThrottle, type RetryThrottlingOptions } from './retry-throttle.js';
import type { Resolved } from './with-defined.js';

/** Connectivity state of a channel, as grpc-js reports it, in lower-kebab case. */
export type ChannelState = 'idle' | 'connecting' | 'ready' | 'transient-failure' | 'shutdown';

const STATE_NAMES: Record<connectivityState, ChannelState> = {
  [connectivityState.IDLE]: 'idle',
  [connectivityState.CONNECTING]: 'connecting',
  [connectivityState.READY]: 'ready',
  [connectivityState.TRANSIENT_FAILURE]: 'transient-failure',
  [connectivityState.SHUTDOWN]: 'shutdown',
};

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
  /** Retries the policy allowed but retry throttling refused. */
  throttledRetries: number;
  /** Tokens in the channel's retry-throttling bucket; undefined when throttling is off. */
  retryTokens: number | undefined;
  /** grpc-js owns retries on this channel (its service config has a retry or hedging policy): ours are off. */
  grpcOwnsRetries: boolean;
  /** The channel's circuit breakers: one, or one per method with `scope: 'method'`. */
  breakers: BreakerStats[];
  /** Times the connect watchdog replaced the grpc-js channel because it stayed CONNECTING too long. */
  replacements: number;
}

/** Something in flight on a channel that `close()` may have to cancel. */
export interface InFlight {
  /** Ends the call at once; its promise settles with a CANCELLED status soon after. */
  cancelForClose(graceMs: number): void;
  /** The pool began closing: a call waiting to retry gives up now. */
  poolClosing(): void;
}

/** A channel's connectivity change, reported by `pool.onChannelStateChange`. */
export interface ChannelStateChange {
  target: string;
  previous: ChannelState;
  state: ChannelState;
}

/** Reported by `pool.onChannelReplaced` when the connect watchdog replaces a stuck channel. */
export interface ChannelReplaced {
  target: string;
  reason: 'connect-timeout';
  /** How long the channel had been CONNECTING. */
  connectingMs: number;
  /** Replacements of this channel so far, this one included. */
  replacements: number;
}

/** What every channel of a pool shares. */
export interface ChannelContext {
  throttling: Resolved<RetryThrottlingOptions> | false;
  /** Connect watchdog limit in ms, or false. */
  connectTimeoutMs: number | false;
  rotation: BucketRotation;
  onChannelStateChange: EventSource<ChannelStateChange>;
  onChannelReplaced: EventSource<ChannelReplaced>;
  onBreakerStateChange: EventSource<BreakerStateChange>;
}

/**
 * One channel owned by the pool: the grpc-js channel, the single grpc-js `Client` that makes
 * calls on it (through `channelOverride`), its breakers, its retry-throttling bucket, a watch
 * on its connectivity (for events and the connect watchdog), and the figures `stats()` reports.
 * The pool never calls `Client.close()`: it would close the shared channel (grpc-js closes an
 * overriding channel too).
 */
export class PooledChannel {
  channel: Channel;
  /** Used only for its `make*Request` methods; never closed. */
  client: Client;
  readonly inFlight = new Set<InFlight>();
  readonly throttle: RetryThrottle | undefined;
  readonly grpcOwnsRetries: boolean;
  readonly #breakers = new Map<string, Breaker>();
  started = 0;
  succeeded = 0;
  failed = 0;
  retries = 0;
  throttledRetries = 0;
  #replacements = 0;
  #state: ChannelState = 'idle';
  #connectingSince = 0;
  #watchdog: NodeJS.Timeout | undefined;
  #closed = false;

  constructor(
    readonly key: string,
    readonly target: string,
    readonly credentials: ChannelCredentials,
    readonly options: ChannelOptions,
    readonly context: ChannelContext,
  ) {
    const { throttling } = context;
    this.throttle = throttling === false ? undefined : new RetryThrottle(throttling.maxTokens, throttling.tokenRatio);
    this.grpcOwnsRetries = serviceConfigHasRetries(options['grpc.service_config']);
    this.channel = new Channel(target, credentials, options);
    this.client = new Client(target, credentials, { channelOverride: this.channel });
    this.#watch(this.channel);
  }

  /** The breaker for a method under these options: the channel's, or the method's own. */
  breakerFor(method: string, options: Resolved<BreakerOptions>): Breaker {
    const key = `${options.scope === 'method' ? method : ''}\n${BREAKER_KEYS.map((k) => options[k as keyof BreakerOptions]).join('\n')}`;
    let breaker = this.#breakers.get(key);
    if (breaker === undefined) {
      const scoped = options.scope === 'method' ? method : undefined;
      breaker = new Breaker(options, scoped, this.context.rotation, (change) => {
        this.context.onBreakerStateChange.emit({ target: this.target, ...change });
      });
      this.#breakers.set(key, breaker);
    }
    return breaker;
  }

  snapshot(): ChannelStats {
    return {
      target: this.target,
      state: this.state(),
      secure: this.credentials._isSecure(),
      inFlight: this.inFlight.size,
      started: this.started,
      succeeded: this.succeeded,
      failed: this.failed,
      retries: this.retries,
      throttledRetries: this.throttledRetries,
      retryTokens: this.throttle?.tokens,
      grpcOwnsRetries: this.grpcOwnsRetries,
      breakers: [...this.#breakers.values()].map((b) => b.stats()),
      replacements: this.#replacements,
    };
  }

  state(): ChannelState {
    return STATE_NAMES[this.channel.getConnectivityState(false)];
  }

  close(): void {
    this.#closed = true;
    clearTimeout(this.#watchdog);
    for (const breaker of this.#breakers.values()) breaker.shutdown();
    this.#breakers.clear();
    this.channel.close();
  }

  /**
   * Follows the channel's connectivity (grpc-js's watch has no timer with an infinite deadline)
   * for the state events and the watchdog, until the channel is closed or replaced.
   */
  #watch(channel: Channel): void {
    if (this.#closed || channel !== this.channel) return;
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
    const limit = this.context.connectTimeoutMs;
    if (limit === false) return;
    if (state === 'connecting') {
      this.#connectingSince = performance.now();
      clearTimeout(this.#watchdog);
      this.#watchdog = setTimeout(() => this.#replace(), limit);
      // A watchdog only matters while calls wait on the channel; those keep the process alive.
      this.#watchdog.unref();
    } else {
      clearTimeout(this.#watchdog);
      this.#watchdog = undefined;
    }
  }

  /**
   * The connect watchdog: grpc-js 1.14 has no connect timeout (grpc-node #2785), so a peer that
   * accepts TCP but never completes the HTTP/2 handshake leaves the channel CONNECTING for ever,
   * failing every call with DEADLINE_EXCEEDED "Waiting for LB pick". The channel is replaced by
   * a fresh one with the same target, credentials and options, and the stuck one is closed (its
   * queued calls fail UNAVAILABLE and may be retried on the new one). The new channel uses a
   * local subchannel pool: with the global one, grpc-js could hand it the same stuck subchannel.
   * This is the only case in which the pool re-creates a channel.
   */
  #replace(): void {
    if (this.#closed || this.#state !== 'connecting') return;
    const stuck = this.channel;
    const connectingMs = performance.now() - this.#connectingSince;
    const options = { ...this.options, 'grpc.use_local_subchannel_pool': 1 };
    this.channel = new Channel(this.target, this.credentials, options);
    this.client = new Client(this.target, this.credentials, { channelOverride: this.channel });
    this.#replacements++;
    this.#watchdog = undefined;
    stuck.close();
    this.context.onChannelReplaced.emit({ target: this.target, reason: 'connect-timeout', connectingMs, replacements: this.#replacements });
    this.#watch(this.channel);
  }
}
