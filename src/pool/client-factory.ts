import { status } from '@grpc/grpc-js';
import { BoundMethod } from '../call/bound-method.js';
import { resolveBreaker } from '../config/breaker-options.js';
import type { PoolClient, ServiceLike } from '../client/client-types.js';
import type { CallOptions } from '../config/call-options.js';
import { checkClientOptions, checkMethodOptions, type ClientOptions, type MethodOptions } from '../config/client-options.js';
import { resolveEjection } from '../config/ejection-options.js';
import { resolveAdaptiveThrottling } from '../config/adaptive-throttling-options.js';
import type { PoolEngine } from './pool-engine.js';
import { checkPolicy, mergePolicy, type ResolvedPolicy } from '../config/policy.js';
import { hedgingWithDefaults, type HedgingOptions, type ResolvedHedging } from '../config/hedging-options.js';
import { readService, type MethodInfo, type ServiceInfo } from '../core/service-methods.js';
import { bidiStream, serverStream } from '../client/stream-calls.js';
import { parseTarget } from '../channel/target.js';
import { callUnary, clientStream } from '../client/unary-call.js';
import { closestName, didYouMean } from '../core/did-you-mean.js';
import { optionError } from '../core/option-error.js';
import { interceptorsFor } from '../config/interceptor-options.js';
import { mergeSwitchable } from '../config/check-helpers.js';

/**
 * Makes the promise-based client of `pool.client()`: validates everything first (so a bad option
 * creates nothing), looks up the pool's channel for the target, and binds each method of the
 * service to it with its policy, under the proto name and the lowerCamel alias.
 */
export function createClient<S extends ServiceLike>(
  engine: PoolEngine,
  service: S,
  target: string,
  options: ClientOptions | undefined,
): PoolClient<S> {
  const info = readService(service);
  const parsed = parseTarget(target);
  const opts = checkClientOptions(options);
  const clientPolicy = mergePolicy(engine.policy, checkPolicy('', opts));
  const methodPolicies = methodOptions(info, opts.methods);
  const breakerOptions = resolveBreaker(mergeSwitchable(engine.breakerOptions, opts.breaker));
  const ejection = resolveEjection(mergeSwitchable(engine.ejectionOptions, opts.endpointEjection));
  // Hedging is checked before the channel exists: a refused option creates nothing.
  const clientHedging = mergeSwitchable(engine.hedgingOptions, opts.hedging);
  const grpcOwns = engine.grpcOwnsRetriesOn(parsed, opts.channelOptions);
  const hedgings = new Map<MethodInfo, ResolvedHedging | undefined>();
  for (const method of info.methods) {
    const policy = mergePolicy(clientPolicy, methodPolicies.get(method) ?? {});
    const own = methodPolicies.get(method);
    hedgings.set(method, hedgingFor(method, policy, clientHedging, own?.hedging, own?.hedgingOption ?? 'hedging', grpcOwns));
  }
  if (opts.hedging !== undefined && opts.hedging !== false && [...hedgings.values()].every((h) => h === undefined)) {
    throw optionError(
      'range',
      'hedging',
      'set on a client with an idempotent unary or server-stream method (mark one with methods[name].idempotent: true)',
      undefined,
      `hedging on ${info.serviceName}, which has none`,
    );
  }
  const adaptive = resolveAdaptiveThrottling(mergeSwitchable(engine.adaptiveThrottling, opts.adaptiveThrottling));
  const channel = engine.channelFor(parsed, opts.credentials, opts.channelOptions, ejection, opts.healthCheck, adaptive);
  const client: Record<string, unknown> = Object.create(missingMethods(info));
  for (const method of info.methods) {
    const policy = mergePolicy(clientPolicy, methodPolicies.get(method) ?? {});
    // Its providers are asked once per method, here.
    const interceptors = interceptorsFor(opts, method);
    const fn = methodFunction(new BoundMethod(engine, channel, method, policy, breakerOptions, interceptors, hedgings.get(method)));
    for (const name of method.names) client[name] = fn;
  }
  return Object.freeze(client) as PoolClient<S>;
}

