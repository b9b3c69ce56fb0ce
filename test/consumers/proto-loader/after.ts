// AFTER: the same function on the pool: one client for the process, the policy in one place,
// `await` instead of the callback. Pass the typed constructor (not its `.service` definition,
// whose methods proto-loader-gen-types does not type by call shape).
import * as grpc from '@grpc/grpc-js';
import type { ChannelPool } from 'resilient-grpc';
import { proto } from './service.js';

export function usersClient(pool: ChannelPool, address: string) {
  return pool.client(proto.users.v1.UserService, address, {
    credentials: grpc.credentials.createInsecure(),
    methods: { QueryBasicInfoByID: { deadlineMs: 20_000, idempotent: true } },
  });
}

export type UsersClient = ReturnType<typeof usersClient>;

export async function userName(users: UsersClient, id: number): Promise<string> {
  // The proto name; proto-loader's lowerCamel `queryBasicInfoById` works too.
  const reply = await users.QueryBasicInfoByID({ id });
  return reply.name;
}
