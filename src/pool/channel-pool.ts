import type { AttemptEndEvent, AttemptStartEvent, CallEndEvent, CallStartEvent } from '../events/call-events.js';
import type { BreakerStateChange } from '../channel/circuit-breaker.js';
import { createClient } from './client-factory.js';
import type { MethodName, PoolClient, ServiceLike } from '../client/client-types.js';
import { PoolClosedError } from '../core/errors.js';
import type { EndpointEjection } from '../channel/endpoint-ejection.js';
import type { EndpointHealthChange } from '../channel/health-check.js';
import type { AdaptiveThrottlingChange } from '../channel/adaptive-throttle.js';
import type { Event } from '../events/events.js';
import type { ClientOptions } from '../config/client-options.js';
import type { CloseOptions } from '../config/close-options.js';
import { poolSettings, type ChannelPoolOptions } from '../config/pool-options.js';
import { PoolEngine } from './pool-engine.js';
import type { CloseResult, PoolState, PoolStats } from './pool-stats.js';
import type { ChannelReplaced, ChannelStateChange } from '../channel/channel-stats.js';
import type { RetryEvent } from '../call/retry-event.js';
import { installSignalHandlers, type SignalHandlers } from './shutdown-signals.js';

/**
 * Owns one grpc-js channel per target (and credentials and channel options) and hands out
 * promise-based clients that share it. Reconnection is left to grpc-js's own backoff: a failed
 * call never creates a channel. Every call gets a finite deadline. `close()` refuses new calls,
 * drains the ones in flight, then releases every channel, timer and listener.
 *
 * @example
 * const pool = new ChannelPool({ deadlineMs: 10_000 });
 * const users = pool.client(UserServiceClient, 'users.internal:50051');
 * const info = await users.QueryBasicInfoByID({ id: 1 }, { deadlineMs: 300 });
 * await pool.close({ graceMs: 5_000 });
 */
export class ChannelPool implements AsyncDisposable {
  readonly #engine: PoolEngine;

  /**
   * @param options Pool-wide defaults; see {@link ChannelPoolOptions}.
   * @throws TypeError or RangeError naming the option, for a bad option.
   */
  constructor(options?: ChannelPoolOptions) {
    this.#engine = new PoolEngine(poolSettings(options));
    this.onRetry = this.#engine.onRetry.subscribe;
    this.onBreakerStateChange = this.#engine.onBreakerStateChange.subscribe;
    this.onChannelStateChange = this.#engine.onChannelStateChange.subscribe;
    this.onChannelReplaced = this.#engine.onChannelReplaced.subscribe;
    this.onEndpointEjection = this.#engine.onEndpointEjection.subscribe;
    this.onEndpointHealth = this.#engine.onEndpointHealth.subscribe;
    this.onAdaptiveThrottling = this.#engine.onAdaptiveThrottling.subscribe;
    const calls = this.#engine.callEvents;
    this.onCallStart = calls.onCallStart.subscribe;
    this.onCallEnd = calls.onCallEnd.subscribe;
    this.onAttemptStart = calls.onAttemptStart.subscribe;
    this.onAttemptEnd = calls.onAttemptEnd.subscribe;
  }

  /**
   * Reports every call as it is admitted: target, method, call shape, and a `callId` shared with
   * its attempt and end events. Also a call refused because the pool was closing (its end event
   * follows at once, `refused: 'pool'`), and one whose signal or parent was already cancelled.
   * Not a call refused for bad arguments (a TypeError or RangeError): that is no RPC.
   * Listeners that throw never break a call; listeners are dropped when the pool closes.
   */
  readonly onCallStart: Event<CallStartEvent>;

  /**
   * Reports every started call once, when its outcome is known: status code, duration,
   * attempts, time in backoff, messages sent and received, and `refused` ('circuit' | 'pool')
   * when it never reached the network. Only for calls whose start was reported (subscribe
   * before calling, and starts and ends pair up).
   */
  readonly onCallEnd: Event<CallEndEvent>;

  /**
   * Reports each attempt just before it goes on the wire, with its own request `metadata`:
   * listeners may add headers to it (a W3C `traceparent`), and may set `scope` to start the
   * attempt inside a context of theirs. See {@link AttemptStartEvent}.
   */
  readonly onAttemptStart: Event<AttemptStartEvent>;

  /** Reports each attempt's outcome: number, status code, duration, and the endpoint's address once a stream was opened. */
  readonly onAttemptEnd: Event<AttemptEndEvent>;

