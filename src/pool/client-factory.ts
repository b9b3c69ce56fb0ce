import { status } from '@grpc/grpc-js';
import { BoundMethod } from '../call/bound-method.js';
import { resolveBreaker } from '../config/breaker-options.js';
import type { PoolClient, ServiceLike } from '../client/client-types.js';
import type { CallOptions } from '../config/call-options.js';
import { checkClientOptions, checkMethodOptions, type ClientOptions } from '../config/client-options.js';
import { resolveEjection } from '../config/ejection-options.js';
import { resolveAdaptiveThrottling } from '../config/adaptive-throttling-options.js';
import type { PoolEngine } from './pool-engine.js';
import { checkPolicy, mergePolicy, type PolicyOptions } from '../config/policy.js';
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
  const adaptive = resolveAdaptiveThrottling(mergeSwitchable(engine.adaptiveThrottling, opts.adaptiveThrottling));
  const channel = engine.channelFor(parsed, opts.credentials, opts.channelOptions, ejection, opts.healthCheck, adaptive);
  const client: Record<string, unknown> = Object.create(missingMethods(info));
  for (const method of info.methods) {
    const policy = mergePolicy(clientPolicy, methodPolicies.get(method) ?? {});
    // Its providers are asked once per method, here.
    const interceptors = interceptorsFor(opts, method);
    const fn = methodFunction(new BoundMethod(engine, channel, method, policy, breakerOptions, interceptors));
    for (const name of method.names) client[name] = fn;
  }
  return Object.freeze(client) as PoolClient<S>;
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
function methodOptions(info: ServiceInfo, methods: ClientOptions['methods']): Map<MethodInfo, PolicyOptions> {
  const out = new Map<MethodInfo, PolicyOptions>();
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
    out.set(method, { ...out.get(method), ...checkMethodOptions(name, options) });
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
