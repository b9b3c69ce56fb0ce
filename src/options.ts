import type { ChannelCredentials, ChannelOptions, Metadata, MetadataValue } from '@grpc/grpc-js';
import { checkDurationMs, MAX_TIMER_MS } from './deadline.js';
import { optionError } from './errors.js';

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
  deadlineMs?: number;
  /**
   * The method is safe to run more than once (a read, or a write keyed by an idempotency key).
   * Retries of idempotent methods may cover more status codes. Default: false.
   */
  idempotent?: boolean;
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
  channelOptions?: ChannelOptions;
}

/** Options of `pool.client(service, target, options)`. */
export interface ClientOptions extends PolicyOptions {
  /**
   * Channel credentials. Default: derived from the target: `https://host[:port]` uses TLS with
   * the system's root certificates (port 443 unless given), anything else is insecure
   * (plaintext). Create credentials once and reuse them: TLS credentials only share a channel
   * (and a TCP connection) when grpc-js's own comparison finds them equal.
   */
  credentials?: ChannelCredentials;
  /** grpc-js channel options for this client's channel, merged over the pool's. Default: `{}`. */
  channelOptions?: ChannelOptions;
  /** Per-method policy, keyed by the proto method name or its lowerCamel alias. Default: `{}`. */
  methods?: Record<string, MethodOptions>;
}

/** Metadata for one call: a grpc-js `Metadata`, or a plain object of keys to values. */
export type MetadataInit = Metadata | Record<string, MetadataValue | MetadataValue[]>;

/** Options of one call, the last argument of every client method. */
export interface CallOptions extends PolicyOptions {
  /**
   * Absolute deadline: a `Date`, or epoch milliseconds as in grpc-js (`Date.now() + 500`, never
   * `500`). Must be in the future. Wins over every `deadlineMs`; do not pass both on one call.
   */
  deadline?: Date | number;
  /** Cancels the call; the promise then rejects with `signal.reason`. */
  signal?: AbortSignal;
  /** Request metadata (headers). */
  metadata?: MetadataInit;
  /**
   * A grpc-js server call this call is made on behalf of: the call's deadline becomes the
   * earlier of its own and the parent's, and the call is cancelled when the parent is.
   */
  parent?: ParentCall;
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
  graceMs?: number;
}

/** What {@link PolicyOptions} resolve to once every level is applied. */
export interface ResolvedPolicy {
  deadlineMs: number;
  idempotent: boolean;
}

/** Defaults of the cascading policy. */
export const POLICY_DEFAULTS = {
  deadlineMs: 10_000,
  idempotent: false,
} as const satisfies Required<PolicyOptions>;

/** Defaults of `close()`. */
export const CLOSE_DEFAULTS = {
  graceMs: 10_000,
} as const satisfies Required<CloseOptions>;

const POLICY_KEYS = ['deadlineMs', 'idempotent'] as const;
const POOL_KEYS: readonly string[] = [...POLICY_KEYS, 'channelOptions'];
const CLIENT_KEYS: readonly string[] = [...POLICY_KEYS, 'credentials', 'channelOptions', 'methods'];
const CALL_KEYS: ReadonlySet<string> = new Set([...POLICY_KEYS, 'deadline', 'signal', 'metadata', 'parent']);

/** Throws unless `value` is a plain options object (or undefined); rejects unknown keys. */
export function checkOptionsObject(
  option: string,
  value: unknown,
  known: ReadonlySet<string> | readonly string[],
): asserts value is Record<string, unknown> | undefined {
  if (value === undefined) return;
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw optionError('type', option, 'an options object', value);
  }
  const has = Array.isArray(known) ? (key: string) => known.includes(key) : (key: string) => (known as ReadonlySet<string>).has(key);
  for (const key of Object.keys(value)) {
    if (!has(key)) {
      const list = [...known].join(', ');
      throw optionError('type', `${option}.${key}`, `one of the known options (${list})`, undefined, 'an unknown option');
    }
  }
}

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
  return out;
}

/** Applies `over` on top of `base`, field by field (an unset field keeps the base value). */
export function mergePolicy<T extends PolicyOptions>(base: Required<PolicyOptions>, over: T): ResolvedPolicy {
  return {
    deadlineMs: over.deadlineMs ?? base.deadlineMs,
    idempotent: over.idempotent ?? base.idempotent,
  };
}

export function checkPoolOptions(options: unknown): ChannelPoolOptions {
  checkOptionsObject('ChannelPoolOptions', options, POOL_KEYS);
  const opts = (options ?? {}) as ChannelPoolOptions;
  checkChannelOptions('channelOptions', opts.channelOptions);
  return opts;
}

export function checkClientOptions(options: unknown): ClientOptions {
  checkOptionsObject('ClientOptions', options, CLIENT_KEYS);
  const opts = (options ?? {}) as ClientOptions;
  checkChannelOptions('channelOptions', opts.channelOptions);
  if (opts.methods !== undefined && (typeof opts.methods !== 'object' || opts.methods === null || Array.isArray(opts.methods))) {
    throw optionError('type', 'methods', 'an object keyed by method name', opts.methods);
  }
  return opts;
}

export function checkCallOptionKeys(options: object): void {
  checkOptionsObject('CallOptions', options, CALL_KEYS);
}

export function checkCloseOptions(options: unknown): Required<CloseOptions> {
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
  }
}
