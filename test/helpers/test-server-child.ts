// Entry point of startTestServerProcess(): runs the test server in its own process and prints
// `{"port":N,"pid":P}` as one line on stdout (P: this node process, which a test may SIGSTOP; the
// tsx wrapper that started it is another process). It exits on SIGTERM/SIGINT, and also when stdin closes:
// the parent holds the other end of that pipe, so even a parent killed with SIGKILL takes
// this process down with it.
import { startTestServer } from './test-server.js';

// No call records: nobody can read them from another process, and they would grow its heap.
const server = await startTestServer({ keepRecords: false });
process.stdout.write(`${JSON.stringify({ port: server.port, pid: process.pid })}\n`);

let exiting = false;
async function exit(): Promise<void> {
  if (exiting) return;
  exiting = true;
  await server.kill();
  process.exit(0);
}

process.once('SIGTERM', () => void exit());
process.once('SIGINT', () => void exit());
process.stdin.once('end', () => void exit());
process.stdin.once('close', () => void exit());
process.stdin.resume();
