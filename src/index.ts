// The package's only public surface: explicit named exports, types with `export type`.
export { ChannelPool } from './channel-pool.js';
export { KEEPALIVE_PRESETS } from './keepalive-presets.js';
export { StatusError, PoolClosedError, CircuitOpenError, statusName } from './errors.js';
export type { StatusErrorInit, CircuitOpenErrorInit } from './errors.js';
export type { OptionError, OptionErrorKind } from './validation.js';
export type { BreakerState, BreakerReason, BreakerStats, BreakerStateChange } from './circuit-breaker.js';
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
} from './options.js';
export type { EndpointStats, EndpointEjection } from './endpoint-ejection.js';
export type { PoolStats, CloseResult, PoolState, RetryEvent, ChannelStats, ChannelState, ChannelStateChange, ChannelReplaced, ConnectTimeoutReplacement, StalledReplacement } from './pool-types.js';
export type { Event, Subscription } from './events.js';
export type { CallType, CallRefusal, CallInfo, CallStartEvent, CallEndEvent, AttemptStartEvent, AttemptEndEvent } from './call-events.js';
export type { SignalHandlers } from './shutdown-signals.js';
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
} from './client-types.js';
