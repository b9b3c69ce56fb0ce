// Type tests for `pool.client()`: what a user gets from each generated-client shape. Nothing here
// runs; vitest's typecheck mode (tsc with the repo tsconfig) checks every assertion. A
// `@ts-expect-error` that stops erroring fails the run, so each one guards a real type error.
import type * as grpc from '@grpc/grpc-js';
import { describe, expectTypeOf, test } from 'vitest';
import type {
  AdaptiveThrottlingOptions,
  AdaptiveThrottlingStats,
  ChannelPool,
  ChannelPoolOptions,
  ChannelStats,
  StatusError,
  CallOptions,
  MethodName,
  MetadataInit,
  ParentCall,
  RetryOptions,
  UntypedClient,
  UntypedMethod,
} from '../../src/index.js';

// (a) proto-loader-gen-types output (generated .ts, see fixtures/README.md).
import type { ProtoGrpcType as PlUserProto } from './fixtures/proto-loader/user_service.js';
import type { ProtoGrpcType as PlTestProto } from './fixtures/proto-loader/test_service.js';
import type { QueryBasicInfoByIDRequest as PlUserReq } from './fixtures/proto-loader/users/v1/QueryBasicInfoByIDRequest.js';
import type { BasicInfo__Output as PlBasicInfo } from './fixtures/proto-loader/users/v1/BasicInfo.js';
import type { EchoRequest as PlEchoReq } from './fixtures/proto-loader/resilient/test/v1/EchoRequest.js';
import type { EchoResponse__Output as PlEchoRes } from './fixtures/proto-loader/resilient/test/v1/EchoResponse.js';
import type { StreamRequest as PlStreamReq } from './fixtures/proto-loader/resilient/test/v1/StreamRequest.js';

// (b) ts-proto `outputServices=grpc-js` (declaration form, see the files' header).
import {
  UserServiceClient as TpUserClient,
  UserServiceService as TpUserService,
  type QueryBasicInfoByIDRequest as TpUserReq,
  type BasicInfo as TpBasicInfo,
} from './fixtures/ts-proto/user_service.js';
import {
  TestServiceClient as TpTestClient,
  TestServiceService as TpTestService,
  type EchoRequest as TpEchoReq,
  type EchoResponse as TpEchoRes,
  type StreamRequest as TpStreamReq,
} from './fixtures/ts-proto/test_service.js';

// (c) grpc-tools + grpc_tools_node_protoc_ts, grpc-js mode (hand-written in the generator's shape).
import { UserServiceClient as GtUserClient, UserServiceService as GtUserService } from './fixtures/grpc-tools/user_service_grpc_pb.js';
import { TestServiceClient as GtTestClient } from './fixtures/grpc-tools/test_service_grpc_pb.js';
import type { QueryBasicInfoByIDRequest as GtUserReq, BasicInfo as GtBasicInfo } from './fixtures/grpc-tools/user_service_pb.js';
import type {
  EchoRequest as GtEchoReq,
  EchoResponse as GtEchoRes,
  StreamRequest as GtStreamReq,
} from './fixtures/grpc-tools/test_service_pb.js';

declare const pool: ChannelPool;
declare const plUserProto: PlUserProto;
declare const plTestProto: PlTestProto;
declare const request: GtUserReq;
declare const dynamic: grpc.ServiceClientConstructor;
declare const parent: grpc.ServerUnaryCall<unknown, unknown>;

// The four promise-based shapes, spelled out rather than through the library's own aliases, so
// a change to an alias that changes what users see fails here.
type Unary<Req, Res> = (request: Req, options?: CallOptions) => Promise<Res>;
type ServerStream<Req, Res> = (request: Req, options?: CallOptions) => AsyncIterable<Res>;
type ClientStream<Req, Res> = (requests: AsyncIterable<Req> | Iterable<Req>, options?: CallOptions) => Promise<Res>;
type Bidi<Req, Res> = (requests: AsyncIterable<Req> | Iterable<Req>, options?: CallOptions) => AsyncIterable<Res>;

