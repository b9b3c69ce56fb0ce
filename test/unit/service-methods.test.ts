import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { describe, expect, test } from 'vitest';
import { readService } from '../../src/core/service-methods.js';
import { thrown } from '../helpers/thrown.js';

// Loaded here rather than through test/helpers so the unit tests depend only on the protos.
const LOADER_OPTIONS: protoLoader.Options = { longs: Number, enums: String, defaults: true, oneofs: true };

function loadRoot(file: string): grpc.GrpcObject {
  const path = fileURLToPath(new URL(`../../protos/${file}`, import.meta.url));
  return grpc.loadPackageDefinition(protoLoader.loadSync(path, LOADER_OPTIONS));
}

function walk(root: grpc.GrpcObject, name: string): unknown {
  let node: unknown = root;
  for (const segment of name.split('.')) node = (node as Record<string, unknown>)[segment];
  return node;
}

const userRoot = loadRoot('user_service.proto');
const testRoot = loadRoot('test_service.proto');
const UserService = walk(userRoot, 'users.v1.UserService') as grpc.ServiceClientConstructor;
const TestService = walk(testRoot, 'resilient.test.v1.TestService') as grpc.ServiceClientConstructor;

describe('readService on proto-loader services', () => {
  test('a client constructor: name, path, kind, and both method names', () => {
    const info = readService(UserService);
    // loadPackageDefinition names its constructors by the last name component only
    // (`serviceName === 'UserService'`); readService reports the fully qualified name, from the path.
    expect(UserService.serviceName).toBe('UserService');
    expect(info.serviceName).toBe('users.v1.UserService');
    expect(info.methods).toHaveLength(1);
    const [method] = info.methods;
    expect(method?.path).toBe('/users.v1.UserService/QueryBasicInfoByID');
    expect(method?.kind).toBe('unary');
    expect([...(method?.names ?? [])].sort()).toEqual(['QueryBasicInfoByID', 'queryBasicInfoById']);
    expect(info.byName.get('QueryBasicInfoByID')).toBe(method);
    expect(info.byName.get('queryBasicInfoById')).toBe(method);
    expect(info.byName.get('queryBasicInfoByID')).toBeUndefined();
  });

  test('its `.service` definition reads the same, the service name taken from the path', () => {
    const info = readService(UserService.service);
    expect(info.serviceName).toBe('users.v1.UserService');
    expect(info.methods.map((m) => m.path)).toEqual(['/users.v1.UserService/QueryBasicInfoByID']);
    expect([...(info.methods[0]?.names ?? [])].sort()).toEqual(['QueryBasicInfoByID', 'queryBasicInfoById']);
  });

  test('the kind of each of the four call shapes', () => {
    const info = readService(TestService);
    expect(info.serviceName).toBe('resilient.test.v1.TestService');
    const kinds = Object.fromEntries(info.methods.map((m) => [m.path, m.kind]));
    expect(kinds).toEqual({
      '/resilient.test.v1.TestService/Echo': 'unary',
      '/resilient.test.v1.TestService/ServerStream': 'server-stream',
      '/resilient.test.v1.TestService/ClientStream': 'client-stream',
      '/resilient.test.v1.TestService/Bidi': 'bidi',
    });
    for (const [name, kind] of [
      ['echo', 'unary'],
      ['serverStream', 'server-stream'],
      ['clientStream', 'client-stream'],
      ['bidi', 'bidi'],
    ]) {
      expect(info.byName.get(name!)?.kind).toBe(kind);
    }
  });

  test('serialize is the request serializer and deserialize the response deserializer', () => {
    const method = readService(TestService).byName.get('Echo')!;
    const bytes = method.serialize({ message: 'hi', delayMs: 5 });
    expect(Buffer.isBuffer(bytes)).toBe(true);
    // EchoRequest and EchoResponse share field 1 (message); field 2 is delay_ms vs deadline_ms.
    expect(method.deserialize(bytes)).toMatchObject({ message: 'hi', deadlineMs: 5, count: 0 });
  });

  test('each service is read once', () => {
    expect(readService(UserService)).toBe(readService(UserService));
  });
});

describe('readService on generated shapes', () => {
  const userDef = UserService.service;
  const original = userDef.QueryBasicInfoByID!;
  const { originalName: _dropped, ...withoutAlias } = original;

  test('grpc-tools: keyed by the lower-cased first letter, no originalName; the proto name is added', () => {
    const info = readService({ queryBasicInfoByID: withoutAlias });
    expect([...info.methods[0]!.names].sort()).toEqual(['QueryBasicInfoByID', 'queryBasicInfoByID']);
    expect(info.serviceName).toBe('users.v1.UserService');
  });

  test('ts-proto: a makeGenericClientConstructor constructor keyed by lowerCamel names', () => {
    const Ctor = grpc.makeGenericClientConstructor({ queryBasicInfoById: withoutAlias }, 'users.v1.UserService');
    const info = readService(Ctor);
    expect(info.serviceName).toBe('users.v1.UserService');
    expect([...info.methods[0]!.names].sort()).toEqual(['QueryBasicInfoByID', 'queryBasicInfoById']);
    expect(info.methods[0]!.kind).toBe('unary');
  });
});

describe('readService rejections', () => {
  const EXPECTED =
    'a grpc-js ServiceClientConstructor (e.g. pkg.users.v1.UserService from loadPackageDefinition, or a generated UserServiceClient) or a ServiceDefinition';

  test('a package namespace gets a hint to pick the service inside it', () => {
    const error = thrown(() => readService(walk(userRoot, 'users.v1')));
    expect(error).toBeInstanceOf(TypeError);
    expect(error.code).toBe(3);
    expect(error.option).toBe('service');
    expect(error.message).toBe(
      `resilient-grpc: service must be ${EXPECTED}; this looks like a package namespace, pick a service inside it, got an object`,
    );
    expect(thrown(() => readService(userRoot)).message).toContain('pick a service inside it');
  });

  test.each([
    [42, '42'],
    [null, 'null'],
    [undefined, 'undefined'],
    ['users.v1.UserService', '"users.v1.UserService"'],
    [{}, 'an object'],
    [class NotAClient {}, 'a function (NotAClient)'],
  ])('%s is refused without the package hint', (value, shown) => {
    const error = thrown(() => readService(value));
    expect(error).toBeInstanceOf(TypeError);
    expect(error.code).toBe(3);
    expect(error.option).toBe('service');
    expect(error.message).toBe(`resilient-grpc: service must be ${EXPECTED}, got ${shown}`);
  });

  test('a definition with one malformed method is refused', () => {
    const bad = { Echo: { ...TestService.service.Echo!, requestStream: 'no' } };
    expect(thrown(() => readService(bad)).option).toBe('service');
    expect(thrown(() => readService({ Echo: TestService.service.Echo, extra: 1 })).option).toBe('service');
  });

  // A message type from loadPackageDefinition (`{ format, type, fileDescriptorProtos }`) holds
  // objects but no service constructor: it is not a package, and the hint would mislead.
  test('a message type does not get the package-namespace hint', () => {
    const error = thrown(() => readService(walk(userRoot, 'users.v1.BasicInfo')));
    expect(error).toBeInstanceOf(TypeError);
    expect(error.option).toBe('service');
    expect(error.message).toBe(`resilient-grpc: service must be ${EXPECTED}, got an object`);
  });

  test('any plain object holding objects but no service constructor gets no hint', () => {
    expect(thrown(() => readService({ config: { nested: { deep: {} } } })).message).not.toContain('package namespace');
    expect(thrown(() => readService({ handler: () => undefined })).message).not.toContain('package namespace');
  });
});
