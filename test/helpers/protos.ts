// Loads the test protos once per process and exposes their client constructors and service
// definitions. Loader options match what the library's users typically pass: camelCase
// fields (delayMs, deadlineMs, intervalMs, failCode), int64 as JS numbers, enums as strings,
// and defaults filled in so a missing field reads as 0 / '' / empty Buffer. The interfaces
// below are the messages as those options decode them.
import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';

const LOADER_OPTIONS: protoLoader.Options = {
  longs: Number,
  enums: String,
  defaults: true,
  oneofs: true,
};

export const TEST_PROTO_PATH = protoPath('test_service.proto');
export const USER_PROTO_PATH = protoPath('user_service.proto');

export const TestServiceClient = loadService(TEST_PROTO_PATH, 'resilient.test.v1.TestService');
export const UserServiceClient = loadService(USER_PROTO_PATH, 'users.v1.UserService');

export const testServiceDefinition: grpc.ServiceDefinition = TestServiceClient.service;
export const userServiceDefinition: grpc.ServiceDefinition = UserServiceClient.service;

function protoPath(file: string): string {
  return fileURLToPath(new URL(`../../protos/${file}`, import.meta.url));
}

// loadPackageDefinition returns a loosely typed tree keyed by package segments; walk it by
// the fully qualified name and check we really reached a service constructor.
function loadService(file: string, qualifiedName: string): grpc.ServiceClientConstructor {
  const root = grpc.loadPackageDefinition(protoLoader.loadSync(file, LOADER_OPTIONS));
  let node: unknown = root;
  for (const segment of qualifiedName.split('.')) {
    node = (node as Record<string, unknown> | undefined)?.[segment];
  }
  if (typeof node !== 'function' || !('service' in node)) {
    throw new Error(`${qualifiedName} is not a service in ${file}`);
  }
  return node as grpc.ServiceClientConstructor;
}

export interface EchoRequest {
  message: string;
  delayMs: number;
  payload: Buffer;
}

export interface EchoResponse {
  message: string;
  deadlineMs: number;
  count: number;
  payload: Buffer;
}

export interface StreamRequest {
  message: string;
  count: number;
  intervalMs: number;
  failCode: number;
}

export interface UserRequest {
  id: number;
}

export interface BasicInfo {
  id: number;
  name: string;
  email: string;
}