describe('proto-loader-gen-types client constructor', () => {
  const users = pool.client(plUserProto.users.v1.UserService, 'localhost:1');
  const tests = pool.client(plTestProto.resilient.test.v1.TestService, 'localhost:1');

  test('unary method: request type in, __Output type out, under both generated names', () => {
    expectTypeOf(users.QueryBasicInfoByID).toEqualTypeOf<Unary<PlUserReq, PlBasicInfo>>();
    expectTypeOf(users.queryBasicInfoById).toEqualTypeOf<Unary<PlUserReq, PlBasicInfo>>();
    expectTypeOf(users.QueryBasicInfoByID).parameter(0).toEqualTypeOf<PlUserReq>();
    expectTypeOf(users.QueryBasicInfoByID).returns.resolves.toEqualTypeOf<PlBasicInfo>();
    expectTypeOf(users.QueryBasicInfoByID).returns.resolves.toHaveProperty('id').toEqualTypeOf<number>();
  });

  test('the client has exactly the service methods, no grpc.Client methods', () => {
    expectTypeOf<keyof typeof users>().toEqualTypeOf<'QueryBasicInfoByID' | 'queryBasicInfoById'>();
    expectTypeOf<keyof typeof tests>().toEqualTypeOf<
      'Echo' | 'echo' | 'ServerStream' | 'serverStream' | 'ClientStream' | 'clientStream' | 'Bidi' | 'bidi'
    >();
    expectTypeOf(users).not.toHaveProperty('close');
    expectTypeOf(users).not.toHaveProperty('getChannel');
    expectTypeOf(users).not.toHaveProperty('makeUnaryRequest');
    expectTypeOf(users).not.toHaveProperty('waitForReady');
    // @ts-expect-error a pool client has no close(): the pool owns the channel
    users.close();
  });

  test('all four call shapes of TestService', () => {
    expectTypeOf(tests.Echo).toEqualTypeOf<Unary<PlEchoReq, PlEchoRes>>();
    expectTypeOf(tests.ServerStream).toEqualTypeOf<ServerStream<PlStreamReq, PlEchoRes>>();
    expectTypeOf(tests.ClientStream).toEqualTypeOf<ClientStream<PlEchoReq, PlEchoRes>>();
    expectTypeOf(tests.Bidi).toEqualTypeOf<Bidi<PlEchoReq, PlEchoRes>>();
    expectTypeOf(tests.bidi).toEqualTypeOf<Bidi<PlEchoReq, PlEchoRes>>();
  });

  test('a wrong request is a type error', () => {
    void users.QueryBasicInfoByID({ id: 1 });
    void users.QueryBasicInfoByID({ id: '9007199254740993' }); // int64 accepts a decimal string
    // @ts-expect-error id is an int64: number | string | Long, not a boolean
    void users.QueryBasicInfoByID({ id: true });
    // @ts-expect-error unknown field
    void users.QueryBasicInfoByID({ userId: 1 });
    // @ts-expect-error a StreamRequest is not an EchoRequest field set
    void tests.Echo({ intervalMs: 5 });
    // @ts-expect-error client streams take an (async) iterable of requests, not one request
    void tests.ClientStream({ message: 'x' });
  });
});

