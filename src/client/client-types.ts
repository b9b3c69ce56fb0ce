import type {
  Client,
  ClientDuplexStream,
  ClientReadableStream,
  ClientUnaryCall,
  ClientWritableStream,
  ServiceDefinition,
} from '@grpc/grpc-js';
import type { CallOptions } from '../config/call-options.js';

// Type inference for pool clients. Sources, in the order they are tried:
// - a generated client constructor (grpc-tools `*_grpc_pb.d.ts`, ts-proto `outputServices=grpc-js`,
//   `proto-loader-gen-types`): each method's shape comes from the last overload of the grpc-js
//   method on the instance (all three generators put the fullest form last);
// - a `ServiceDefinition` object with typed serializers (ts-proto's `UserServiceService`,
//   proto-loader-gen-types' `UserServiceDefinition`);
// - anything dynamic (`loadPackageDefinition` results are typed `ServiceClientConstructor`,
//   whose instance has an index signature): every method is `any`-typed.

/* eslint-disable @typescript-eslint/no-explicit-any */

/** A unary method: one request, one response. */
export type UnaryMethod<Req, Res> = (request: Req, options?: CallOptions) => Promise<Res>;
/** A server-streaming method: one request, a stream of responses. */
export type ServerStreamMethod<Req, Res> = (request: Req, options?: CallOptions) => AsyncIterable<Res>;
/** A client-streaming method: a stream of requests, one response. */
export type ClientStreamMethod<Req, Res> = (requests: AsyncIterable<Req> | Iterable<Req>, options?: CallOptions) => Promise<Res>;
/** A bidirectional-streaming method. */
export type BidiStreamMethod<Req, Res> = (requests: AsyncIterable<Req> | Iterable<Req>, options?: CallOptions) => AsyncIterable<Res>;

/** A method whose types are not known statically. */
export type UntypedMethod = (request: any, options?: CallOptions) => any;

/**
 * The client of a service whose types are not known statically (a `loadPackageDefinition`
 * result): `any`, as grpc-js's own dynamic clients are. An index signature would read as
 * "possibly undefined" on every call under `noUncheckedIndexedAccess`.
 */
export type UntypedClient = any;

type LastParameter<F> = F extends (...args: infer A) => any ? (A extends [...any[], infer L] ? L : never) : never;

// A required `value` parameter matches both generators' callbacks: ts-proto and grpc-tools declare
// `(error, response: Res)`, proto-loader-gen-types `(error, value?: Res)` (whose `undefined` is
// then removed). An optional one would not match the required form under strictFunctionTypes.
type CallbackValue<C> = C extends (error: any, value: infer R, ...rest: any[]) => any ? Exclude<R, undefined> : unknown;

/** The promise-based shape of a grpc-js client method, read from its last overload. */
export type PromisifiedMethod<F> = F extends (...args: infer A) => infer R
  ? R extends ClientDuplexStream<infer Req, infer Res>
    ? BidiStreamMethod<Req, Res>
    : R extends ClientReadableStream<infer Res>
      ? ServerStreamMethod<A[0], Res>
      : R extends ClientWritableStream<infer Req>
        ? ClientStreamMethod<Req, CallbackValue<LastParameter<F>>>
        : R extends ClientUnaryCall
          ? UnaryMethod<A[0], CallbackValue<LastParameter<F>>>
          : never
  : never;

type ServiceMethodKeys<C> = {
  [K in keyof C]-?: K extends keyof Client ? never : K extends string ? (C[K] extends (...args: any[]) => any ? K : never) : never;
}[keyof C];

/** The promise-based method shape of one `MethodDefinition`. */
export type DefinitionMethod<D> = D extends {
  /** The request type is read from the serializer's parameter. */
  requestSerialize: (value: infer Req) => any;
  /** The response type is read from the deserializer's result. */
  responseDeserialize: (bytes: any) => infer Res;
  /** Literal `true` / `false`: with `responseStream`, picks the call shape. */
  requestStream: infer RS;
  /** Literal `true` / `false`: with `requestStream`, picks the call shape. */
  responseStream: infer SS;
}
  ? [RS, SS] extends [false, false]
    ? UnaryMethod<Req, Res>
    : [RS, SS] extends [false, true]
      ? ServerStreamMethod<Req, Res>
      : [RS, SS] extends [true, false]
        ? ClientStreamMethod<Req, Res>
        : [RS, SS] extends [true, true]
          ? BidiStreamMethod<Req, Res>
          : UntypedMethod
  : UntypedMethod;

