import type { ChannelCredentials, ChannelOptions } from '@grpc/grpc-js';
import { optionError } from '../core/option-error.js';
import { checkBreakerOptions, type BreakerOptions } from './breaker-options.js';
import { checkChannelOptions, checkCredentials } from './channel-options.js';
import { checkOptionsObject, keysOf, type KeysOf } from './check-helpers.js';
import { checkEjectionOptions, type EndpointEjectionOptions } from './ejection-options.js';
import { checkAdaptiveThrottlingOptions, type AdaptiveThrottlingOptions } from './adaptive-throttling-options.js';
import { checkHedgingOptions, type HedgingOptions } from './hedging-options.js';
import { checkHealthCheckOptions, type HealthCheckOptions } from './health-check-options.js';
import { checkInterceptorOptions, type InterceptorFields } from './interceptor-options.js';
import { checkPolicy, POLICY_KEYS, type PolicyOptions } from './policy.js';

// The options of `pool.client(service, target, options)` and of its `methods[name]`: their types
// and their checks. A client has no defaults of its own: what it leaves unset is the pool's (the
// resolution is in pool/client-factory.ts).

/** Per-method options, under `ClientOptions.methods[name]` (proto name or lowerCamel alias). */
export interface MethodOptions extends PolicyOptions {
  /**
   * Adaptive hedging for this method, merged field by field over the client's, or `false`. Only
   * for an idempotent unary or server-stream method.
   * @throws RangeError from `pool.client()` for any other method.
   */
  hedging?: HedgingOptions | false | undefined;
}

/** The known keys of `methods[name]`. */
const METHOD_KEYS: ReadonlyArray<keyof MethodOptions> = [...POLICY_KEYS, 'hedging'];

/**
 * Options of `pool.client(service, target, options)`. `M` is the service's method names (see
 * `MethodName`), so `methods` keys are checked against the generated client; `string` for a
 * dynamic service.
 */
export interface ClientOptions<M extends string = string> extends PolicyOptions, InterceptorFields {
  /**
   * Channel credentials. Default: derived from the target: `https://host[:port]` uses TLS with
   * the system's root certificates (port 443 unless given), anything else is insecure
   * (plaintext). Create credentials once and reuse them: TLS credentials only share a channel
   * (and a TCP connection) when grpc-js's own comparison finds them equal.
   */
  credentials?: ChannelCredentials | undefined;
  /** grpc-js channel options for this client's channel, merged over the pool's. Default: `{}`. */
  channelOptions?: ChannelOptions | undefined;
  /**
   * Per-method policy, keyed by the proto method name or the generator's lowerCamel name (any
   * name the client has). Default: `{}`.
   * @throws TypeError from `pool.client()` for a name the service does not have.
   */
  methods?: { readonly [K in M]?: MethodOptions | undefined } | undefined;
  /** Circuit breaking for this client's calls, merged field by field over the pool's; `false` for none. */
  breaker?: BreakerOptions | false | undefined;
  /**
   * Adaptive hedging for this client's idempotent unary and server-stream methods, merged field
   * by field over the pool's; `false` for none. See {@link HedgingOptions}.
   */
  hedging?: HedgingOptions | false | undefined;
  /** Endpoint ejection for this client's channel, merged field by field over the pool's; `false` for none. */
  endpointEjection?: EndpointEjectionOptions | false | undefined;
  /**
   * Adaptive throttling of first attempts for this client's channel, merged field by field over
   * the pool's (`{}` turns it on with the pool's fields or the defaults); `false` for none. Part of
   * the channel's key: clients of one target with different settings get different channels, each
   * with its own throttle. See {@link AdaptiveThrottlingOptions}.
   */
  adaptiveThrottling?: AdaptiveThrottlingOptions | false | undefined;
  /**
   * Client-side health checking (gRFC A17): one `grpc.health.v1.Health/Watch` stream per
   * connected endpoint of this client's channel; an endpoint that reports NOT_SERVING or
   * SERVICE_UNKNOWN gets no new calls until it reports SERVING. A server without the health
   * service counts as serving (`pool.onEndpointHealth` reports it once per channel). `false` turns
   * it off even when the channel's service config has a `healthCheckConfig`. Default: the service
   * config's `healthCheckConfig` (`{ "serviceName": ... }`) if any, else off.
   * @throws TypeError from `pool.client()` unless `false` or `{ serviceName?: string }`.
   */
  healthCheck?: HealthCheckOptions | false | undefined;
}

/** The known keys of a client's options: the policy's, then the client's own. */
export const CLIENT_KEYS: ReadonlyArray<keyof ClientOptions> = [
  ...POLICY_KEYS,
  ...keysOf({
    credentials: true,
    channelOptions: true,
    methods: true,
    breaker: true,
    hedging: true,
    endpointEjection: true,
    adaptiveThrottling: true,
    healthCheck: true,
    interceptors: true,
    interceptor_providers: true,
  } as const satisfies KeysOf<Omit<ClientOptions, keyof PolicyOptions>>),
];

/** Validates a client's own options (its policy is checked by `checkPolicy`). */
export function checkClientOptions(options: unknown): ClientOptions {
  checkOptionsObject('ClientOptions', options, CLIENT_KEYS, undefined, perCallOnly);
  const opts = (options ?? {}) as ClientOptions;
  checkChannelOptions('channelOptions', opts.channelOptions);
  checkBreakerOptions('breaker', opts.breaker);
  checkHedgingOptions('hedging', opts.hedging);
  checkEjectionOptions('endpointEjection', opts.endpointEjection);
  checkAdaptiveThrottlingOptions('adaptiveThrottling', opts.adaptiveThrottling);
  checkHealthCheckOptions('healthCheck', opts.healthCheck);
  checkCredentials(opts.credentials);
  checkInterceptorOptions('', opts);
  if (opts.methods !== undefined && (typeof opts.methods !== 'object' || opts.methods === null || Array.isArray(opts.methods))) {
    throw optionError('type', 'methods', 'an object keyed by method name', opts.methods);
  }
  return opts;
}

/** The error for a call option given to a client, with where it goes, else undefined. */
function perCallOnly(key: string): Error | undefined {
  if (key !== 'waitForReady' && key !== 'signal' && key !== 'metadata') return undefined;
  return optionError(
    'type',
    `ClientOptions.${key}`,
    'given per call (the last argument of each method), not on the client',
    undefined,
    'a call option',
  );
}

/** Validates one `methods[name]` entry. */
export function checkMethodOptions(name: string, options: unknown): MethodOptions {
  checkOptionsObject(`methods.${name}`, options, METHOD_KEYS);
  const out: MethodOptions = checkPolicy(`methods.${name}.`, options as MethodOptions | undefined);
  const hedging = checkHedgingOptions(`methods.${name}.hedging`, (options as MethodOptions | undefined)?.hedging);
  if (hedging !== undefined) out.hedging = hedging;
  return out;
}
