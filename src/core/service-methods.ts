import type { MethodDefinition, ServiceDefinition } from '@grpc/grpc-js';
import { optionError } from './option-error.js';

/** The four gRPC call shapes. */
export type MethodKind = 'unary' | 'server-stream' | 'client-stream' | 'bidi';

/** What the pool needs to know about one method of a service. */
export interface MethodInfo {
  /** Every name the method is reachable under: definition key, grpc-js alias, proto name. */
  names: readonly string[];
  /** Full path, e.g. `/users.v1.UserService/QueryBasicInfoByID`. */
  path: string;
  kind: MethodKind;
  serialize: (value: unknown) => Buffer;
  deserialize: (bytes: Buffer) => unknown;
  /** The grpc-js method definition it was read from (what an interceptor provider is given). */
  definition: MethodDefinition<unknown, unknown>;
}

/** A service's methods, and the name it goes by in errors. */
export interface ServiceInfo {
  serviceName: string;
  methods: readonly MethodInfo[];
  /** Every accepted method name to its method. */
  byName: ReadonlyMap<string, MethodInfo>;
}

// Service definitions never change after they are generated or loaded: read each one once.
const cache = new WeakMap<object, ServiceInfo>();

/**
 * Reads a grpc-js `ServiceClientConstructor` (from `loadPackageDefinition`, grpc-tools or
 * ts-proto) or a `ServiceDefinition`. Each method is exposed under its definition key, its
 * grpc-js `originalName` alias when there is one (proto-loader's lowerCamel name), and the proto
 * method name taken from its path (grpc-tools definitions are keyed by the lowerCamel name only).
 */
export function readService(service: unknown): ServiceInfo {
  if ((typeof service !== 'function' && typeof service !== 'object') || service === null) {
    throw serviceError(service);
  }
  const cached = cache.get(service);
  if (cached !== undefined) return cached;

  const ctor = service as { service?: unknown; serviceName?: unknown };
  const definition = typeof service === 'function' ? ctor.service : service;
  if (typeof definition !== 'object' || definition === null || !isServiceDefinition(definition)) {
    throw serviceError(service);
  }
  const methods: MethodInfo[] = [];
  const byName = new Map<string, MethodInfo>();
  for (const [key, def] of Object.entries(definition as ServiceDefinition)) {
    const names = new Set([key]);
    if (typeof def.originalName === 'string') names.add(def.originalName);
    const protoName = def.path.slice(def.path.lastIndexOf('/') + 1);
    if (protoName) names.add(protoName);
    const info: MethodInfo = {
      names: [...names],
      path: def.path,
      kind: methodKind(def),
      serialize: def.requestSerialize as (value: unknown) => Buffer,
      deserialize: def.responseDeserialize as (bytes: Buffer) => unknown,
      definition: def,
    };
    methods.push(info);
    for (const name of info.names) if (!byName.has(name)) byName.set(name, info);
  }
  // The fully qualified name, from a method path: grpc-js gives loaded constructors the short
  // name only, and a definition has none.
  const first = methods[0]!.path;
  const serviceName = first.slice(1, Math.max(1, first.lastIndexOf('/'))) || String(ctor.serviceName);
  const info: ServiceInfo = { serviceName, methods, byName };
  cache.set(service, info);
  return info;
}

function isServiceDefinition(value: object): boolean {
  const entries = Object.values(value);
  return entries.length > 0 && entries.every(isMethodDefinition);
}

function isMethodDefinition(value: unknown): value is MethodDefinition<unknown, unknown> {
  const def = value as Partial<MethodDefinition<unknown, unknown>> | null;
  return (
    typeof def === 'object' &&
    def !== null &&
    typeof def.path === 'string' &&
    typeof def.requestSerialize === 'function' &&
    typeof def.responseDeserialize === 'function' &&
    typeof def.requestStream === 'boolean' &&
    typeof def.responseStream === 'boolean'
  );
}

function methodKind(def: MethodDefinition<unknown, unknown>): MethodKind {
  if (def.requestStream) return def.responseStream ? 'bidi' : 'client-stream';
  return def.responseStream ? 'server-stream' : 'unary';
}

/** A `loadPackageDefinition` namespace holds service constructors, directly or a level down. */
function isPackageNamespace(value: unknown, depth = 0): boolean {
  if (typeof value !== 'object' || value === null || depth > 3) return false;
  return Object.values(value).some((v) => (typeof v === 'function' && 'service' in v) || isPackageNamespace(v, depth + 1));
}

function serviceError(value: unknown): Error {
  const looksLikePackage = isPackageNamespace(value);
  return optionError(
    'type',
    'service',
    'a grpc-js ServiceClientConstructor (e.g. pkg.users.v1.UserService from loadPackageDefinition, ' +
      'or a generated UserServiceClient) or a ServiceDefinition' +
      (looksLikePackage ? '; this looks like a package namespace, pick a service inside it' : ''),
    value,
  );
}
