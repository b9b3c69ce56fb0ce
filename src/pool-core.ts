import type { ChannelCredentials, ChannelOptions } from '@grpc/grpc-js';
import type { Resolved } from './with-defined.js';
import { channelOptionsKey, DefaultCredentials, sameCredentials } from './channel-key.js';
import { BucketRotation, type BreakerOptions, type BreakerStateChange } from './circuit-breaker.js';
import { EventSource } from './events.js';
import { checkCloseOptions, type ResolvedPolicy } from './options.js';
import type { RetryThrottlingOptions } from './retry-throttle.js';
import { PooledChannel, type ChannelContext, type ChannelReplaced, type ChannelStateChange, type ChannelStats, type InFlight } from './pooled-channel.js';

/** Lifecycle state of a pool. */
export type PoolState = 'open' | 'closing' | 'closed';

/** A snapshot of a pool, fresh on every `stats()` call. */
export interface PoolStats {
  state: PoolState;
  /** Open channels owned by the pool (one per target, credentials and channel options). */
  channels: number;
  /** Channels the pool has created since it was constructed. */
  channelsCreated: number;
  /** Channels the pool has closed. */
  channelsClosed: number;
  /** Calls in flight on all channels. */
  inFlight: number;
  /** One entry per open channel. */
  perChannel: ChannelStats[];
}

/** What `close()` resolves with. */
export interface CloseResult {
  /** Calls that were in flight when close() began and settled on their own within the grace period. */
  drained: number;
  /** Calls still running when the grace period ended, cancelled with CANCELLED. */
  cancelled: number;
  /** How long close() took, in milliseconds. */
  durationMs: number;
}

/** Reported by `pool.onRetry` before each retry's backoff. */
export interface RetryEvent {
  target: string;
  /** Full method path. */
  method: string;
  /** The attempt that failed (1 for the first). */
  attempt: number;
  /** Its status code. */
  code: number;
  /** Its status details. */
  details: string;
  /** The backoff before the next attempt, in ms. */
  delayMs: number;
  /** The delay is the server's `grpc-retry-pushback-ms` rather than our backoff. */
  pushback: boolean;
}

// Channels sharing target and options but not credentials are kept apart; above this many in
// one bucket the caller is almost certainly creating credentials per call (grpc-node #1756).
const CREDENTIALS_WARNING_THRESHOLD = 8;

/**
 * The engine behind `ChannelPool`: the channel map, the in-flight accounting and the close()
 * state machine. `close()` is idempotent and concurrent callers share one completion; calls
 * after it began are refused; in-flight calls get the grace period, then are cancelled; then the
 * channels are closed and every timer and listener of ours is gone.
 */
export class PoolCore {
  state: PoolState = 'open';
  readonly defaultCredentials = new DefaultCredentials();
  /** Channel options key (target and options) to the channels under it, one per credentials. */
  readonly #buckets = new Map<string, PooledChannel[]>();
  #channelsCreated = 0;
  #channelsClosed = 0;
  #inFlight = 0;
  #onIdle: (() => void) | undefined;
  #closing: Promise<CloseResult> | undefined;
  #warnedCredentials = false;
  readonly #closeHooks = new Set<() => void>();
  readonly onRetry = new EventSource<RetryEvent>('onRetry');
  readonly onBreakerStateChange = new EventSource<BreakerStateChange>('onBreakerStateChange');
  readonly onChannelStateChange = new EventSource<ChannelStateChange>('onChannelStateChange');
  readonly onChannelReplaced = new EventSource<ChannelReplaced>('onChannelReplaced');
  readonly #rotation = new BucketRotation();
  readonly #context: ChannelContext;