// ts-proto and grpc-tools callbacks declare the response parameter as required,
// `(error: ServiceError | null, response: BasicInfo) => void` (proto-loader-gen-types' is
// optional, `value?: T`). Unary and client-stream responses are read from that parameter, so
// both forms must give the message type, never `unknown`.
describe('ts-proto outputServices=grpc-js', () => {
  const users = pool.client(TpUserClient, 'localhost:1');
  const tests = pool.client(TpTestClient, 'localhost:1');

  test('unary method from the client constructor', () => {
    expectTypeOf(users.queryBasicInfoById).parameter(0).toEqualTypeOf<TpUserReq>();
    expectTypeOf(users.queryBasicInfoById).parameter(1).toEqualTypeOf<CallOptions | undefined>();
    expectTypeOf(users.queryBasicInfoById).toEqualTypeOf<Unary<TpUserReq, TpBasicInfo>>();
    expectTypeOf(users.queryBasicInfoById).returns.resolves.toEqualTypeOf<TpBasicInfo>();
    expectTypeOf(users.queryBasicInfoById).returns.resolves.toHaveProperty('name').toEqualTypeOf<string>();
    // ts-proto keys methods by the lowerCamel name; the proto name comes from the literal `path`
    // of the constructor's `service` definition. Both are on the client at run time.
    expectTypeOf<keyof typeof users>().toEqualTypeOf<'queryBasicInfoById' | 'QueryBasicInfoByID'>();
    expectTypeOf(users.QueryBasicInfoByID).toEqualTypeOf<Unary<TpUserReq, TpBasicInfo>>();
    expectTypeOf(users).not.toHaveProperty('close');
    expectTypeOf(users).not.toHaveProperty('getChannel');
    expectTypeOf(users).not.toHaveProperty('makeUnaryRequest');
  });

  test('all four call shapes from the client constructor', () => {
    expectTypeOf(tests.serverStream).toEqualTypeOf<ServerStream<TpStreamReq, TpEchoRes>>();
    expectTypeOf(tests.bidi).toEqualTypeOf<Bidi<TpEchoReq, TpEchoRes>>();
    expectTypeOf(tests.echo).parameter(0).toEqualTypeOf<TpEchoReq>();
    expectTypeOf(tests.clientStream).parameter(0).toEqualTypeOf<AsyncIterable<TpEchoReq> | Iterable<TpEchoReq>>();
    expectTypeOf(tests.echo).toEqualTypeOf<Unary<TpEchoReq, TpEchoRes>>();
    expectTypeOf(tests.clientStream).toEqualTypeOf<ClientStream<TpEchoReq, TpEchoRes>>();
    expectTypeOf(tests.clientStream).returns.resolves.toEqualTypeOf<TpEchoRes>();
    // The proto names, from the definition's paths.
    expectTypeOf(tests.Echo).toEqualTypeOf<Unary<TpEchoReq, TpEchoRes>>();
    expectTypeOf(tests.ServerStream).toEqualTypeOf<ServerStream<TpStreamReq, TpEchoRes>>();
    expectTypeOf(tests.ClientStream).toEqualTypeOf<ClientStream<TpEchoReq, TpEchoRes>>();
    expectTypeOf(tests.Bidi).toEqualTypeOf<Bidi<TpEchoReq, TpEchoRes>>();
  });

  test('the `*Service` definition (literal requestStream/responseStream) infers the same shapes', () => {
    const fromDef = pool.client(TpTestService, 'localhost:1');
    expectTypeOf(fromDef.echo).toEqualTypeOf<Unary<TpEchoReq, TpEchoRes>>();
    expectTypeOf(fromDef.serverStream).toEqualTypeOf<ServerStream<TpStreamReq, TpEchoRes>>();
    expectTypeOf(fromDef.clientStream).toEqualTypeOf<ClientStream<TpEchoReq, TpEchoRes>>();
    expectTypeOf(fromDef.bidi).toEqualTypeOf<Bidi<TpEchoReq, TpEchoRes>>();
    // The definition and the client constructor give the same types.
    const usersFromDef = pool.client(TpUserService, 'localhost:1');
    expectTypeOf(usersFromDef.queryBasicInfoById).toEqualTypeOf<Unary<TpUserReq, TpBasicInfo>>();
    expectTypeOf<keyof typeof usersFromDef>().toEqualTypeOf<'queryBasicInfoById' | 'QueryBasicInfoByID'>();
    expectTypeOf(usersFromDef.QueryBasicInfoByID).toEqualTypeOf<Unary<TpUserReq, TpBasicInfo>>();
    expectTypeOf(fromDef.Bidi).toEqualTypeOf<Bidi<TpEchoReq, TpEchoRes>>();
  });

  test('a wrong request is a type error', () => {
    void users.queryBasicInfoById({ id: 1 });
    // @ts-expect-error ts-proto messages have required fields (id: number)
    void users.queryBasicInfoById({});
    // @ts-expect-error forceLong=number: a string id is not accepted
    void users.queryBasicInfoById({ id: '1' });
    // @ts-expect-error payload is a Buffer
    void tests.echo({ message: 'x', delayMs: 0, payload: 'not bytes' });
  });
});

