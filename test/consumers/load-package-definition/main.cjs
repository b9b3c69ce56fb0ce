// @ts-check
// Runs the code before and after the migration against a UserService at the address given as
// the first argument, and prints what each returned, as JSON, for test/process/consumers.test.ts.
// Run: node main.cjs 127.0.0.1:PORT
const { ChannelPool } = require('resilient-grpc');
const before = require('./before.cjs');
const after = require('./after.cjs');

async function main() {
  const address = process.argv[2];
  if (address === undefined) throw new Error('usage: main.cjs <address>');
  const ids = [1, 2, 3];
  const beforeNames = [];
  for (const id of ids) beforeNames.push(await before.userName(address, id));

  const pool = new ChannelPool({ deadlineMs: 10_000 });
  const users = after.usersClient(pool, address);
  const afterNames = await Promise.all(ids.map((id) => after.userName(users, id)));
  const channels = pool.stats().channels;
  const closed = await pool.close({ graceMs: 1_000 });
  console.log(JSON.stringify({ before: beforeNames, after: afterNames, channels, closed: closed.drained + closed.cancelled }));
}

main().catch((error) => {
  console.error(error);
  process.exitCode = 1;
});