/**
 * A method's hedging: the client's (itself over the pool's) with the method's own over it.
 * The client's and the pool's apply to the idempotent unary and server-stream methods only; a
 * method's own `hedging` on any other method is refused, and so is hedging where grpc-js owns
 * retries and hedging (a service config `retryPolicy` / `hedgingPolicy`, an `xds:` target): one
 * owner per method, as for retries.
 */
function hedgingFor(
  method: MethodInfo,
  policy: ResolvedPolicy,
  clientHedging: HedgingOptions | false,
  own: HedgingOptions | false | undefined,
  option: string,
  grpcOwnsRetries: boolean,
): ResolvedHedging | undefined {
  const merged = mergeSwitchable(clientHedging, own);
  if (merged === false) return undefined;
  const eligible = policy.idempotent && (method.kind === 'unary' || method.kind === 'server-stream');
  if (!eligible) {
    if (own === undefined) return undefined;
    throw optionError(
      'range',
      option,
      'set only on an idempotent unary or server-stream method (a hedged call may run twice on the server)',
      undefined,
      `hedging on ${method.path}, ${policy.idempotent ? `a ${method.kind} method` : 'a method not marked idempotent'}`,
    );
  }
  if (grpcOwnsRetries) {
    throw optionError(
      'range',
      option,
      "left out where grpc-js owns retries and hedging (a service config retryPolicy or hedgingPolicy, an xds: target): one owner per method, or set 'grpc.enable_retries': 0",
      undefined,
      `hedging on ${method.path}`,
    );
  }
  return hedgingWithDefaults(option, merged);
}

/**
 * The prototype of a client: an own property is a method, found without it; a name the client
 * does not have ends here. A near miss of a method name (a letter's case, a typo) gives a
 * function that throws "did you mean" when called; any other name is undefined, as on a plain
 * object (so that `then`, `toJSON` and inspection probes behave as usual). Costs nothing per call.
 */
function missingMethods(info: ServiceInfo): object {
  let proto = prototypes.get(info);
  if (proto === undefined) {
    proto = missingMethodsOf(info);
    prototypes.set(info, proto);
  }
  return proto;
}

/** One prototype per service, shared by its clients. */
const prototypes = new WeakMap<ServiceInfo, object>();

function missingMethodsOf(info: ServiceInfo): object {
  return new Proxy(Object.prototype, {
    get(target, key, receiver) {
      if (typeof key !== 'string' || key in target) return Reflect.get(target, key, receiver);
      const closest = closestName(key, info.byName.keys());
      if (closest === undefined) return undefined;
      return () => {
        const error = new TypeError(`resilient-grpc: ${info.serviceName} has no method ${key}; did you mean ${closest}?`);
        throw Object.assign(error, { code: status.INVALID_ARGUMENT });
      };
    },
  });
}

/** `methods[name]` options by method; a name the service does not have is an error. */
function methodOptions(info: ServiceInfo, methods: ClientOptions['methods']): Map<MethodInfo, MethodOptions & { hedgingOption?: string }> {
  const out = new Map<MethodInfo, MethodOptions & { hedgingOption?: string }>();
  for (const [name, options] of Object.entries(methods ?? {})) {
    const method = info.byName.get(name);
    if (method === undefined) {
      const known = info.methods.map((m) => m.names[m.names.length - 1]).join(', ');
      throw optionError(
        'type',
        `methods.${name}`,
        `a method of ${info.serviceName} (${known})`,
        undefined,
        `an unknown method${didYouMean(name, info.byName.keys())}`,
      );
    }
    const checked: MethodOptions & { hedgingOption?: string } = checkMethodOptions(name, options);
    // The name the caller wrote, for an error about its hedging (see hedgingFor).
    if (checked.hedging !== undefined) checked.hedgingOption = `methods.${name}.hedging`;
    out.set(method, { ...out.get(method), ...checked });
  }
  return out;
}

function methodFunction(bound: BoundMethod): (input: unknown, options?: CallOptions) => unknown {
  switch (bound.method.kind) {
    case 'unary':
      return (request, options) => callUnary(bound, request, options);
    case 'server-stream':
      return (request, options) => serverStream(bound, request, options);
    case 'client-stream':
      return (requests, options) => clientStream(bound, requests, options);
    case 'bidi':
      return (requests, options) => bidiStream(bound, requests, options);
  }
}