describe('grpc-tools (grpc_tools_node_protoc_ts, grpc-js)', () => {
  const users = pool.client(GtUserClient, 'localhost:1');
  const tests = pool.client(GtTestClient, 'localhost:1');

  test('unary method: google-protobuf message classes in and out', () => {
    expectTypeOf(users.queryBasicInfoByID).parameter(0).toEqualTypeOf<GtUserReq>();
    expectTypeOf(users.queryBasicInfoByID).toEqualTypeOf<Unary<GtUserReq, GtBasicInfo>>();
    expectTypeOf(users.queryBasicInfoByID).returns.resolves.toEqualTypeOf<GtBasicInfo>();
    // grpc-tools keys methods by the proto name with a lower-case first letter; the proto name
    // (what the README and the .proto file use) is that key with its first letter upper-cased.
    expectTypeOf<keyof typeof users>().toEqualTypeOf<'queryBasicInfoByID' | 'QueryBasicInfoByID'>();
    expectTypeOf(users.QueryBasicInfoByID).toEqualTypeOf<Unary<GtUserReq, GtBasicInfo>>();
    expectTypeOf<keyof typeof tests>().toEqualTypeOf<
      'echo' | 'Echo' | 'serverStream' | 'ServerStream' | 'clientStream' | 'ClientStream' | 'bidi' | 'Bidi'
    >();
    expectTypeOf(users).not.toHaveProperty('close');
    expectTypeOf(users).not.toHaveProperty('getChannel');
    expectTypeOf(users).not.toHaveProperty('makeUnaryRequest');
  });

  test('all four call shapes', () => {
    expectTypeOf(tests.serverStream).toEqualTypeOf<ServerStream<GtStreamReq, GtEchoRes>>();
    expectTypeOf(tests.serverStream).returns.toEqualTypeOf<AsyncIterable<GtEchoRes>>();
    expectTypeOf(tests.bidi).toEqualTypeOf<Bidi<GtEchoReq, GtEchoRes>>();
    expectTypeOf(tests.echo).parameter(0).toEqualTypeOf<GtEchoReq>();
    expectTypeOf(tests.clientStream).parameter(0).toEqualTypeOf<AsyncIterable<GtEchoReq> | Iterable<GtEchoReq>>();
    expectTypeOf(tests.echo).toEqualTypeOf<Unary<GtEchoReq, GtEchoRes>>();
    expectTypeOf(tests.clientStream).toEqualTypeOf<ClientStream<GtEchoReq, GtEchoRes>>();
    expectTypeOf(tests.clientStream).returns.resolves.toEqualTypeOf<GtEchoRes>();
  });

  test('a plain object is not a message instance', () => {
    void users.queryBasicInfoByID(request);
    // @ts-expect-error grpc-tools requests are jspb.Message instances, not plain objects
    void users.queryBasicInfoByID({ id: 1 });
    // @ts-expect-error the wrong message class
    void tests.serverStream(request);
  });

  test('the `*Service` definition (extends ServiceDefinition, so it has an index signature) is typed', () => {
    // IUserServiceService `extends grpc.ServiceDefinition<UntypedServiceImplementation>`, which
    // has a string index signature; its declared methods have literal requestStream/responseStream.
    const fromDef = pool.client(GtUserService, 'localhost:1');
    expectTypeOf(fromDef).not.toBeAny();
    expectTypeOf(fromDef).toEqualTypeOf<{
      readonly queryBasicInfoByID: Unary<GtUserReq, GtBasicInfo>;
      readonly QueryBasicInfoByID: Unary<GtUserReq, GtBasicInfo>;
    }>();
    expectTypeOf<keyof typeof fromDef>().toEqualTypeOf<'queryBasicInfoByID' | 'QueryBasicInfoByID'>();
    void fromDef.queryBasicInfoByID(request, { deadlineMs: 100 });
    // @ts-expect-error the index signature does not leak: an undeclared method is a type error
    void fromDef.getUser(request);
    // @ts-expect-error a plain object is not a message instance, as with the client class
    void fromDef.queryBasicInfoByID({ id: 1 });
  });
});

