// The deadline budget of retries on the wall clock, against a real server: every attempt takes
// 1 s and fails, the call has 3 s. The fast tier checks the same rule with fake timers
// (test/unit/call.test.ts, "settles within the deadline and never starts an attempt it cannot
// finish"); this scenario adds a real wire, where the pool judges whether another attempt fits by
// how long the last one took, so a loaded machine's delays count on both sides of that sum. At
// this scale they would have to reach about 400 ms per attempt to leave room for one attempt only.
import * as grpc from '@grpc/grpc-js';
import { describe, expect, it } from 'vitest';
import { StatusError } from '../../src/index.js';
import { TestServiceClient } from '../helpers/protos.js';
import { startServerAndPools } from '../helpers/server-and-pools.js';

describe('the deadline covers every attempt, on the wall clock', () => {
  it('settles within the deadline and never starts an attempt it cannot finish', async () => {
    const { server, newPool } = await startServerAndPools();
    const pool = newPool({ deadlineMs: 5_000, retry: { initialDelayMs: 10, maxDelayMs: 50 }, breaker: false });
    const id = 'deadline-budget';
    const metadata = { 'x-call-id': id, 'x-fail-code': String(grpc.status.UNAVAILABLE), 'x-delay-ms': '1000' };
    const client = pool.client(TestServiceClient, server.address, { retry: { maxAttempts: 10 } });
    await client.Echo({ message: 'connect' }); // so that no attempt's time includes connecting
    const startedAt = performance.now();
    const error = await client.Echo({ message: 'x' }, { metadata, deadlineMs: 3_000 }).then(
      () => undefined,
      (e: unknown) => e,
    );
    const elapsed = performance.now() - startedAt;
    expect(error).toBeInstanceOf(StatusError);
    expect((error as StatusError).code).toBe(grpc.status.UNAVAILABLE); // the last real failure, not DEADLINE_EXCEEDED
    // Within the deadline, with a second of slack for the test's own timers; ten attempts of
    // 1 s, deadline ignored, would take 10 s.
    expect(elapsed).toBeLessThan(3_000 + 1_000);
    const attempts = server.calls.filter((c) => c.callId === id);
    expect(attempts.length).toBeGreaterThanOrEqual(2);
    expect(attempts.length).toBeLessThanOrEqual(3);
    // Each attempt started with at least the 1,000 ms it needs left on its deadline.
    for (const attempt of attempts) expect(attempt.deadline - attempt.receivedAt).toBeGreaterThanOrEqual(995);
    expect(attempts.every((a) => !a.cancelled)).toBe(true);
  });
});
