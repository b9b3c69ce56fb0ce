import { checkCredentials, parseTarget, POOL_CHANNEL_DEFAULTS } from './channel-key.js';
import type { PoolClient, ServiceLike } from './client-types.js';
import { checkOptionsObject, optionError, PoolClosedError } from './errors.js';
import {
  checkClientOptions,
  checkPolicy,
  checkPoolOptions,
  mergePolicy,
  POLICY_DEFAULTS,
  POLICY_KEYS,
  type ChannelPoolOptions,
  type ClientOptions,
  type CallOptions,
  type CloseOptions,
  type PolicyOptions,
} from './options.js';
import type { Event } from './events.js';
import { PoolCore, type CloseResult, type PoolState, type PoolStats, type RetryEvent } from './pool-core.js';
import { checkThrottlingOptions } from './retry-throttle.js';
import { mergeBreaker, resolveBreaker, type BreakerStateChange } from './circuit-breaker.js';
import { withDefined } from './with-defined.js';
import { installSignalHandlers, type SignalHandlers } from './shutdown-signals.js';
import { readService, type MethodInfo, type ServiceInfo } from './service-methods.js';
import { retryFor, type BoundMethod } from './bound-method.js';
import { bidiStream, clientStream, serverStream } from './stream-calls.js';
import { callUnary } from './unary-call.js';
import type { ChannelReplaced, ChannelStateChange } from './pooled-channel.js';

/** The connect watchdog's default: the gRPC connection-backoff spec's MIN_CONNECT_TIMEOUT. */
const DEFAULT_CONNECT_TIMEOUT_MS = 20_000;

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
  readonly #core: PoolCore;

  /**
   * @param options Pool-wide defaults; see {@link ChannelPoolOptions}.
   * @throws TypeError or RangeError naming the option, for a bad option.
   */
  constructor(options?: ChannelPoolOptions) {
    const opts = checkPoolOptions(options);
    const policy = mergePolicy(POLICY_DEFAULTS, checkPolicy('', opts));
    const throttling = checkThrottlingOptions('retryThrottling', opts.retryThrottling);
    this.#core = new PoolCore(
      policy,
      withDefined(POOL_CHANNEL_DEFAULTS, opts.channelOptions ?? {}),
      opts.breaker ?? {},
      throttling,
      opts.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS,
    );
    this.onRetry = this.#core.onRetry.subscribe;
    this.onBreakerStateChange = this.#core.onBreakerStateChange.subscribe;
    this.onChannelStateChange = this.#core.onChannelStateChange.subscribe;
    this.onChannelReplaced = this.#core.onChannelReplaced.subscribe;
  }

  /** Reports every circuit state change: target, method (for `scope: 'method'`), new and previous state, reason. */
  readonly onBreakerStateChange: Event<BreakerStateChange>;

  /** Reports every connectivity change of the pool's channels (`idle`, `connecting`, `ready`, ...). */
  readonly onChannelStateChange: Event<ChannelStateChange>;

  /** Reports each replacement of a channel stuck CONNECTING longer than `connectTimeoutMs`. */
  readonly onChannelReplaced: Event<ChannelReplaced>;

  /**
   * Reports every retry before its backoff: target, method, the failed attempt's number and
   * status, and the delay. For logging and metrics; a listener that throws never breaks a call.
   * Returns a subscription to `dispose()`. Listeners are dropped when the pool closes.
   */
  readonly onRetry: Event<RetryEvent>;

  /** `'open'`, then `'closing'` once close() began, then `'closed'`. */
  get state(): PoolState {
    return this.#core.state;
  }

  /**
   * A promise-based client for `service` on the pool's channel for `target`. Cheap: clients
   * hold no resources of their own, only the pool's channel; there is no need to close them.
   *
   * @param service A grpc-js client constructor (generated, or from `loadPackageDefinition`) or a
   *   `ServiceDefinition`.
   * @param target `host:port`, any grpc-js target (`dns:`, `ipv4:`, `unix:`, `xds:` ...), or
   *   `https://host[:port]` (TLS) / `http://host[:port]` (plaintext).
   * @throws TypeError or RangeError naming the option for a bad argument; `PoolClosedError` once
   *   the pool is closing.
   */
  client<S extends ServiceLike>(service: S, target: string, options?: ClientOptions): PoolClient<S> {
    if (!this.#core.isOpen) throw new PoolClosedError();
    const info = readService(service);
    const parsed = parseTarget(target);
    const opts = checkClientOptions(options);
    checkCredentials(opts.credentials);
    const clientPolicy = mergePolicy(this.#core.policy, checkPolicy('', opts));
    const methodPolicies = checkMethodOptions(info, opts.methods);
    const breakerOptions = resolveBreaker(mergeBreaker(this.#core.breaker, opts.breaker));
    // Everything is validated before the channel is looked up, so a bad option creates nothing.
    const channel = this.#core.channelFor(
      parsed.target,
      opts.credentials ?? this.#core.defaultCredentials.for(parsed),
      withDefined(this.#core.channelOptions, opts.channelOptions ?? {}),
    );
    const client: Record<string, unknown> = {};
    for (const method of info.methods) {
      const policy = mergePolicy(clientPolicy, methodPolicies.get(method) ?? {});
      const fn = methodFunction({ core: this.#core, channel, method, policy, retry: retryFor(channel, policy), breakerOptions });
      for (const name of method.names) client[name] = fn;
    }
    return Object.freeze(client) as PoolClient<S>;
  }

  /** A fresh snapshot of the pool's channels and calls; see {@link PoolStats}. */
  stats(): PoolStats {
    return this.#core.stats();
  }

  /**
   * Closes the pool: new calls reject at once with `PoolClosedError`; calls in flight get
   * `graceMs` to finish and are then cancelled (they reject with a CANCELLED `StatusError`);
   * then every channel is closed. Idempotent: later and concurrent calls return the same promise
   * (their options are ignored). Rejects only for a bad option, and then the pool stays open.
   */
  close(options?: CloseOptions): Promise<CloseResult> {
    return this.#core.close(options);
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
    checkOptionsObject('CloseOptions', options, ['graceMs']);
    return installSignalHandlers(this.#core, signals, options);
  }
}

function checkMethodOptions(info: ServiceInfo, methods: ClientOptions['methods']): Map<MethodInfo, PolicyOptions> {
  const out = new Map<MethodInfo, PolicyOptions>();
  for (const [name, options] of Object.entries(methods ?? {})) {
    const method = info.byName.get(name);
    if (method === undefined) {
      const known = info.methods.map((m) => m.names[m.names.length - 1]).join(', ');
      throw optionError('type', `methods.${name}`, `a method of ${info.serviceName} (${known})`, undefined, 'an unknown method');
    }
    checkOptionsObject(`methods.${name}`, options, POLICY_KEYS);
    out.set(method, { ...out.get(method), ...checkPolicy(`methods.${name}.`, options) });
  }
  return out;
}

function methodFunction(bound: BoundMethod): (input: unknown, options?: CallOptions) => unknown {
  switch (bound.method.kind) {
    case 'unary':
      return (request, options) => callUnary(bound, request, options);
    case 'server-stream':
      return (request, options) => serverStream(bound, request, options);
    case 'client-stream':
      return (requests, options) => clientStream(bound, requests, options);
    case 'bidi':
      return (requests, options) => bidiStream(bound, requests, options);
  }
}
