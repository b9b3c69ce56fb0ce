// Prelude: `users`, a pool client of the grpc-tools UserServiceClient.
import type { PoolClient as PreludePoolClient } from 'resilient-grpc';
import type { UserServiceClient as PreludeUserServiceClient } from './gen/users/v1/user_service_grpc_pb.js';
declare const users: PreludePoolClient<typeof PreludeUserServiceClient>;