  constructor(
    readonly policy: ResolvedPolicy,
    readonly channelOptions: ChannelOptions,
    readonly breaker: BreakerOptions | false,
    throttling: Resolved<RetryThrottlingOptions> | false,
    connectTimeoutMs: number | false,
  ) {
    this.#context = {
      throttling,
      connectTimeoutMs,
      rotation: this.#rotation,
      onChannelStateChange: this.onChannelStateChange,
      onChannelReplaced: this.onChannelReplaced,
      onBreakerStateChange: this.onBreakerStateChange,
    };
  }

  get isOpen(): boolean {
    return this.state === 'open';
  }

  /** The channel for this key, created on first use. Never re-created because a call failed. */
  channelFor(target: string, credentials: ChannelCredentials, options: ChannelOptions): PooledChannel {
    const key = channelOptionsKey(target, options);
    let bucket = this.#buckets.get(key);
    if (bucket === undefined) {
      bucket = [];
      this.#buckets.set(key, bucket);
    }
    for (const channel of bucket) {
      if (sameCredentials(channel.credentials, credentials)) return channel;
    }
    const channel = new PooledChannel(key, target, credentials, options, this.#context);
    bucket.push(channel);
    this.#channelsCreated++;
    if (bucket.length > CREDENTIALS_WARNING_THRESHOLD && !this.#warnedCredentials) {
      this.#warnedCredentials = true;
      process.emitWarning(
        `${bucket.length} channels to ${target} differ only by their credentials objects. ` +
          'Create channel credentials once and reuse them: each distinct TLS credentials object gets its own channel and connection.',
        { code: 'RESILIENT_GRPC_CREDENTIALS_PER_CALL', type: 'ResilientGrpcWarning' },
      );
    }
    return channel;
  }

  *#channels(): Iterable<PooledChannel> {
    for (const bucket of this.#buckets.values()) yield* bucket;
  }

  track(channel: PooledChannel, call: InFlight): void {
    channel.inFlight.add(call);
    this.#inFlight++;
  }

  untrack(channel: PooledChannel, call: InFlight): void {
    if (!channel.inFlight.delete(call)) return;
    this.#inFlight--;
    if (this.#inFlight === 0) this.#onIdle?.();
  }

  /** Runs `hook` once when the pool has closed; returns a function that removes it. */
  onClosed(hook: () => void): () => void {
    this.#closeHooks.add(hook);
    return () => this.#closeHooks.delete(hook);
  }

  stats(): PoolStats {
    const perChannel: ChannelStats[] = [];
    for (const channel of this.#channels()) perChannel.push(channel.snapshot());
    return {
      state: this.state,
      channels: perChannel.length,
      channelsCreated: this.#channelsCreated,
      channelsClosed: this.#channelsClosed,
      inFlight: this.#inFlight,
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
    this.state = 'closing';
    this.#closing = this.#shutdown(graceMs);
    return this.#closing;
  }

  async #shutdown(graceMs: number): Promise<CloseResult> {
    const startedAt = performance.now();
    const inFlightAtClose = this.#inFlight;
    for (const channel of this.#channels()) for (const call of [...channel.inFlight]) call.poolClosing();
    if (this.#inFlight > 0 && graceMs > 0) await this.#idle(graceMs);
    let cancelled = 0;
    if (this.#inFlight > 0) {
      for (const channel of this.#channels()) {
        for (const call of [...channel.inFlight]) {
          cancelled++;
          call.cancelForClose(graceMs);
        }
      }
      // grpc-js answers every cancel() with a CANCELLED status, so this settles promptly.
      await this.#idle(undefined);
    }
    for (const channel of this.#channels()) {
      channel.close();
      this.#channelsClosed++;
    }
    this.#buckets.clear();
    this.#rotation.close();
    this.state = 'closed';
    for (const hook of this.#closeHooks) hook();
    this.#closeHooks.clear();
    for (const source of [this.onRetry, this.onBreakerStateChange, this.onChannelStateChange, this.onChannelReplaced]) source.clear();
    return { drained: inFlightAtClose - cancelled, cancelled, durationMs: performance.now() - startedAt };
  }

  /** Resolves when no call is in flight, or after `timeoutMs` when given. */
  #idle(timeoutMs: number | undefined): Promise<void> {
    if (this.#inFlight === 0) return Promise.resolve();
    return new Promise((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        this.#onIdle = undefined;
        resolve();
      };
      // Not unref()ed: a process that awaits close() should stay up for the grace period.
      const timer = timeoutMs === undefined ? undefined : setTimeout(done, timeoutMs);
      this.#onIdle = done;
    });
  }
}
