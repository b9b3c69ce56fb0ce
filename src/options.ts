import type { ChannelCredentials, ChannelOptions, Metadata, MetadataValue } from '@grpc/grpc-js';
import type { Resolved } from './with-defined.js';
import { checkDurationMs, MAX_TIMER_MS } from './deadline.js';
import { checkOptionsObject, optionError } from './errors.js';
import { checkRetryOptions, mergeRetry, type RetryOptions } from './retry-policy.js';
import type { RetryThrottlingOptions } from './retry-throttle.js';
import { checkBreakerOptions, type BreakerOptions } from './circuit-breaker.js';

/**
 * Policy options that cascade: pool defaults, then client options, then `methods[name]`, then
 * the call. The most specific level that sets a field wins.
 */
export interface PolicyOptions {
  /**
   * Time budget of a call in milliseconds, from the moment the method is called. Sent to the
   * server as the gRPC deadline (`grpc-timeout`), so every call has a finite deadline on the
   * wire. Finite, > 0, at most 2147483647. Default: 10000 (10 s).
   */
  deadlineMs?: number | undefined;
  /**
   * The method is safe to run more than once (a read, or a write keyed by an idempotency key).
   * Retries of idempotent methods cover more status codes (ABORTED, INTERNAL, UNKNOWN, and
   * DEADLINE_EXCEEDED of an attempt that hit `perAttemptTimeoutMs`). Default: false.
   */
  idempotent?: boolean | undefined;
  /**
   * How failed calls are retried, or `false` for never. Default: 3 attempts in all, for
   * UNAVAILABLE only (more codes for idempotent methods), full-jitter exponential backoff from
   * 100 ms up to 2 s, all within the call's deadline. See {@link RetryOptions}.
   */
  retry?: RetryOptions | false | undefined;
}

/** Per-method options, under `ClientOptions.methods[name]` (proto name or lowerCamel alias). */
export type MethodOptions = PolicyOptions;

/** Options of a {@link ChannelPool}: defaults for every client and channel it creates. */
export interface ChannelPoolOptions extends PolicyOptions {
  /**
   * grpc-js channel options applied to every channel of the pool (a client's own
   * `channelOptions` are merged over them, key by key). They are part of the channel's key:
   * clients with different channel options get different channels. Passed to grpc-js untouched,
   * except that `grpc.service_config_disable_resolution` defaults to 1 (see README). Default: `{}`.
   */
  channelOptions?: ChannelOptions | undefined;
  /**
   * Retry throttling per channel (gRFC A6), or `false` to turn it off. Default:
   * `{ maxTokens: 10, tokenRatio: 0.1 }`. See {@link RetryThrottlingOptions}.
   */
  retryThrottling?: RetryThrottlingOptions | false | undefined;
  /**
   * Circuit breaking for every channel, or `false` for none. Default: on, with
   * `{ errorThresholdPercentage: 50, volumeThreshold: 20, windowMs: 10000, resetTimeoutMs: 10000,
   * scope: 'channel' }`. See {@link BreakerOptions}.
   */
  breaker?: BreakerOptions | false | undefined;
  /**
   * Connect watchdog: a channel that stays CONNECTING longer than this many ms is replaced by a
   * fresh one (grpc-js has no connect timeout, grpc-node #2785). `false` turns it off.
   * Default: 20000 (the gRPC connection-backoff spec's MIN_CONNECT_TIMEOUT).
   */
  connectTimeoutMs?: number | false | undefined;
}

