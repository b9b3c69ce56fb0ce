import { Channel, Client, connectivityState, type ChannelCredentials, type ChannelOptions } from '@grpc/grpc-js';
import type { Resolved } from './with-defined.js';
import { serviceConfigHasRetries } from './retry-policy.js';
import { RetryThrottle, type RetryThrottlingOptions } from './retry-throttle.js';

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
  /** Calls that settled with an error (status, abort or cancellation). */
  failed: number;
  /** Retries started (attempts after the first). */
  retries: number;
  /** Retries the policy allowed but retry throttling refused. */
  throttledRetries: number;
  /** Tokens in the channel's retry-throttling bucket; undefined when throttling is off. */
  retryTokens: number | undefined;
  /** grpc-js owns retries on this channel (its service config has a retry or hedging policy): ours are off. */
  grpcOwnsRetries: boolean;
}

/** Something in flight on a channel that `close()` may have to cancel. */
export interface InFlight {
  /** Ends the call at once; its promise settles with a CANCELLED status soon after. */
  cancelForClose(graceMs: number): void;
  /** The pool began closing: a call waiting to retry gives up now. */
  poolClosing(): void;
}

/**
 * One grpc-js channel owned by the pool, with the single grpc-js `Client` that makes calls on it
 * (through `channelOverride`) and the figures `stats()` reports. The pool never calls
 * `Client.close()`: it would close the shared channel (grpc-js closes an overriding channel too).
 */
export class PooledChannel {
  readonly channel: Channel;
  /** Used only for its `make*Request` methods; never closed. */
  readonly client: Client;
  readonly inFlight = new Set<InFlight>();
  readonly throttle: RetryThrottle | undefined;
  readonly grpcOwnsRetries: boolean;
  started = 0;
  succeeded = 0;
  failed = 0;
  retries = 0;
  throttledRetries = 0;

  constructor(
    readonly key: string,
    readonly target: string,
    readonly credentials: ChannelCredentials,
    readonly options: ChannelOptions,
    throttling: Resolved<RetryThrottlingOptions> | false,
  ) {
    this.throttle = throttling === false ? undefined : new RetryThrottle(throttling.maxTokens, throttling.tokenRatio);
    this.grpcOwnsRetries = serviceConfigHasRetries(options['grpc.service_config']);
    this.channel = new Channel(target, credentials, options);
    this.client = new Client(target, credentials, { channelOverride: this.channel });
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
    };
  }

  state(): ChannelState {
    return STATE_NAMES[this.channel.getConnectivityState(false)];
  }

  close(): void {
    this.channel.close();
  }
}
