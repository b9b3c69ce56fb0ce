// The README's demo and every example run as a new user would run them, and say what they
// promise. (The demo runs with fewer calls than its default, to stay quick.)
import { describe, expect, it } from 'vitest';
import { CHILD_LIMIT_MS, CHILD_TEST_TIMEOUT_MS, ROOT, runNode } from './run-node.js';

const TSX = ['--import', 'tsx'];

// Each example is its own child process: they run side by side. Each child may run for
// runNode's limit (120 s; the examples took up to 66 s on a loaded 2-core runner), and the tests'
// timeout leaves room for it.
describe.concurrent('examples', { timeout: CHILD_TEST_TIMEOUT_MS }, () => {
  // The demo makes 4,000 calls and 2,001 channels: 30 s, and up to 110 s, on a loaded runner.
  it('leak demo: the naive way grows by the channel, the pool keeps one', { timeout: 2 * CHILD_LIMIT_MS + 30_000 }, async () => {
    const result = await runNode(process.execPath, ['--expose-gc', ...TSX, `${ROOT}examples/leak-demo.ts`, '2000'], 2 * CHILD_LIMIT_MS);
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    const summary = /heap growth: naive ([\d.]+) MB .* pool ([\d.-]+) MB; channels: naive (\d+), pool (\d+)/.exec(result.stdout);
    expect(summary, result.stdout).not.toBeNull();
    const [, naiveMb, poolMb, naiveChannels, poolChannels] = summary!.map(Number);
    expect(naiveChannels).toBe(2001);
    expect(poolChannels).toBe(1);
    // 2,000 orphaned channels cost well over 10 MB; the pool's growth stays small.
    expect(naiveMb).toBeGreaterThan(10);
    expect(poolMb).toBeLessThan(5);
  });

  it('quickstart: replies, a typed failure, one channel per target, a clean close', async () => {
    const result = await runNode(process.execPath, [...TSX, `${ROOT}examples/quickstart.ts`]);
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    expect(result.stdout).toContain("reply: { id: 1, name: 'user-1'");
    expect(result.stdout).toContain('failed as expected: 14 UNAVAILABLE');
    expect(result.stdout).toContain('channels: 2');
  });

  it('streaming: each call shape, early exit and a deadline', async () => {
    const result = await runNode(process.execPath, [...TSX, `${ROOT}examples/streaming.ts`]);
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    expect(result.stdout).toContain("server stream, first three of 1,000: [ 'tick-0', 'tick-1', 'tick-2' ]");
    expect(result.stdout).toContain("message: 'resilient,grpc,streams'");
    expect(result.stdout).toContain('bidi: echo: again');
    expect(result.stdout).toContain('deadline: DEADLINE_EXCEEDED');
  });

  it('metrics: serves /metrics on loopback while calls run, with go-grpc-middleware names and the retries counted', async () => {
    const result = await runNode(process.execPath, [...TSX, `${ROOT}examples/metrics.ts`, '100']);
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(/serving http:\/\/127\.0\.0\.1:\d+\/metrics/);
    expect(result.stdout).toContain('100 calls, 0 failed');
    const labels = 'grpc_type="unary",grpc_service="users.v1.UserService",grpc_method="QueryBasicInfoByID"';
    expect(result.stdout).toContain(`grpc_client_handled_total{${labels},grpc_code="OK"} 100`);
    // Ids 20, 40, 60, 80 and 100 fail once and are retried.
    expect(result.stdout).toContain(`grpc_client_attempts_total{${labels},grpc_code="Unavailable"} 5`);
    expect(result.stdout).toContain(
      'grpc_client_retries_total{grpc_service="users.v1.UserService",grpc_method="QueryBasicInfoByID",grpc_code="Unavailable"} 5',
    );
    expect(result.stdout).toContain('closed');
  });

  it('graceful shutdown: SIGTERM drains the calls in flight, refuses new ones, then ends the process', async () => {
    const result = await runNode(process.execPath, [...TSX, `${ROOT}examples/graceful-shutdown.ts`]);
    expect(result.stderr).toBe('');
    // The pool re-raised SIGTERM once closed: the process ended as SIGTERM would end it.
    expect(result.signal).toBe('SIGTERM');
    expect(result.stdout).toContain('call after SIGTERM: PoolClosedError');
    expect(result.stdout).toContain('calls in flight at SIGTERM: fulfilled, fulfilled, fulfilled, fulfilled, fulfilled');
  });
});
