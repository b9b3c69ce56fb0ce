// The package's only public surface: explicit named exports, types with `export type`.
export { ChannelPool } from './channel-pool.js';
export { StatusError, PoolClosedError, CircuitOpenError, statusName } from './errors.js';
export type { StatusErrorInit, CircuitOpenErrorInit, OptionError, OptionErrorKind } from './errors.js';
export type { BreakerOptions, BreakerState, BreakerReason, BreakerStats, BreakerStateChange } from './circuit-breaker.js';
export type {
  ChannelPoolOptions,
  ClientOptions,
  MethodOptions,
  PolicyOptions,
  CallOptions,
  CloseOptions,
  MetadataInit,
  ParentCall,
} from './options.js';
export type { PoolStats, CloseResult, PoolState, RetryEvent } from './pool-core.js';
export type { RetryOptions } from './retry-policy.js';
export type { RetryThrottlingOptions } from './retry-throttle.js';
export type { Event, Subscription } from './events.js';
export type { ChannelStats, ChannelState, ChannelStateChange, ChannelReplaced } from './pooled-channel.js';
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
