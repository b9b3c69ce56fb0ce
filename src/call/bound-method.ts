import type { Interceptor } from '@grpc/grpc-js';
import type { CallEvents } from '../events/call-events.js';
import type { Breaker } from '../channel/circuit-breaker.js';
import { breakerKey } from '../channel/channel-breakers.js';
import type { ManagedChannel } from '../channel/managed-channel.js';
import type { BreakerOptions } from '../config/breaker-options.js';
import type { ResolvedPolicy } from '../config/policy.js';
import { resolveRetry, type ResolvedRetry } from './retry-decision.js';
import { Hedger } from './hedging.js';
import type { ResolvedHedging } from '../config/hedging-options.js';
import type { RetryEvent } from './retry-event.js';
import type { MethodInfo } from '../core/service-methods.js';
import type { Resolved } from '../config/check-helpers.js';

/** What a call needs of its pool: whether it is open, and where retries are reported. */
export interface CallPool {
  readonly isOpen: boolean;
  readonly onRetry: { readonly hasListeners: boolean; emit(event: RetryEvent): void };
  /** The call-level events (call-events.ts). */
  readonly callEvents: CallEvents;
}

/**
 * One method of one client, bound to its channel, with its policy resolved down to the method
 * level: everything about a call that is decided before the call is made.
 */
export class BoundMethod {
  /** `policy.retry` resolved for the method's idempotency and its channel's retry owner. */
  readonly retry: ResolvedRetry;
  /** The method's adaptive hedging (hedging.ts), when on: only for idempotent unary and server-stream methods. */
  readonly hedger: Hedger | undefined;
  readonly #breakerKey: string | undefined;
  readonly #targetKey: string | undefined;
  readonly #targetOptions: Resolved<BreakerOptions> | undefined;

  constructor(
    readonly pool: CallPool,
    readonly channel: ManagedChannel,
    readonly method: MethodInfo,
    readonly policy: ResolvedPolicy,
    /** Breaker options for this method, or `false` for none. */
    readonly breakerOptions: Resolved<BreakerOptions> | false,
    /** The client's grpc-js interceptors for this method (its providers' already asked), or undefined for none. */
    readonly interceptors: readonly Interceptor[] | undefined = undefined,
    /** Hedging resolved for this method (checked by the caller: see client-factory.ts), or undefined for none. */
    hedging: ResolvedHedging | undefined = undefined,
  ) {
    this.retry = this.retryFor(policy);
    this.hedger = hedging === undefined ? undefined : new Hedger(hedging);
    this.#breakerKey = breakerOptions === false ? undefined : breakerKey(method.path, breakerOptions);
    if (breakerOptions !== false && breakerOptions.scope === 'method') {
      this.#targetOptions = { ...breakerOptions, scope: 'channel' };
      // Apart from a 'channel'-scoped breaker with the same options: this one is fed differently.
      this.#targetKey = `target\n${breakerKey(method.path, this.#targetOptions)}`;
    }
  }

  /** The retry policy of a call whose own options changed the method's policy. */
  retryFor(policy: ResolvedPolicy): ResolvedRetry {
    return resolveRetry(policy.retry, policy.idempotent, this.channel.grpcOwnsRetries);
  }

  /**
   * The target's circuit, with `scope: 'method'`: one per channel, which every attempt passes
   * after its method's circuit, fed only by failures that no endpoint could take.
   */
  targetBreaker(): Breaker | undefined {
    if (this.#targetKey === undefined || this.breakerOptions === false) return undefined;
    return this.channel.breakerFor(this.#targetKey, this.method.path, this.#targetOptions!);
  }

  /**
   * The circuit breaker every attempt of this method passes (its channel's, or its own), looked
   * up per attempt: the channel may have released an idle one since.
   */
  breaker(): Breaker | undefined {
    if (this.#breakerKey === undefined || this.breakerOptions === false) return undefined;
    return this.channel.breakerFor(this.#breakerKey, this.method.path, this.breakerOptions);
  }
}
