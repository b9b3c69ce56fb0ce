// Quickstart: one pool for the process, one client per service, deadlines on every call.
// Run: npx tsx examples/quickstart.ts
import * as grpc from '@grpc/grpc-js';
import { ChannelPool, StatusError } from '../src/index.js';
import { loadUserService, startUserServer } from './embedded-server.js';

const server = await startUserServer();
const UserService = loadUserService();

// Pool-wide defaults: every call gets a 10 s deadline unless a client, method or call says otherwise.
const pool = new ChannelPool({ deadlineMs: 10_000 });

const users = pool.client(UserService, server.address, {
  credentials: grpc.credentials.createInsecure(),
  // The method's deadline covers connecting too (the first call dials the channel, which can take
  // seconds on a loaded machine).
  methods: { QueryBasicInfoByID: { deadlineMs: 5_000, idempotent: true } },
});

// The proto name and grpc-js's lowerCamel alias are the same method.
const info = await users.QueryBasicInfoByID({ id: 1 });
const again = await users.queryBasicInfoById({ id: 2 }, { deadlineMs: 3_000 });
console.log('reply:', info, again);

// Failures are typed: a numeric gRPC code, details, the method and the target.
const offline = pool.client(UserService, '127.0.0.1:1'); // nothing listens there
try {
  await offline.QueryBasicInfoByID({ id: 3 }, { deadlineMs: 5_000 });
} catch (error) {
  if (error instanceof StatusError) console.log('failed as expected:', error.code, grpc.status[error.code]);
  else throw error;
}

console.log('channels:', pool.stats().channels); // 2: one per target, however many clients
console.log('closed:', await pool.close({ graceMs: 5_000 }));
server.kill();
