// Graceful shutdown: SIGTERM stops new calls, lets in-flight ones finish within graceMs,
// cancels the rest, closes every channel, and then lets the signal end the process as it
// would have without us (exit code 143 for SIGTERM).
// Run: npx tsx examples/graceful-shutdown.ts
import { ChannelPool, PoolClosedError } from '../src/index.js';
import { loadUserService, startUserServer } from './embedded-server.js';

const server = await startUserServer({ delayMs: 200 });
const pool = new ChannelPool({ deadlineMs: 5_000 });
const users = pool.client(loadUserService(), server.address);

// One line for the whole process: close on SIGTERM or SIGINT, with 10 s for in-flight calls
// (keep it under the orchestrator's own grace period: 30 s by default in Kubernetes). An
// application that adds its own SIGTERM listener decides itself when to exit.
pool.closeOnSignals(['SIGTERM', 'SIGINT'], { graceMs: 10_000 });

const inFlight = Array.from({ length: 5 }, (_, i) => users.QueryBasicInfoByID({ id: i }));
setTimeout(() => process.kill(process.pid, 'SIGTERM'), 50); // as an orchestrator would
// A signal is handled on a later turn of the event loop than the kill() that sent it: wait (at
// most 10 s) until the pool has seen it, rather than for a fixed time a busy machine can overrun.
for (let waitedMs = 0; pool.state === 'open' && waitedMs < 10_000; waitedMs += 10) {
  await new Promise((resolve) => setTimeout(resolve, 10));
}
console.log('after SIGTERM the pool is', pool.state); // closing: draining the calls in flight

await users.QueryBasicInfoByID({ id: 99 }, { deadlineMs: 1_000 }).catch((error: unknown) => {
  // Started after the signal: refused at once, without touching the network.
  console.log('call after SIGTERM:', error instanceof PoolClosedError ? 'PoolClosedError' : error);
});
const results = await Promise.allSettled(inFlight);
console.log('calls in flight at SIGTERM:', results.map((r) => r.status).join(', ')); // all fulfilled
server.kill();
// Once the pool has closed, SIGTERM is raised again and the process ends with code 143.
