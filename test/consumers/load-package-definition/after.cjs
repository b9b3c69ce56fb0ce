// @ts-check
// AFTER: the same function on the pool, in plain CommonJS: one client for the process, the
// policy in one place, `await` instead of the callback. A dynamic service gives an untyped
// client (any method name); call options are still type-checked.
const grpc = require('@grpc/grpc-js');
const { UserService } = require('./service.cjs');

/**
 * @param {import('resilient-grpc').ChannelPool} pool
 * @param {string} address
 */
function usersClient(pool, address) {
  return pool.client(UserService, address, {
    credentials: grpc.credentials.createInsecure(),
    methods: { QueryBasicInfoByID: { deadlineMs: 20_000, idempotent: true } },
  });
}

/**
 * @param {ReturnType<typeof usersClient>} users
 * @param {number} id
 * @returns {Promise<string>}
 */
async function userName(users, id) {
  const reply = await users.QueryBasicInfoByID({ id });
  return reply.name;
}

module.exports = { usersClient, userName };