describe('dynamic services', () => {
  const client = pool.client(dynamic, 'localhost:1');

  test('loadPackageDefinition constructors give UntypedClient (`any`, like grpc-js dynamic clients)', () => {
    expectTypeOf<UntypedClient>().toBeAny();
    expectTypeOf(client).toBeAny();
    expectTypeOf(pool.client(dynamic.service, 'localhost:1')).toBeAny();
  });

  test('methods of a dynamic client are callable without a non-null assertion', () => {
    // Under this repo's `noUncheckedIndexedAccess`, an index-signature client would make every
    // method `... | undefined` (TS2722 "Cannot invoke an object which is possibly 'undefined'").
    void client.QueryBasicInfoByID({ id: 1 }, { deadlineMs: 100 });
    void client.queryBasicInfoById({ id: 1 });
  });

  test('proto-loader-gen-types `*Definition` (the constructor `.service`): declared keys, untyped methods', () => {
    // UserServiceDefinition `extends grpc.ServiceDefinition` (string index signature), and its
    // proto-loader MethodDefinition has `requestStream: boolean` / `responseStream: boolean`, not
    // literals: the call shape is unknown statically, so each declared method is UntypedMethod.
    const fromDef = pool.client(plUserProto.users.v1.UserService.service, 'localhost:1');
    expectTypeOf(fromDef).not.toBeAny();
    expectTypeOf<keyof typeof fromDef>().toEqualTypeOf<'QueryBasicInfoByID'>();
    expectTypeOf(fromDef.QueryBasicInfoByID).toEqualTypeOf<UntypedMethod>();
    // Call options are still checked on an untyped method.
    void fromDef.QueryBasicInfoByID({ id: 1 }, { deadlineMs: 100 });
    // @ts-expect-error unknown call option
    void fromDef.QueryBasicInfoByID({ id: 1 }, { timeoutMs: 100 });
    // @ts-expect-error only the declared methods are there (the lowerCamel alias is not declared)
    void fromDef.queryBasicInfoById({ id: 1 });
  });

  test('what is not a service is rejected at compile time', () => {
    // @ts-expect-error a package namespace is not a service
    pool.client(plUserProto.users.v1, 'localhost:1');
    // @ts-expect-error a message type is not a service
    pool.client(plUserProto.users.v1.BasicInfo, 'localhost:1');
    // @ts-expect-error the target is a string
    pool.client(TpUserClient, 50051);
  });
});

describe('hand-written ServiceDefinition with literal flags', () => {
  interface Req {
    q: string;
  }
  interface Res {
    hits: number;
  }
  const base = {
    requestSerialize: (value: Req): Buffer => Buffer.from(value.q),
    requestDeserialize: (bytes: Buffer): Req => ({ q: bytes.toString() }),
    responseSerialize: (value: Res): Buffer => Buffer.from(String(value.hits)),
    responseDeserialize: (bytes: Buffer): Res => ({ hits: Number(bytes.toString()) }),
  };
  const definition = {
    Search: { ...base, path: '/s.v1.S/Search', requestStream: false, responseStream: false },
    Watch: { ...base, path: '/s.v1.S/Watch', requestStream: false, responseStream: true },
    Upload: { ...base, path: '/s.v1.S/Upload', requestStream: true, responseStream: false },
    Chat: { ...base, path: '/s.v1.S/Chat', requestStream: true, responseStream: true },
  } as const;
  const client = pool.client(definition, 'localhost:1');

  test('each literal pair picks its shape', () => {
    expectTypeOf(client.Search).toEqualTypeOf<Unary<Req, Res>>();
    expectTypeOf(client.Watch).toEqualTypeOf<ServerStream<Req, Res>>();
    expectTypeOf(client.Upload).toEqualTypeOf<ClientStream<Req, Res>>();
    expectTypeOf(client.Chat).toEqualTypeOf<Bidi<Req, Res>>();
    expectTypeOf<keyof typeof client>().toEqualTypeOf<'Search' | 'Watch' | 'Upload' | 'Chat'>();
  });

  test('boolean (non-literal) flags give an untyped method', () => {
    const loose: { Search: { path: string; requestStream: boolean; responseStream: boolean } & typeof base } = {
      Search: { ...base, path: '/s.v1.S/Search', requestStream: false, responseStream: false },
    };
    expectTypeOf(pool.client(loose, 'localhost:1').Search).toEqualTypeOf<UntypedMethod>();
  });
});

