// BEFORE: the ad hoc client this project started with (see ../grpc-tools/before.ts for what is
// wrong with it): a ts-proto client per call, a callback, a hand-made deadline, close() per call.
import * as grpc from '@grpc/grpc-js';
import { UserServiceClient } from '../../types/fixtures/ts-proto/user_service.js';

export function userName(address: string, id: number): Promise<string> {
  const client = new UserServiceClient(address, grpc.credentials.createInsecure());
  return new Promise((resolve, reject) => {
    client.queryBasicInfoById({ id }, new grpc.Metadata(), { deadline: Date.now() + 20_000 }, (error, reply) => {
      client.close();
      if (error) reject(error);
      else resolve(reply.name);
    });
  });
}
