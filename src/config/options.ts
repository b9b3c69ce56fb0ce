import type { ChannelCredentials, ChannelOptions, Metadata, MetadataValue } from '@grpc/grpc-js';

// Every public options type, and nothing else: their defaults are in defaults.ts, their checks in
// validation.ts. Types only, so every file can import them without a cycle.

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

/**
 * How failed calls are retried. Set on the pool, a client, `methods[name]` or a call; `false`
 * turns retries off at that level. Fields cascade one by one like the other policy options.
 */
export interface RetryOptions {
  /**
   * Attempts in all, the first one included: 1 means no retry. Integer from 1 to 10.
   * Default: 3.
   */
  maxAttempts?: number | undefined;
  /**
   * Upper bound of the first backoff, in ms. The n-th retry waits a random time between 0 and
   * `min(maxDelayMs, initialDelayMs * 2^(n-1))` ("full jitter"). Default: 100.
   */
  initialDelayMs?: number | undefined;
  /** Cap on any backoff, in ms. Default: 2000. */
  maxDelayMs?: number | undefined;
  /**
   * Status codes retried for every method. Default: `[status.UNAVAILABLE]`. Idempotent methods
   * also retry ABORTED, INTERNAL, UNKNOWN and (with `perAttemptTimeoutMs`) DEADLINE_EXCEEDED.
   * Allowed: UNKNOWN, DEADLINE_EXCEEDED, ABORTED, INTERNAL, UNAVAILABLE, DATA_LOSS. Codes that
   * mean the request itself is wrong (INVALID_ARGUMENT, NOT_FOUND, ...) or that the caller
   * cancelled (CANCELLED) are never retried and are refused here. RESOURCE_EXHAUSTED is not
   * listed: it is retried when, and only when, the server sends `grpc-retry-pushback-ms`.
   */
  retryableCodes?: readonly number[] | undefined;
  /**
   * Time limit of each attempt, in ms; the call's deadline still bounds them all. Each attempt
   * sends `min(perAttemptTimeoutMs, time left)` as its deadline. Default: none (each attempt may
   * use all the time left).
   */
  perAttemptTimeoutMs?: number | undefined;
}

/**
 * Circuit breaking per channel (or per method of a channel), on opossum. When too many calls in
 * the window fail, the circuit opens: calls are refused at once with `CircuitOpenError` and
 * never touch the network. After `resetTimeoutMs` one probe goes out; its outcome closes the
 * circuit or opens it again.
 */
export interface BreakerOptions {
  /** Failure rate, in percent of the calls in the window, above which the circuit opens. (0, 100]. Default: 50. */
  errorThresholdPercentage?: number | undefined;
  /** Calls the window must hold before the circuit may open. Integer >= 1. Default: 20. */
  volumeThreshold?: number | undefined;
  /** The rolling window the rate is measured over, in ms (10 buckets). >= 100. Default: 10000. */
  windowMs?: number | undefined;
  /** How long the circuit stays open before a half-open probe, in ms. Default: 10000. */
  resetTimeoutMs?: number | undefined;
  /**
   * `'method'`: one circuit per method of each channel, so one broken method refuses only its own
   * calls, plus one circuit per channel (the target's) that opens only on failures no endpoint
   * could take (no connection, every endpoint down). `'channel'`: one circuit per channel fed by
   * every attempt, the behaviour before 0.2. Default: `'method'`.
   */
  scope?: 'channel' | 'method' | undefined;
}

/**
 * Retry throttling per channel, as in gRPC's retry design (gRFC A6). A token bucket starts full
 * at `maxTokens`; every failed attempt with a retryable status takes 1 token, every successful
 * attempt gives back `tokenRatio`. While the bucket holds `maxTokens / 2` tokens or fewer, no
 * call on the channel is retried: under a total outage, calls cost one attempt each.
 */
export interface RetryThrottlingOptions {
  /** Bucket size, > 0 and <= 1000. Default: 10. */
  maxTokens?: number | undefined;
  /** Tokens returned per successful attempt, > 0 and <= 1. Default: 0.1. */
  tokenRatio?: number | undefined;
}

/**
 * Endpoint ejection for targets that can resolve to several endpoints (`dns:` names and bare
 * host names, `ipv4:`/`ipv6:` lists of two or more): the pool gives such a channel round_robin
 * load balancing under its own policy, which takes an endpoint out of rotation while its attempts
 * fail (gRFC A50's failure-percentage ejection, counted by the breaker's rule: a NOT_FOUND is a
 * success, an aborted call is not counted), and sends a retry to another endpoint than the one
 * its last attempt failed on when it can. A `loadBalancingConfig` of the user's own (in the
 * channel's `grpc.service_config`) is kept as the policy that spreads the calls, under ejection.
 * Not used for single-address targets.
 */
export interface EndpointEjectionOptions {
  /** How often failure rates are judged, in ms. Default: 1000. */
  intervalMs?: number | undefined;
  /** An endpoint whose attempts failed at this rate or more in an interval is ejected, in percent (0, 100]. Default: 50. */
  failurePercentage?: number | undefined;
  /** Attempts an endpoint needs in an interval to be judged; at least two endpoints must have them. Integer >= 1. Default: 5. */
  requestVolume?: number | undefined;
  /** How long a first ejection lasts, in ms; each further one lasts one more time this (A50). Default: 3000. */
  baseEjectionTimeMs?: number | undefined;
  /** The longest an ejection lasts, in ms. Default: 30000. */
  maxEjectionTimeMs?: number | undefined;
  /** At most this share of the endpoints is ejected at once, in percent; one ejection is always allowed. Default: 50. */
  maxEjectionPercent?: number | undefined;
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
   * scope: 'method' }`. See {@link BreakerOptions}.
   */
  breaker?: BreakerOptions | false | undefined;
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
   * is replaced by one on a new TCP connection. No keepalive ping is ever sent, so servers that
   * enforce gRFC A8 never answer with GOAWAY too_many_pings. Streams are not watched (their
   * response headers count as heard). A false alarm (the server was only slow: its answer arrives
   * on the replaced channel) costs one new connection, never a call, and doubles the channel's
   * timeout, up to 60 s. `false` turns it off. Default: 5000 (5 s). See the README's "Liveness".
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
  /** Endpoint ejection for this client's channel, merged field by field over the pool's; `false` for none. */
  endpointEjection?: EndpointEjectionOptions | false | undefined;
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
