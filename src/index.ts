/**
 * Production-safe gRPC clients for Node.js over `@grpc/grpc-js`: a {@link ChannelPool} with one
 * channel per target, a deadline on every call, gRPC-aware retries and circuit breaking, and a
 * draining `close()`.
 * @module resilient-grpc
 */

// The package's only public surface: explicit named exports, types with `export type`.
export { ChannelPool } from './pool/channel-pool.js';
export { KEEPALIVE_PRESETS } from './channel/keepalive-presets.js';
export { StatusError, PoolClosedError, CircuitOpenError, statusName } from './core/errors.js';
export type { StatusErrorInit, CircuitOpenErrorInit } from './core/errors.js';
export type { OptionError, OptionErrorKind } from './core/option-error.js';
export type { BreakerState, BreakerReason, BreakerStats, BreakerStateChange } from './channel/circuit-breaker.js';
export type { ChannelPoolOptions } from './config/pool-options.js';
export type { ClientOptions, MethodOptions } from './config/client-options.js';
export type { PolicyOptions } from './config/policy.js';
export type { CallOptions, MetadataInit, ParentCall } from './config/call-options.js';
export type { CloseOptions } from './config/close-options.js';
export type { RetryOptions } from './config/retry-options.js';
export type { BreakerOptions } from './config/breaker-options.js';
export type { HedgingOptions } from './config/hedging-options.js';
export type { RetryBudgetOptions, RetryThrottlingOptions } from './config/throttling-options.js';
export type { AdaptiveThrottlingOptions } from './config/adaptive-throttling-options.js';
export type { AdaptiveThrottlingStats, AdaptiveThrottlingChange } from './channel/adaptive-throttle.js';
export type { EndpointEjectionOptions } from './config/ejection-options.js';
export type { EjectionReason, EndpointEjection, EndpointProbeState, EndpointStats } from './channel/endpoint-ejection.js';
export type { HealthCheckOptions } from './config/health-check-options.js';
export type { EndpointHealthChange } from './channel/health-check.js';
export type { ServingStatus } from './channel/health-service.js';
export type { PoolStats, CloseResult, PoolState } from './pool/pool-stats.js';
export type {
  ChannelStats,
  ChannelState,
  ChannelStateChange,
  ChannelReplaced,
  ConnectTimeoutReplacement,
  StalledReplacement,
  EndpointStalledReplacement,
} from './channel/channel-stats.js';
export type { RetryEvent } from './call/retry-event.js';
export type { Event, Subscription } from './events/events.js';
export type {
  CallType,
  CallRefusal,
  CallInfo,
  CallStartEvent,
  CallEndEvent,
  AttemptStartEvent,
  AttemptEndEvent,
} from './events/call-events.js';
export type { SignalHandlers } from './pool/shutdown-signals.js';
export type {
  PoolClient,
  MethodName,
  ServiceLike,
  UnaryMethod,
  ServerStreamMethod,
  ClientStreamMethod,
  BidiStreamMethod,
  UntypedMethod,
  UntypedClient,
  PromisifiedMethod,
  DefinitionMethod,
} from './client/client-types.js';
