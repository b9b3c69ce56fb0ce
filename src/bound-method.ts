import { status } from '@grpc/grpc-js';
import { prepareCall, type PreparedCall } from './call-options.js';
import { CallRun } from './call-run.js';
import type { Breaker, BreakerOptions } from './circuit-breaker.js';
import { PoolClosedError, StatusError } from './errors.js';
import type { CallOptions, ResolvedPolicy } from './options.js';
import type { PoolCore } from './pool-core.js';
import type { PooledChannel } from './pooled-channel.js';
import { NO_RETRY, resolveRetry, type ResolvedRetry } from './retry-policy.js';
import type { MethodInfo } from './service-methods.js';
import type { Resolved } from './with-defined.js';

// A client's method bound to its channel and policy, and the admission of each call to it: the
// part of a call decided before anything is sent.

/** One method of one client, bound to its channel, with its policy resolved down to the method level. */
export interface BoundMethod {
  readonly core: PoolCore;
  readonly channel: PooledChannel;
  readonly method: MethodInfo;
  readonly policy: ResolvedPolicy;
  /** `policy.retry` resolved for the method's idempotency and its channel's retry owner. */
  readonly retry: ResolvedRetry;
  /** Breaker options for this method, or `false` for none. */
  readonly breakerOptions: Resolved<BreakerOptions> | false;
  /** The method's breaker (its channel's, or its own with `scope: 'method'`), made on first use. */
  breaker?: Breaker;
}

/** The retry policy of a call: the method's, unless the call changes retry or idempotency. */
export function retryFor(channel: PooledChannel, policy: ResolvedPolicy): ResolvedRetry {
  // One retry owner: a channel whose service config gives grpc-js a retry policy keeps ours off.
  return resolveRetry(channel.grpcOwnsRetries ? false : policy.retry, policy.idempotent);
}

/** The circuit breaker every attempt of this method passes, if any. */
export function breakerOf(bound: BoundMethod): Breaker | undefined {
  if (bound.breakerOptions === false) return undefined;
  return (bound.breaker ??= bound.channel.breakerFor(bound.method.path, bound.breakerOptions));
}

/**
 * Admission and validation common to every call shape: refuses calls on a closing pool,
 * validates the options, resolves the deadline, and checks the signal and the parent. Returns
 * the call's run, or the error to reject with; nothing has touched the network yet.
 */
export function admitCall(bound: BoundMethod, options: CallOptions | undefined, retries: boolean): CallRun | { error: unknown } {
  if (!bound.core.isOpen) return { error: new PoolClosedError(bound.method.path) };
  let prepared: PreparedCall;
  try {
    prepared = prepareCall(bound.policy, options, Date.now());
  } catch (error) {
    return { error };
  }
  if (prepared.signal?.aborted) return { error: prepared.signal.reason };
  if (prepared.parent?.cancelled) {
    return {
      error: new StatusError({
        code: status.CANCELLED,
        details: 'not started: its parent call was already cancelled',
        method: bound.method.path,
        target: bound.channel.target,
      }),
    };
  }
  const retry = !retries ? NO_RETRY : prepared.policy === bound.policy ? bound.retry : retryFor(bound.channel, prepared.policy);
  return new CallRun(bound, prepared, retry);
}
