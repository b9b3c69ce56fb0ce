// AFTER: the same function on the pool. One client for the process (the pool owns the channel),
// the deadline and retry policy in one place, `await` instead of the callback, no close() per
// call. The request and reply are the same generated message classes.
import * as grpc from '@grpc/grpc-js';
import type { ChannelPool } from 'resilient-grpc';
import { UserServiceClient } from './gen/user_service_grpc_pb.js';
import { QueryBasicInfoByIDRequest } from './gen/user_service_pb.js';

export function usersClient(pool: ChannelPool, address: string) {
  return pool.client(UserServiceClient, address, {
    credentials: grpc.credentials.createInsecure(),
    // The proto name, as in the .proto file; grpc-tools' `queryBasicInfoByID` works too.
    methods: { QueryBasicInfoByID: { deadlineMs: 20_000, idempotent: true } },
  });
}

export type UsersClient = ReturnType<typeof usersClient>;

export async function userName(users: UsersClient, id: number): Promise<string> {
  const reply = await users.QueryBasicInfoByID(new QueryBasicInfoByIDRequest().setId(id));
  return reply.getName();
}
