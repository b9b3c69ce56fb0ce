// Runs the code before and after the migration against a UserService at the address given as
// the first argument, and prints what each returned, as JSON, for test/process/consumers.test.ts.
// Run: node --import tsx main.ts 127.0.0.1:PORT
import { ChannelPool } from 'resilient-grpc';
import { userName as before } from './before.js';
import { userName as after, usersClient } from './after.js';

const address = process.argv[2];
if (address === undefined) throw new Error('usage: main.ts <address>');

const ids = [1, 2, 3];
const beforeNames: string[] = [];
for (const id of ids) beforeNames.push(await before(address, id));

const pool = new ChannelPool({ deadlineMs: 10_000 });
const users = usersClient(pool, address);
const afterNames = await Promise.all(ids.map((id) => after(users, id)));
const channels = pool.stats().channels;
const closed = await pool.close({ graceMs: 1_000 });

console.log(JSON.stringify({ before: beforeNames, after: afterNames, channels, closed: closed.drained + closed.cancelled }));