/** Options of `pool.client(service, target, options)`. */
export interface ClientOptions extends PolicyOptions {
  /**
   * Channel credentials. Default: derived from the target: `https://host[:port]` uses TLS with
   * the system's root certificates (port 443 unless given), anything else is insecure
   * (plaintext). Create credentials once and reuse them: TLS credentials only share a channel
   * (and a TCP connection) when grpc-js's own comparison finds them equal.
   */
  credentials?: ChannelCredentials | undefined;
  /** grpc-js channel options for this client's channel, merged over the pool's. Default: `{}`. */
  channelOptions?: ChannelOptions | undefined;
  /** Per-method policy, keyed by the proto method name or its lowerCamel alias. Default: `{}`. */
  methods?: Record<string, MethodOptions> | undefined;
  /** Circuit breaking for this client's calls, merged field by field over the pool's; `false` for none. */
  breaker?: BreakerOptions | false | undefined;
}

/** Metadata for one call: a grpc-js `Metadata`, or a plain object of keys to values. */
export type MetadataInit = Metadata | Record<string, MetadataValue | MetadataValue[]>;

/** Options of one call, the last argument of every client method. */
export interface CallOptions extends PolicyOptions {
  /**
   * Absolute deadline: a `Date`, or epoch milliseconds as in grpc-js (`Date.now() + 500`, never
   * `500`). Must be in the future. Wins over every `deadlineMs`; do not pass both on one call.
   */
  deadline?: Date | number | undefined;
  /** Cancels the call; the promise then rejects with `signal.reason`. */
  signal?: AbortSignal | undefined;
  /** Request metadata (headers). */
  metadata?: MetadataInit | undefined;
  /**
   * A grpc-js server call this call is made on behalf of: the call's deadline becomes the
   * earlier of its own and the parent's, and the call is cancelled when the parent is.
   */
  parent?: ParentCall | undefined;
  /**
   * Called with the response headers of each attempt that receives them. For the rare caller
   * that needs them; a hook that throws is reported as a process warning, never breaks the call.
   */
  onHeader?: ((metadata: Metadata) => void) | undefined;
  /** Called with the trailers of each attempt that ends with a status (success or failure). */
  onTrailer?: ((metadata: Metadata) => void) | undefined;
}

/**
 * The part of a grpc-js server call (`ServerUnaryCall`, `ServerWritableStream`, ...) that `parent`
 * uses: its deadline and its cancellation.
 */
export interface ParentCall {
  readonly cancelled: boolean;
  getDeadline(): Date | number;
  once(event: 'cancelled', listener: () => void): unknown;
  removeListener(event: 'cancelled', listener: () => void): unknown;
}

/** Options of `pool.close()`. */
export interface CloseOptions {
  /**
   * How long in-flight calls may run before they are cancelled, in milliseconds. 0 cancels them
   * at once. Finite, >= 0. Default: 10000 (10 s, the default call deadline).
   */
  graceMs?: number | undefined;
}

/** What {@link PolicyOptions} resolve to once every level is applied. */
export interface ResolvedPolicy {
  deadlineMs: number;
  idempotent: boolean;
  retry: RetryOptions | false;
}

/** Defaults of the cascading policy (the retry defaults are in RETRY_DEFAULTS). */
export const POLICY_DEFAULTS: Readonly<ResolvedPolicy> = {
  deadlineMs: 10_000,
  idempotent: false,
  retry: {},
} satisfies Resolved<PolicyOptions>;

/** Defaults of `close()`. */
export const CLOSE_DEFAULTS = {
  graceMs: 10_000,
} as const satisfies Resolved<CloseOptions>;

export const POLICY_KEYS = ['deadlineMs', 'idempotent', 'retry'] as const;
const POOL_KEYS: readonly string[] = [...POLICY_KEYS, 'channelOptions', 'retryThrottling', 'breaker', 'connectTimeoutMs'];
const CLIENT_KEYS: readonly string[] = [...POLICY_KEYS, 'credentials', 'channelOptions', 'methods', 'breaker'];
const CALL_KEYS: ReadonlySet<string> = new Set([...POLICY_KEYS, 'deadline', 'signal', 'metadata', 'parent', 'onHeader', 'onTrailer']);


