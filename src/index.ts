// The package's only public surface: explicit named exports, types with `export type`.
export { ChannelPool } from './pool/channel-pool.js';
export { KEEPALIVE_PRESETS } from './channel/keepalive-presets.js';
export { StatusError, PoolClosedError, CircuitOpenError, statusName } from './core/errors.js';
export type { StatusErrorInit, CircuitOpenErrorInit } from './core/errors.js';
export type { OptionError, OptionErrorKind } from './core/option-error.js';
export type { BreakerState, BreakerReason, BreakerStats, BreakerStateChange } from './channel/circuit-breaker.js';
export type {
  ChannelPoolOptions,
  ClientOptions,
  MethodOptions,
  PolicyOptions,
  CallOptions,
  CloseOptions,
  MetadataInit,
  ParentCall,
  RetryOptions,
  BreakerOptions,
  RetryThrottlingOptions,
  EndpointEjectionOptions,
} from './config/options.js';
export type { EndpointStats, EndpointEjection } from './channel/endpoint-ejection.js';
export type { PoolStats, CloseResult, PoolState } from './pool/pool-stats.js';
export type { ChannelStats, ChannelState, ChannelStateChange, ChannelReplaced, ConnectTimeoutReplacement, StalledReplacement } from './channel/channel-stats.js';
export type { RetryEvent } from './call/retry-event.js';
export type { Event, Subscription } from './events/events.js';
export type { CallType, CallRefusal, CallInfo, CallStartEvent, CallEndEvent, AttemptStartEvent, AttemptEndEvent } from './events/call-events.js';
export type { SignalHandlers } from './pool/shutdown-signals.js';
export type {
  PoolClient,
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