/** What `pool.client()` accepts: a grpc-js client constructor or a service definition. */
export type ServiceLike = (abstract new (...args: any[]) => Client) | ServiceDefinition;

/**
 * The promise-based client `pool.client(service, ...)` returns. Methods are typed from the
 * generated client or definition, under every name the generator's types let us know and the
 * pool answers to at run time:
 * - proto-loader-gen-types clients: the proto name and proto-loader's lowerCamel alias
 *   (`QueryBasicInfoByID`, `queryBasicInfoById`), both declared by the generator;
 * - ts-proto clients and `*Service` definitions: ts-proto's lowerCamel key (`queryBasicInfoById`)
 *   and the proto name, read from each method's literal `path`;
 * - grpc-tools clients: grpc-tools' key (`queryBasicInfoByID`) and the proto name, which is that
 *   key with its first letter upper-cased (grpc-tools lower-cases only the first letter);
 *   grpc-tools `*Service` definitions: the key and the proto name from the literal `path`;
 * - dynamic services (`loadPackageDefinition`): {@link UntypedClient}, any name.
 */
export type PoolClient<S> = S extends abstract new (
  ...args: any[]
) => infer C
  ? string extends keyof C
    ? UntypedClient
    : {
        readonly [K in ServiceMethodKeys<C> | AliasNames<C, ConstructorAliases<S, C>>]: PromisifiedMethod<
          C[Resolve<C, ConstructorAliases<S, C>, K>]
        >;
      }
  : S extends ServiceDefinition
    ? [KnownKeys<S>] extends [never]
      ? UntypedClient
      : { readonly [K in KnownKeys<S> | Exclude<keyof PathAliases<S>, KnownKeys<S>>]: DefinitionMethod<S[DefinitionKey<S, K>]> }
    : UntypedClient;

/**
 * Every method name a client of `S` has in its static type (see {@link PoolClient}): the keys
 * `ClientOptions.methods` accepts. `string` for dynamic services.
 */
export type MethodName<S> = PoolClient<S> extends infer P ? (0 extends 1 & P ? string : keyof P & string) : never;

/** The declared keys of a type, without those of its index signatures (grpc-tools and
 * proto-loader-gen-types definitions extend `grpc.ServiceDefinition`, which has one). */
type KnownKeys<T> = keyof { [K in keyof T as string extends K ? never : number extends K ? never : K]: T[K] } & string;

/** The proto method name at the end of a literal method path (`/pkg.Service/Method`); `never` for `string`. */
type ProtoName<P> = P extends `${string}/${infer Rest}` ? (Rest extends `${string}/${string}` ? ProtoName<Rest> : Rest) : never;

/** Proto name to definition key, for the definition's methods whose `path` is a literal. */
type PathAliases<D> = { [K in KnownKeys<D> as D[K] extends { path: infer P } ? ProtoName<P> : never]: K };

/** A definition's key for a name of the client: the key itself or a proto name's key. */
type DefinitionKey<D, K> = K extends KnownKeys<D> ? K : K extends keyof PathAliases<D> ? PathAliases<D>[K] : never;

/**
 * Alias to instance key, for a generated constructor. ts-proto and proto-loader-gen-types
 * constructors declare `service` (their definition): proto names come from its literal paths.
 * A grpc-tools client class declares no `service`: its keys are the proto names with the first
 * letter lower-cased, so the proto name is the key with the first letter upper-cased.
 */
type ConstructorAliases<S, C> = S extends { service: infer D }
  ? [KnownKeys<D>] extends [never]
    ? UpperFirstAliases<C>
    : { [P in keyof PathAliases<D>]: PathAliases<D>[P] }
  : UpperFirstAliases<C>;

type UpperFirstAliases<C> = {
  [K in ServiceMethodKeys<C> as K extends Uncapitalize<K> ? (Capitalize<K> extends K ? never : Capitalize<K>) : never]: K;
};

/** The alias names that are not already instance keys, and whose instance key exists. */
type AliasNames<C, A> = {
  [P in keyof A]: A[P] extends ServiceMethodKeys<C> ? (P extends ServiceMethodKeys<C> ? never : P) : never;
}[keyof A];

type Resolve<C, A, K> = K extends ServiceMethodKeys<C> ? K : K extends keyof A ? (A[K] extends keyof C ? A[K] : never) : never;
