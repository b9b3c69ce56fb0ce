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
  requestSerialize: (value: infer Req) => any;
  responseDeserialize: (bytes: any) => infer Res;
  requestStream: infer RS;
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
 * generated client or definition; dynamic services (`loadPackageDefinition`) get
 * {@link UntypedClient}. At run time every method is also reachable under its proto name and
 * grpc-js's lowerCamel alias, whichever of them the static type lists.
 */
export type PoolClient<S> = S extends abstract new (
  ...args: any[]
) => infer C
  ? string extends keyof C
    ? UntypedClient
    : { readonly [K in ServiceMethodKeys<C>]: PromisifiedMethod<C[K]> }
  : S extends ServiceDefinition
    ? [KnownKeys<S>] extends [never]
      ? UntypedClient
      : { readonly [K in KnownKeys<S>]: DefinitionMethod<S[K]> }
    : UntypedClient;

/** The declared keys of a type, without those of its index signatures (grpc-tools and
 * proto-loader-gen-types definitions extend `grpc.ServiceDefinition`, which has one). */
type KnownKeys<T> = keyof { [K in keyof T as string extends K ? never : number extends K ? never : K]: T[K] } & string;
