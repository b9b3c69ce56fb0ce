// BEFORE: the ad hoc client this project started with. A client per call ("so a broken one is
// never reused"), a callback, a deadline computed by hand, and close() that is easy to forget:
// each missed close() leaves a channel with its resolver, balancer and timers behind.
import * as grpc from '@grpc/grpc-js';
import { UserServiceClient } from './gen/user_service_grpc_pb.js';
import { QueryBasicInfoByIDRequest } from './gen/user_service_pb.js';

export function userName(address: string, id: number): Promise<string> {
  const client = new UserServiceClient(address, grpc.credentials.createInsecure());
  const request = new QueryBasicInfoByIDRequest().setId(id);
  return new Promise((resolve, reject) => {
    client.queryBasicInfoByID(request, new grpc.Metadata(), { deadline: Date.now() + 20_000 }, (error, reply) => {
      client.close();
      if (error) reject(error);
      else resolve(reply.getName());
    });
  });
}
