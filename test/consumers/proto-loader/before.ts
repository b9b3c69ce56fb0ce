// BEFORE: the ad hoc client this project started with (see ../grpc-tools/before.ts for what is
// wrong with it): a client per call, a callback, a hand-made deadline, close() per call.
import * as grpc from '@grpc/grpc-js';
import { proto } from './service.js';

export function userName(address: string, id: number): Promise<string> {
  const client = new proto.users.v1.UserService(address, grpc.credentials.createInsecure());
  return new Promise((resolve, reject) => {
    client.QueryBasicInfoByID({ id }, new grpc.Metadata(), { deadline: Date.now() + 20_000 }, (error, reply) => {
      client.close();
      if (error || reply === undefined) reject(error);
      else resolve(reply.name);
    });
  });
}