describe('CallOptions', () => {
  const users = pool.client(TpUserClient, 'localhost:1');

  test('fields and their types', () => {
    // Every field is `?: T | undefined`, so a caller under exactOptionalPropertyTypes may pass
    // `{ deadlineMs: maybeUndefined }`.
    expectTypeOf<CallOptions>().toEqualTypeOf<{
      deadlineMs?: number | undefined;
      idempotent?: boolean | undefined;
      retry?: RetryOptions | false | undefined;
      deadline?: Date | number | undefined;
      signal?: AbortSignal | undefined;
      metadata?: MetadataInit | undefined;
      parent?: ParentCall | undefined;
      onHeader?: ((metadata: grpc.Metadata) => void) | undefined;
      onTrailer?: ((metadata: grpc.Metadata) => void) | undefined;
      interceptors?: grpc.Interceptor[] | undefined;
      interceptor_providers?: grpc.InterceptorProvider[] | undefined;
      waitForReady?: boolean | undefined;
      credentials?: grpc.CallCredentials | undefined;
    }>();
    expectTypeOf<RetryOptions>().toEqualTypeOf<{
      maxAttempts?: number | undefined;
      initialDelayMs?: number | undefined;
      maxDelayMs?: number | undefined;
      retryableCodes?: readonly number[] | undefined;
      perAttemptTimeoutMs?: number | undefined;
    }>();
    expectTypeOf<MetadataInit>().toEqualTypeOf<grpc.Metadata | Record<string, grpc.MetadataValue | grpc.MetadataValue[]>>();
  });

  test('what a call accepts', () => {
    const req = { id: 1 };
    void users.queryBasicInfoById(req, { deadline: new Date(Date.now() + 500) });
    void users.queryBasicInfoById(req, { deadline: Date.now() + 500 });
    void users.queryBasicInfoById(req, { deadlineMs: 300, idempotent: true });
    void users.queryBasicInfoById(req, { signal: AbortSignal.timeout(100) });
    void users.queryBasicInfoById(req, { metadata: { authorization: 'Bearer t', 'trace-bin': Buffer.from([1]) } });
    void users.queryBasicInfoById(req, { metadata: { 'x-multi': ['a', 'b'] } });
    // A grpc-js server call is a valid parent (its deadline and cancellation propagate).
    void users.queryBasicInfoById(req, { parent });
    void users.queryBasicInfoById(req, { retry: false });
    void users.queryBasicInfoById(req, { retry: { maxAttempts: 5, retryableCodes: [14, 8], perAttemptTimeoutMs: 200 } });
    // Explicit `undefined` means "not set", accepted under exactOptionalPropertyTypes.
    const maybe = undefined as number | undefined;
    void users.queryBasicInfoById(req, { deadlineMs: maybe, retry: undefined, metadata: undefined });
    void users.queryBasicInfoById(req, { retry: { maxAttempts: maybe } });
  });

  test('what a call rejects', () => {
    const req = { id: 1 };
    // @ts-expect-error deadline is a Date or epoch ms, not a duration string
    void users.queryBasicInfoById(req, { deadline: '5s' });
    // @ts-expect-error deadlineMs is a number
    void users.queryBasicInfoById(req, { deadlineMs: '300' });
    // @ts-expect-error grpc-js's own `host`/`credentials` call options are not pool call options
    void users.queryBasicInfoById(req, { host: 'other' });
    // @ts-expect-error unknown option (a typo of deadlineMs)
    void users.queryBasicInfoById(req, { timeoutMs: 300 });
    // @ts-expect-error signal is an AbortSignal, not an AbortController
    void users.queryBasicInfoById(req, { signal: new AbortController() });
    // @ts-expect-error metadata values are strings or Buffers
    void users.queryBasicInfoById(req, { metadata: { retries: 3 } });
    // @ts-expect-error idempotent is a boolean
    void users.queryBasicInfoById(req, { idempotent: 'yes' });
    // @ts-expect-error retry is an options object or false, not true
    void users.queryBasicInfoById(req, { retry: true });
    // @ts-expect-error maxAttempts is a number
    void users.queryBasicInfoById(req, { retry: { maxAttempts: '3' } });
    // @ts-expect-error unknown retry option (grpc-js service-config spelling)
    void users.queryBasicInfoById(req, { retry: { maxBackoff: '1s' } });
  });
});

