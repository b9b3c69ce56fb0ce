// The test server in a child process (entry point: test-server-child.ts), so that a client's
// measurements do not share an event loop with the server: start it, read its port, kill it.
//
// pause() freezes the server process with SIGSTOP: its connections stay open (the kernel still
// accepts and ACKs bytes) and nothing answers, no HTTP/2 PING, no SETTINGS ACK, no status, no
// FIN, no RST: a hung or stopped-the-world server. resume() sends SIGCONT; the server then
// handles what was queued meanwhile. kill() resumes a paused server first.
//
//   const server = await startTestServerProcess();
//   server.pause();   // SIGSTOP the node process that serves (server.pid)
//   server.resume();  // SIGCONT
//   await server.kill();
import { once } from 'node:events';
import { spawn, type ChildProcess } from 'node:child_process';
import type { Socket } from 'node:net';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

export interface TestServerProcess {
  readonly port: number;
  readonly address: string;
  /** The node process that serves (not the tsx wrapper that started it). */
  readonly pid: number;
  /** Whether pause() is in force. */
  readonly paused: boolean;
  /** SIGSTOP the server: connections stay open, nothing is answered. No-op when paused or killed. */
  pause(): void;
  /** SIGCONT the server after pause(). No-op when not paused. */
  resume(): void;
  /** Terminates the child (resuming it first if paused) and waits for it to exit. Callers MUST call it (e.g. in afterAll). */
  kill(): Promise<void>;
}

const SERVER_SCRIPT = fileURLToPath(new URL('./test-server-child.ts', import.meta.url));
const TSX_BIN = fileURLToPath(new URL('../../node_modules/.bin/tsx', import.meta.url));
// A `tsx` child compiles the server before it listens: a few seconds on an idle machine, and more
// than 15 s on a loaded 2-core runner (two other `npm test` runs beside this one).
const STARTUP_TIMEOUT_MS = 60_000;
const EXIT_GRACE_MS = 2_000;

/**
 * Runs the same test server in a child process (via tsx), so a benchmark's client does not
 * share its event loop with the server. Callers must call kill() when done. As safety nets,
 * the child does not keep this process alive, gets SIGTERM when this process exits, and
 * exits by itself when its stdin closes (this process died, even by SIGKILL).
 */
export async function startTestServerProcess(): Promise<TestServerProcess> {
  const child = spawn(TSX_BIN, [SERVER_SCRIPT], { stdio: ['pipe', 'pipe', 'inherit'] });
  let serverPid: number | undefined;
  let paused = false;
  const signalServer = (signal: NodeJS.Signals): void => {
    if (serverPid === undefined) return;
    try {
      process.kill(serverPid, signal);
    } catch {
      // Already gone.
    }
  };
  // SIGTERM rather than SIGKILL: the tsx wrapper relays it to the node process it runs. A
  // stopped server would keep a SIGTERM pending forever (and outlive us): SIGCONT it first.
  const killOnExit = (): void => {
    if (paused) signalServer('SIGCONT');
    child.kill('SIGTERM');
  };
  process.once('exit', killOnExit);

  let started: { port: number; pid: number };
  try {
    started = await readPort(child);
  } catch (error) {
    process.off('exit', killOnExit);
    await terminate(child);
    throw error;
  }
  // Only now: until the port arrives, the pending read is what keeps this process running.
  unref(child);
  const { port, pid } = started;
  serverPid = pid;

  let killing: Promise<void> | undefined;
  return {
    port,
    address: `127.0.0.1:${port}`,
    pid,
    get paused() {
      return paused;
    },
    pause() {
      if (paused || killing !== undefined) return;
      paused = true;
      signalServer('SIGSTOP');
    },
    resume() {
      if (!paused) return;
      paused = false;
      signalServer('SIGCONT');
    },
    kill() {
      if (paused) {
        paused = false;
        signalServer('SIGCONT');
      }
      killing ??= terminate(child).finally(() => process.off('exit', killOnExit));
      return killing;
    },
  };
}

function unref(child: ChildProcess): void {
  child.unref();
  for (const pipe of [child.stdin, child.stdout]) (pipe as Socket | null)?.unref();
}

/** Reads the child's first stdout line, `{"port":N,"pid":P}`, within a bounded time. */
async function readPort(child: ChildProcess): Promise<{ port: number; pid: number }> {
  if (!child.stdout) throw new Error('server process has no stdout');
  const lines = createInterface({ input: child.stdout });
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), STARTUP_TIMEOUT_MS);
  try {
    const [line] = (await Promise.race([
      once(lines, 'line', { signal: controller.signal }),
      once(child, 'exit', { signal: controller.signal }).then(([code]) => {
        throw new Error(`server process exited with code ${String(code)} before printing its port`);
      }),
    ])) as [string];
    const { port, pid } = JSON.parse(line) as { port?: unknown; pid?: unknown };
    if (typeof port !== 'number' || typeof pid !== 'number') throw new Error(`unexpected server process output: ${line}`);
    return { port, pid };
  } catch (error) {
    if (controller.signal.aborted) throw new Error(`server process did not report its port within ${STARTUP_TIMEOUT_MS} ms`);
    throw error;
  } finally {
    clearTimeout(timer);
    controller.abort();
    lines.close();
  }
}

/** SIGTERM, then SIGKILL if the child has not exited within EXIT_GRACE_MS. */
async function terminate(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = once(child, 'exit');
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), EXIT_GRACE_MS);
  try {
    await exited;
  } finally {
    clearTimeout(timer);
    child.stdin?.destroy();
    child.stdout?.destroy();
  }
}
