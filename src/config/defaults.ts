import { status, type ChannelOptions } from '@grpc/grpc-js';
import type { BreakerOptions, CloseOptions, EndpointEjectionOptions, ResolvedPolicy, RetryOptions, RetryThrottlingOptions } from './options.js';
import type { Resolved } from './with-defined.js';

// One defaults table per options type, applied field by field with `??` (never by truthiness:
// a 0 or false the user set is kept). The README's option tables quote these values.

/** Defaults of the cascading policy (pool, client, method, call). */
export const POLICY_DEFAULTS: Readonly<ResolvedPolicy> = {
  deadlineMs: 10_000,
  idempotent: false,
  retry: {},
};

/** Defaults of `retry` (`perAttemptTimeoutMs` has none: an attempt may use all the time left). */
export const RETRY_DEFAULTS = {
  maxAttempts: 3,
  initialDelayMs: 100,
  maxDelayMs: 2_000,
  retryableCodes: [status.UNAVAILABLE],
} as const satisfies Resolved<Omit<RetryOptions, 'perAttemptTimeoutMs'>>;

/** Defaults of `breaker`. */
export const BREAKER_DEFAULTS = {
  errorThresholdPercentage: 50,
  volumeThreshold: 20,
  windowMs: 10_000,
  resetTimeoutMs: 10_000,
  scope: 'method',
} as const satisfies Resolved<BreakerOptions>;

/** Defaults of `endpointEjection`: from two endpoints up, a sick one is out within about 2 s. */
export const EJECTION_DEFAULTS = {
  intervalMs: 1_000,
  failurePercentage: 50,
  requestVolume: 5,
  baseEjectionTimeMs: 3_000,
  maxEjectionTimeMs: 30_000,
  maxEjectionPercent: 50,
} as const satisfies Resolved<EndpointEjectionOptions>;

/** Defaults of `retryThrottling` (gRFC A6's example values). */
export const THROTTLE_DEFAULTS = {
  maxTokens: 10,
  tokenRatio: 0.1,
} as const satisfies Resolved<RetryThrottlingOptions>;

/** Defaults of `close()`. */
export const CLOSE_DEFAULTS = {
  graceMs: 10_000,
} as const satisfies Resolved<CloseOptions>;

/** Pool-wide defaults that are not part of the cascading policy. */
export const POOL_DEFAULTS = {
  /** The connect watchdog: the gRPC connection-backoff spec's MIN_CONNECT_TIMEOUT. */
  connectTimeoutMs: 20_000,
  /** The stall detector (stall-detector.ts): silence on a READY channel while unary calls wait. */
  stallTimeoutMs: 5_000,
  /** DNS re-resolution (refreshing-resolver.ts); grpc-js's own minimum time between resolutions. */
  dnsRefreshMs: 30_000,
} as const;

/** Channel options the pool sets on every channel unless the user sets them. */
export const POOL_CHANNEL_DEFAULTS: ChannelOptions = {
  // One retry owner: a DNS TXT record must not be able to switch grpc-js retries on underneath
  // ours. A service config passed explicitly in `grpc.service_config` still applies.
  'grpc.service_config_disable_resolution': 1,
};