  /** Reports every circuit state change: target, method (for `scope: 'method'`), new and previous state, reason. */
  readonly onBreakerStateChange: Event<BreakerStateChange>;

  /** Reports every connectivity change of the pool's channels (`idle`, `connecting`, `ready`, ...). */
  readonly onChannelStateChange: Event<ChannelStateChange>;

  /** Reports each replacement of a channel stuck CONNECTING longer than `connectTimeoutMs`. */
  readonly onChannelReplaced: Event<ChannelReplaced>;

  /** Reports each endpoint taken out of rotation (and put back) by endpoint ejection: target, address, failure rate. */
  readonly onEndpointEjection: Event<EndpointEjection>;

  /**
   * Reports what endpoints say about their own health, for clients with `healthCheck` (gRFC A17):
   * each change of an endpoint's status (SERVING, NOT_SERVING, SERVICE_UNKNOWN, a Watch stream
   * that failed), and once per channel `status: 'UNIMPLEMENTED'`, a warning that its servers have
   * no health service (they then count as serving).
   */
  readonly onEndpointHealth: Event<EndpointHealthChange>;

  /**
   * Reports when a channel's adaptive throttle (`adaptiveThrottling`) starts shedding (its first
   * local rejection since its reject probability was last 0) and when it stops (a call finds the
   * probability back at 0): target, reject probability, requests and accepts in the window,
   * rejections so far. Never once per rejected call: `stats()` and the metrics adapters count those.
   */
  readonly onAdaptiveThrottling: Event<AdaptiveThrottlingChange>;

  /**
   * Reports every retry before its backoff: target, method, the failed attempt's number and
   * status, and the delay. For logging and metrics; a listener that throws never breaks a call.
   * Returns a subscription to `dispose()`. Listeners are dropped when the pool closes.
   */
  readonly onRetry: Event<RetryEvent>;

  /** `'open'`, then `'closing'` once close() began, then `'closed'`. */
  get state(): PoolState {
    return this.#engine.state;
  }

  /**
   * A promise-based client for `service` on the pool's channel for `target`. Cheap: clients
   * hold no resources of their own, only the pool's channel; there is no need to close them.
   *
   * @param service A grpc-js client constructor (generated, or from `loadPackageDefinition`) or a
   *   `ServiceDefinition`.
   * @param target `host:port`, any grpc-js target (`dns:`, `ipv4:`, `unix:`, `xds:` once
   *   `@grpc/grpc-js-xds` is registered ...), read as grpc-js reads it, or `https://host[:port]`
   *   (TLS) / `http://host[:port]` (plaintext). On an `xds:` target the mesh owns retries.
   * @throws TypeError or RangeError naming the option for a bad argument (a target with a
   *   password is refused, the password shown as `***`); `PoolClosedError` once the pool is
   *   closing.
   */
  client<S extends ServiceLike>(service: S, target: string, options?: ClientOptions<MethodName<S>>): PoolClient<S> {
    if (!this.#engine.isOpen) throw new PoolClosedError();
    return createClient(this.#engine, service, target, options);
  }

  /** A fresh snapshot of the pool's channels and calls; see {@link PoolStats}. */
  stats(): PoolStats {
    return this.#engine.stats();
  }

  /**
   * Closes the pool: new calls reject at once with `PoolClosedError`; calls in flight get
   * `graceMs` to finish and are then cancelled (they reject with a CANCELLED `StatusError`);
   * then every channel is closed. Idempotent: later and concurrent calls return the same promise
   * (their options are ignored). Rejects only for a bad option, and then the pool stays open.
   */
  close(options?: CloseOptions): Promise<CloseResult> {
    return this.#engine.close(options);
  }

  /** `await using pool = new ChannelPool()` closes it with the default grace period. */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  /**
   * Closes the pool gracefully on the first of `signals` (default SIGTERM and SIGINT). The
   * handlers are one-shot and removed when the pool closes. When no other handler listens for
   * the signal, it is raised again once the pool has closed, so the process ends as it would
   * have without us; a second signal during the drain gets Node's default behaviour.
   * Signal handlers do not keep the process alive.
   *
   * @returns a handle whose `remove()` (or `[Symbol.dispose]`) takes the handlers away.
   */
  closeOnSignals(signals: readonly NodeJS.Signals[] = ['SIGTERM', 'SIGINT'], options?: CloseOptions): SignalHandlers {
    return installSignalHandlers(this.#engine, signals, options);
  }
}
