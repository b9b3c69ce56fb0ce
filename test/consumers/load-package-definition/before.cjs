// @ts-check
// BEFORE: the ad hoc client this project started with, in plain CommonJS JavaScript (see
// ../grpc-tools/before.ts for what is wrong with it): the service loaded at run time, a client
// per call, a callback, a hand-made deadline, close() per call.
const grpc = require('@grpc/grpc-js');
const { UserService } = require('./service.cjs');

/**
 * @param {string} address
 * @param {number} id
 * @returns {Promise<string>}
 */
function userName(address, id) {
  const client = new UserService(address, grpc.credentials.createInsecure());
  return new Promise((resolve, reject) => {
    client.QueryBasicInfoByID({ id }, new grpc.Metadata(), { deadline: Date.now() + 20_000 }, (/** @type {grpc.ServiceError | null} */ error, /** @type {{ name: string }} */ reply) => {
      client.close();
      if (error) reject(error);
      else resolve(reply.name);
    });
  });
}

module.exports = { userName };