/** Validates the cascading fields of one level and returns only those that are set. */
export function checkPolicy(prefix: string, options: PolicyOptions | undefined): PolicyOptions {
  const out: PolicyOptions = {};
  if (options === undefined) return out;
  if (options.deadlineMs !== undefined) out.deadlineMs = checkDurationMs(`${prefix}deadlineMs`, options.deadlineMs);
  if (options.idempotent !== undefined) {
    if (typeof options.idempotent !== 'boolean') {
      throw optionError('type', `${prefix}idempotent`, 'a boolean', options.idempotent);
    }
    out.idempotent = options.idempotent;
  }
  const retry = checkRetryOptions(`${prefix}retry`, options.retry);
  if (retry !== undefined) out.retry = retry;
  return out;
}

/** Applies `over` on top of `base`, field by field (an unset field keeps the base value). */
export function mergePolicy(base: ResolvedPolicy, over: PolicyOptions): ResolvedPolicy {
  return {
    deadlineMs: over.deadlineMs ?? base.deadlineMs,
    idempotent: over.idempotent ?? base.idempotent,
    retry: mergeRetry(base.retry, over.retry),
  };
}

export function checkPoolOptions(options: unknown): ChannelPoolOptions {
  checkOptionsObject('ChannelPoolOptions', options, POOL_KEYS);
  const opts = (options ?? {}) as ChannelPoolOptions;
  checkChannelOptions('channelOptions', opts.channelOptions);
  checkBreakerOptions('breaker', opts.breaker);
  if (opts.connectTimeoutMs !== undefined && opts.connectTimeoutMs !== false) checkDurationMs('connectTimeoutMs', opts.connectTimeoutMs);
  return opts;
}

export function checkClientOptions(options: unknown): ClientOptions {
  checkOptionsObject('ClientOptions', options, CLIENT_KEYS);
  const opts = (options ?? {}) as ClientOptions;
  checkChannelOptions('channelOptions', opts.channelOptions);
  checkBreakerOptions('breaker', opts.breaker);
  if (opts.methods !== undefined && (typeof opts.methods !== 'object' || opts.methods === null || Array.isArray(opts.methods))) {
    throw optionError('type', 'methods', 'an object keyed by method name', opts.methods);
  }
  return opts;
}

export function checkCallOptionKeys(options: object): void {
  checkOptionsObject('CallOptions', options, CALL_KEYS);
}

export function checkCloseOptions(options: unknown): Resolved<CloseOptions> {
  checkOptionsObject('CloseOptions', options, ['graceMs']);
  const graceMs = (options as CloseOptions | undefined)?.graceMs ?? CLOSE_DEFAULTS.graceMs;
  if (typeof graceMs !== 'number' || Number.isNaN(graceMs)) {
    throw optionError('type', 'graceMs', 'a number of milliseconds', graceMs);
  }
  if (graceMs < 0 || graceMs > MAX_TIMER_MS) {
    throw optionError('range', 'graceMs', `a finite number of milliseconds >= 0 and <= ${MAX_TIMER_MS}`, graceMs);
  }
  return { graceMs };
}

function checkChannelOptions(option: string, value: unknown): void {
  if (value === undefined) return;
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw optionError('type', option, 'an object of grpc-js channel options', value);
  }
  for (const [key, v] of Object.entries(value)) {
    if (v === undefined) continue;
    const t = typeof v;
    if (key.startsWith('grpc.') && t !== 'number' && t !== 'string' && t !== 'boolean') {
      throw optionError('type', `${option}["${key}"]`, 'a number or a string (grpc channel arguments are scalars)', v);
    }
    if (t === 'number' && !Number.isFinite(v)) {
      throw optionError('range', `${option}["${key}"]`, 'a finite number', v);
    }
    if (key === 'grpc.service_config') {
      try {
        JSON.parse(String(v));
      } catch (error) {
        throw Object.assign(optionError('type', `${option}["${key}"]`, 'a JSON service config', v), { cause: error });
      }
    }
  }
}