describe('`methods` keys are the names the client has', () => {
  test('each generator: proto name and lowerCamel name accepted, anything else refused', () => {
    pool.client(GtUserClient, 'localhost:1', { methods: { QueryBasicInfoByID: { deadlineMs: 100 }, queryBasicInfoByID: {} } });
    pool.client(TpUserClient, 'localhost:1', { methods: { QueryBasicInfoByID: { idempotent: true }, queryBasicInfoById: {} } });
    pool.client(plUserProto.users.v1.UserService, 'localhost:1', { methods: { QueryBasicInfoByID: {}, queryBasicInfoById: {} } });
    pool.client(TpTestClient, 'localhost:1', { methods: { Echo: { retry: false }, bidi: { deadlineMs: 5_000 } } });
    // @ts-expect-error grpc-tools' lowerCamel name keeps `ID`: `queryBasicInfoById` is proto-loader's spelling
    pool.client(GtUserClient, 'localhost:1', { methods: { queryBasicInfoById: {} } });
    // @ts-expect-error a method the service does not have
    pool.client(TpUserClient, 'localhost:1', { methods: { GetUser: {} } });
    // @ts-expect-error a method of another service
    pool.client(plUserProto.users.v1.UserService, 'localhost:1', { methods: { Echo: {} } });
    // @ts-expect-error method options are policy options, not client options
    pool.client(TpUserClient, 'localhost:1', { methods: { queryBasicInfoById: { credentials: undefined } } });
  });

  test('a dynamic service accepts any name (checked at run time)', () => {
    pool.client(dynamic, 'localhost:1', { methods: { QueryBasicInfoByID: { deadlineMs: 100 }, anything: {} } });
  });

  test('MethodName<S> is that union', () => {
    expectTypeOf<MethodName<typeof GtUserClient>>().toEqualTypeOf<'queryBasicInfoByID' | 'QueryBasicInfoByID'>();
    expectTypeOf<MethodName<typeof TpUserService>>().toEqualTypeOf<'queryBasicInfoById' | 'QueryBasicInfoByID'>();
    expectTypeOf<MethodName<grpc.ServiceClientConstructor>>().toEqualTypeOf<string>();
  });
});

describe('adaptiveThrottling', () => {
  test('an options object or false on the pool and a client; throttled on StatusError; stats undefined when off', () => {
    expectTypeOf<ChannelPoolOptions['adaptiveThrottling']>().toEqualTypeOf<AdaptiveThrottlingOptions | false | undefined>();
    pool.client(TpUserClient, 'localhost:1', { adaptiveThrottling: { maxRejectPercent: 50 } });
    pool.client(TpUserClient, 'localhost:1', { adaptiveThrottling: false });
    // @ts-expect-error not a field of adaptiveThrottling
    pool.client(TpUserClient, 'localhost:1', { adaptiveThrottling: { k: 2 } });
    expectTypeOf<StatusError['throttled']>().toEqualTypeOf<boolean>();
    expectTypeOf<ChannelStats['adaptiveThrottling']>().toEqualTypeOf<AdaptiveThrottlingStats | undefined>();
  });
});
