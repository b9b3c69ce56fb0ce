// AFTER: the same function on the pool: one client for the process, the policy in one place,
// `await` instead of the callback. ts-proto requests stay plain objects.
import * as grpc from '@grpc/grpc-js';
import type { ChannelPool } from 'resilient-grpc';
import { UserServiceClient } from '../../types/fixtures/ts-proto/user_service.js';

export function usersClient(pool: ChannelPool, address: string) {
  return pool.client(UserServiceClient, address, {
    credentials: grpc.credentials.createInsecure(),
    // The proto name; ts-proto's `queryBasicInfoById` works too.
    methods: { QueryBasicInfoByID: { deadlineMs: 20_000, idempotent: true } },
  });
}

export type UsersClient = ReturnType<typeof usersClient>;

export async function userName(users: UsersClient, id: number): Promise<string> {
  const reply = await users.queryBasicInfoById({ id });
  return reply.name;
}
