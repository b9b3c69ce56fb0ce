// Retries that never make an outage worse: which codes, the deadline budget, pushback,
// throttling, one retry owner, and aborts or close() during a backoff.
import * as grpc from '@grpc/grpc-js';
import { beforeEach, describe, expect, it } from 'vitest';
import { Registry } from 'prom-client';
import { prometheusMetrics } from '../../src/adapters/prometheus.js';
import { ChannelPool, StatusError, type CallOptions, type RetryEvent } from '../../src/index.js';
import { TestServiceClient } from '../helpers/protos.js';
import { startServerAndPools } from '../helpers/server-and-pools.js';
import type { TestServer } from '../helpers/test-server.js';

let server: TestServer;
let pool: ChannelPool;
let callIds = 0;

beforeEach(async () => {
  const fixture = await startServerAndPools();
  server = fixture.server;
  // The breaker is off here so that these tests see the retry layer alone.
  pool = fixture.newPool({ deadlineMs: 5_000, retry: { initialDelayMs: 10, maxDelayMs: 50 }, breaker: false });
});

/** Request metadata that scripts the server, with a fresh call id. */
function script(headers: Record<string, string | number>): { id: string; metadata: Record<string, string> } {
  const id = `call-${++callIds}`;
  const metadata: Record<string, string> = { 'x-call-id': id };
  for (const [key, value] of Object.entries(headers)) metadata[`x-${key}`] = String(value);
  return { id, metadata };
}

async function failure(promise: Promise<unknown>): Promise<StatusError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(StatusError);
  return error as StatusError;
}

function echo(options?: Parameters<ChannelPool['client']>[2]) {
  return pool.client(TestServiceClient, server.address, options);
}

describe('which failures are retried', () => {
  it('succeeds on the third attempt after two UNAVAILABLE, telling the server which attempt it is', async () => {
    const { id, metadata } = script({ 'fail-times': 2 });
    await expect(echo().Echo({ message: 'hi' }, { metadata })).resolves.toMatchObject({ message: 'hi' });
    expect(server.callsFor(id)).toBe(3);
    const attempts = server.calls.filter((c) => c.callId === id);
    expect(attempts.map((c) => c.metadata.get('grpc-previous-rpc-attempts')[0])).toEqual([undefined, '1', '2']);
    expect(pool.stats().perChannel[0]).toMatchObject({ started: 1, succeeded: 1, failed: 0, retries: 2 });
  });

  it('gives up after maxAttempts with the last error, its attempt count and the earlier errors', async () => {
    const { id, metadata } = script({ 'fail-code': grpc.status.UNAVAILABLE });
    const error = await failure(echo().Echo({ message: 'hi' }, { metadata }));
    expect(server.callsFor(id)).toBe(3);
    expect(error).toMatchObject({ code: grpc.status.UNAVAILABLE, attempts: 3 });
    expect(error.previousAttempts.map((e) => [e.code, e.attempts])).toEqual([
      [grpc.status.UNAVAILABLE, 1],
      [grpc.status.UNAVAILABLE, 2],
    ]);
  });

  it('never retries INVALID_ARGUMENT or the other caller-side codes', async () => {
    for (const code of [grpc.status.INVALID_ARGUMENT, grpc.status.NOT_FOUND, grpc.status.PERMISSION_DENIED, grpc.status.CANCELLED]) {
      const { id, metadata } = script({ 'fail-code': code });
      const error = await failure(echo({ idempotent: true }).Echo({ message: 'x' }, { metadata }));
      expect(error.code).toBe(code);
      expect(error.attempts).toBe(1);
      expect(server.callsFor(id)).toBe(1);
    }
  });

  it.each([grpc.status.ABORTED, grpc.status.INTERNAL, grpc.status.UNKNOWN])('retries code %i only for idempotent methods', async (code) => {
    const plain = script({ 'fail-times': 1, 'fail-code': code });
    await failure(echo().Echo({ message: 'x' }, { metadata: plain.metadata }));
    expect(server.callsFor(plain.id)).toBe(1);

    const byMethod = script({ 'fail-times': 1, 'fail-code': code });
    await echo({ methods: { Echo: { idempotent: true } } }).Echo({ message: 'x' }, { metadata: byMethod.metadata });
    expect(server.callsFor(byMethod.id)).toBe(2);

    const byCall = script({ 'fail-times': 1, 'fail-code': code });
    await echo().Echo({ message: 'x' }, { metadata: byCall.metadata, idempotent: true });
    expect(server.callsFor(byCall.id)).toBe(2);
  });

  it('retries RESOURCE_EXHAUSTED only when the server sends pushback', async () => {
    const without = script({ 'fail-times': 1, 'fail-code': grpc.status.RESOURCE_EXHAUSTED });
    await failure(echo({ idempotent: true }).Echo({ message: 'x' }, { metadata: without.metadata }));
    expect(server.callsFor(without.id)).toBe(1);

    const withPushback = script({ 'fail-times': 1, 'fail-code': grpc.status.RESOURCE_EXHAUSTED, 'pushback-ms': 20 });
    await echo().Echo({ message: 'x' }, { metadata: withPushback.metadata });
    expect(server.callsFor(withPushback.id)).toBe(2);
  });

  it('follows retry: false and maxAttempts at every level', async () => {
    const off = script({ 'fail-times': 1 });
    await failure(echo({ retry: false }).Echo({ message: 'x' }, { metadata: off.metadata }));
    expect(server.callsFor(off.id)).toBe(1);

    const onAgain = script({ 'fail-times': 1 });
    await echo({ retry: false, methods: { Echo: { retry: { maxAttempts: 2 } } } }).Echo({ message: 'x' }, { metadata: onAgain.metadata });
    expect(server.callsFor(onAgain.id)).toBe(2);

    const perCall = script({ 'fail-code': grpc.status.UNAVAILABLE });
    await failure(echo().Echo({ message: 'x' }, { metadata: perCall.metadata, retry: { maxAttempts: 5 } }));
    expect(server.callsFor(perCall.id)).toBe(5);
  });
});

describe('the deadline covers every attempt', () => {
  // That no attempt starts that cannot finish before the deadline, and that the call settles
  // within it, is timing: test/unit/call.test.ts checks it with fake timers, and the slow tier
  // (test/chaos/deadline-budget.test.ts) on the wall clock against this server.

  it('lets a slow first attempt give way to a fast second one with perAttemptTimeoutMs', async () => {
    // A per-attempt limit of 3 s: it cuts the 10 s first attempt, and the fast second attempt
    // fits in it also when a loaded machine stalls for a second or more (the exact timing is
    // test/unit/call.test.ts's, with fake timers).
    const { id, metadata } = script({ 'delay-ms': 10_000, 'delay-times': 1 });
    const client = echo({ idempotent: true, retry: { perAttemptTimeoutMs: 3_000 } });
    await client.Echo({ message: 'connect' }); // so that the first attempt reaches the server
    const reply = await client.Echo({ message: 'fast' }, { metadata, deadlineMs: 20_000 });
    expect(reply).toMatchObject({ message: 'fast' });
    const attempts = server.calls.filter((c) => c.callId === id);
    expect(attempts).toHaveLength(2);
    // The call did not wait for the slow first attempt (10 s): it was cancelled before it answered.
    expect(attempts[0]!.cancelled).toBe(true);
    // Each attempt sends min(per-attempt timeout, time left) on the wire.
    expect(attempts[0]!.deadline - attempts[0]!.receivedAt).toBeLessThanOrEqual(3_000);
    expect(attempts[1]!.deadline - attempts[1]!.receivedAt).toBeLessThanOrEqual(3_000);
  });

  // In the next two, the channel is connected first and the limit is 1 s: the attempt reaches the
  // server before its deadline even on a loaded machine (one cut while still connecting never
  // left the client, and is another case).
  it('does not retry a per-attempt DEADLINE_EXCEEDED of a method that is not idempotent', async () => {
    const { id, metadata } = script({ 'delay-ms': 5_000, 'delay-times': 1 });
    const client = echo({ retry: { perAttemptTimeoutMs: 1_000 } });
    await client.Echo({ message: 'connect' });
    const error = await failure(client.Echo({ message: 'x' }, { metadata }));
    expect(error.code).toBe(grpc.status.DEADLINE_EXCEEDED);
    expect(server.callsFor(id)).toBe(1);
  });

  it('does not retry DEADLINE_EXCEEDED of the call deadline itself, even when idempotent', async () => {
    const { id, metadata } = script({ 'delay-ms': 5_000 });
    const client = echo({ idempotent: true });
    await client.Echo({ message: 'connect' });
    const error = await failure(client.Echo({ message: 'x' }, { metadata, deadlineMs: 1_000 }));
    expect(error.code).toBe(grpc.status.DEADLINE_EXCEEDED);
    expect(server.callsFor(id)).toBe(1);
  });
});

describe('server pushback', () => {
  it('waits exactly the pushback before the next attempt', async () => {
    // The wait the pool plans is the event's delayMs, exactly the pushback; the gap the server
    // sees is at least that, and short of a second pushback (a second of slack: the pushback is
    // 1 s so that a loaded machine's late timers stay well inside it).
    const { id, metadata } = script({ 'fail-times': 1, 'pushback-ms': 1_000 });
    const events: RetryEvent[] = [];
    pool.onRetry((event) => events.push(event));
    await echo().Echo({ message: 'x' }, { metadata });
    const [first, second] = server.calls.filter((c) => c.callId === id);
    const gap = second!.receivedAt - first!.receivedAt;
    expect(gap).toBeGreaterThanOrEqual(1_000);
    expect(gap).toBeLessThan(2 * 1_000);
    expect(events).toEqual([
      expect.objectContaining({
        attempt: 1,
        code: grpc.status.UNAVAILABLE,
        delayMs: 1_000,
        pushback: true,
        method: '/resilient.test.v1.TestService/Echo',
      }),
    ]);
  });

  it('stops retrying on a negative or malformed pushback', async () => {
    for (const value of ['-1', 'soon']) {
      const { id, metadata } = script({ 'fail-times': 1, 'pushback-ms': value });
      await failure(echo().Echo({ message: 'x' }, { metadata }));
      expect(server.callsFor(id)).toBe(1);
    }
  });

  it('does not wait for a pushback that would overrun the deadline', async () => {
    const { id, metadata } = script({ 'fail-times': 1, 'pushback-ms': 20_000 });
    const error = await failure(echo().Echo({ message: 'x' }, { metadata, deadlineMs: 10_000 }));
    // A call that waited for its deadline would end DEADLINE_EXCEEDED: this one ends with the
    // server's answer.
    expect(error.code).toBe(grpc.status.UNAVAILABLE);
    expect(server.callsFor(id)).toBe(1);
  });
});

describe('retry throttling per channel', () => {
  it('stops retrying under sustained failure and resumes after successes', async () => {
    const throttled = new ChannelPool({
      retry: { initialDelayMs: 1, maxDelayMs: 1 },
      retryThrottling: { maxTokens: 10, tokenRatio: 1 },
      breaker: false,
    });
    try {
      const client = throttled.client(TestServiceClient, server.address);
      const failing = async (): Promise<number> => {
        const { id, metadata } = script({ 'fail-code': grpc.status.UNAVAILABLE });
        await failure(client.Echo({ message: 'x' }, { metadata }));
        return server.callsFor(id);
      };
      // 10 tokens: the first call makes 3 attempts (10 → 7), the second 2 (→ 5: no more retries).
      expect(await failing()).toBe(3);
      expect(await failing()).toBe(2);
      for (let i = 0; i < 5; i++) expect(await failing()).toBe(1);
      const stats = throttled.stats().perChannel[0]!;
      expect(stats.throttledRetries).toBe(6);
      expect(stats.retryTokens).toBe(0);

      // Successes give back tokenRatio (1) each. A failure takes its token before the retry
      // is decided, so 7 tokens (7 successes) are needed for the next failure to be retried.
      for (let i = 0; i < 7; i++) await client.Echo({ message: 'ok' });
      expect(throttled.stats().perChannel[0]!.retryTokens).toBe(7);
      const { id, metadata } = script({ 'fail-times': 1 });
      await client.Echo({ message: 'x' }, { metadata });
      expect(server.callsFor(id)).toBe(2);
    } finally {
      await throttled.close({ graceMs: 0 });
    }
  });

  it('the retry budget pays for the retries the bucket refuses while they work, and stops when they fail', async () => {
    // A bucket of 1 token refuses every retry (one failure leaves 0, and retries need > 0.5):
    // every retry here is the budget's, with no timing involved.
    const run = async (retryBudget: false | undefined) => {
      const budgetPool = new ChannelPool({
        retry: { initialDelayMs: 1, maxDelayMs: 1, maxAttempts: 5 },
        retryThrottling: { maxTokens: 1, tokenRatio: 0.001 },
        retryBudget,
        breaker: false,
      });
      try {
        const client = budgetPool.client(TestServiceClient, server.address);
        // The first success: the budget's reserve counts from now on.
        await client.Echo({ message: 'warm-up' });
        // 10 calls whose first attempt fails, and whose retry is served: each retry the budget
        // pays for succeeds and gives its token back.
        let ok = 0;
        for (let i = 0; i < 10; i++) {
          const { metadata } = script({ 'fail-times': 1 });
          ok += await client.Echo({ message: 'x' }, { metadata }).then(
            () => 1,
            () => 0,
          );
        }
        // The adapters report what the budget paid for.
        const registry = new Registry();
        const metrics = prometheusMetrics(budgetPool, { registry });
        const exposed = (await registry.getSingleMetricAsString('grpc_client_retries_budget_total')).split('\n').at(-1);
        metrics.dispose();
        const partial = { ok, exposed, ...budgetPool.stats().perChannel[0]! };
        // Then a total outage: 10 calls failing every attempt.
        const before = server.calls.length;
        for (let i = 0; i < 10; i++) {
          await failure(client.Echo({ message: 'x' }, { metadata: script({ 'fail-code': grpc.status.UNAVAILABLE }).metadata }));
        }
        return { partial, outageAttempts: server.calls.length - before, after: budgetPool.stats().perChannel[0]! };
      } finally {
        await budgetPool.close({ graceMs: 0 });
      }
    };
    const withBudget = await run(undefined);
    console.info(
      `retry budget: 10 calls failing once, ${withBudget.partial.ok} succeeded (${withBudget.partial.budgetRetries} retries paid by the budget); ` +
        `then 10 calls failing every attempt (maxAttempts 5): ${withBudget.outageAttempts} attempts, ` +
        `${withBudget.after.budgetRetries - withBudget.partial.budgetRetries} retries paid by the budget`,
    );
    expect(withBudget.partial).toMatchObject({ ok: 10, retries: 10, budgetRetries: 10, throttledRetries: 0 });
    expect(withBudget.partial.exposed).toMatch(/^grpc_client_retries_budget_total\{grpc_target="[^"]+"\} 10$/);
    // In the outage it pays for as many failed retries as had worked within its window (10),
    // and one more (it stops once the failed outnumber them), then for none.
    expect(withBudget.after.budgetRetries - withBudget.partial.budgetRetries).toBeLessThanOrEqual(11);
    expect(withBudget.outageAttempts).toBeLessThanOrEqual(10 + 11);
    // The control: the bucket alone refuses every one of those retries.
    const bucketOnly = await run(false);
    expect(bucketOnly.partial).toMatchObject({ ok: 0, retries: 0, budgetRetries: 0, throttledRetries: 10, retryBudget: undefined });
    expect(bucketOnly.outageAttempts).toBe(10);
  });

  it('bounds the amplification of a total outage', async () => {
    // 200 calls, one after the other (500 took up to 30 s, the test timeout, on a loaded runner):
    // the throttle lets a fixed handful of retries through before its tokens fall below half
    // (maxTokens 10), well under 5 % of them.
    const client = echo({ retry: { maxAttempts: 5 } });
    const calls = 200;
    const before = server.calls.length;
    for (let i = 0; i < calls; i++) {
      await failure(client.Echo({ message: 'x' }, { metadata: { 'x-fail-code': String(grpc.status.UNAVAILABLE) } }));
    }
    const attempts = server.calls.length - before;
    // Without throttling this would be 5 attempts per call.
    const perCall = attempts / calls;
    console.info(`total outage: ${calls} calls, ${attempts} attempts, ${perCall.toFixed(3)} attempts per call (maxAttempts 5)`);
    expect(perCall).toBeLessThan(1.05);
  });
});

describe('one retry owner', () => {
  it('leaves retries to grpc-js when the service config has a retryPolicy', async () => {
    const serviceConfig = {
      methodConfig: [
        {
          name: [{ service: 'resilient.test.v1.TestService' }],
          retryPolicy: {
            maxAttempts: 4,
            initialBackoff: '0.01s',
            maxBackoff: '0.05s',
            backoffMultiplier: 2,
            retryableStatusCodes: ['UNAVAILABLE'],
          },
        },
      ],
    };
    const client = echo({ channelOptions: { 'grpc.service_config': JSON.stringify(serviceConfig) }, retry: { maxAttempts: 3 } });
    const { id, metadata } = script({ 'fail-code': grpc.status.UNAVAILABLE });
    await failure(client.Echo({ message: 'x' }, { metadata }));
    // grpc-js's 4 attempts, not 4 x 3.
    expect(server.callsFor(id)).toBe(4);
    expect(pool.stats().perChannel[0]).toMatchObject({ grpcOwnsRetries: true, retries: 0 });
  });

  it("gives retries to the pool with grpc.enable_retries 0, even beside a service config's retryPolicy", async () => {
    const serviceConfig = {
      methodConfig: [
        {
          name: [{ service: 'resilient.test.v1.TestService' }],
          retryPolicy: {
            maxAttempts: 4,
            initialBackoff: '0.01s',
            maxBackoff: '0.05s',
            backoffMultiplier: 2,
            retryableStatusCodes: ['UNAVAILABLE'],
          },
        },
      ],
    };
    const client = echo({
      channelOptions: { 'grpc.service_config': JSON.stringify(serviceConfig), 'grpc.enable_retries': 0 },
      retry: { maxAttempts: 3 },
    });
    const { id, metadata } = script({ 'fail-code': grpc.status.UNAVAILABLE });
    await failure(client.Echo({ message: 'x' }, { metadata }));
    // Our 3 attempts, not 3 x 4: grpc-js applies no retry policy on this channel.
    expect(server.callsFor(id)).toBe(3);
    expect(pool.stats().perChannel[0]).toMatchObject({ grpcOwnsRetries: false, retries: 2 });
  });

  it('turns off service config lookup in DNS on every pool channel', async () => {
    // grpc-js reads this option when it resolves the target; it is part of the channel key too.
    const client = echo();
    await client.Echo({ message: 'x' });
    const other = echo({ channelOptions: { 'grpc.service_config_disable_resolution': 1 } });
    await other.Echo({ message: 'y' });
    expect(pool.stats().channels).toBe(1);
  });
});

describe('abort and close during a backoff', () => {
  /**
   * Starts a call whose first attempt fails with a 20 s pushback; resolves once it is sleeping.
   * "At once" below is within 5 s: a quarter of the sleep, and slack for a loaded machine.
   */
  async function sleepingCall(options: CallOptions = {}): Promise<{ pending: Promise<StatusError | unknown>; id: string }> {
    const { id, metadata } = script({ 'fail-times': 1, 'pushback-ms': 20_000 });
    const retried = new Promise<void>((resolve) => {
      const subscription = pool.onRetry(() => {
        subscription.dispose();
        resolve();
      });
    });
    const pending = echo()
      .Echo({ message: 'x' }, { ...options, metadata, deadlineMs: 30_000 })
      .then(
        () => 'resolved',
        (e: unknown) => e,
      );
    await retried;
    return { pending, id };
  }

  it('settles at once when the caller aborts during the sleep', async () => {
    const controller = new AbortController();
    const { pending, id } = await sleepingCall({ signal: controller.signal });
    const reason = new Error('caller gave up');
    const abortedAt = performance.now();
    controller.abort(reason);
    expect(await pending).toBe(reason);
    // A call that slept on would take the 20 s pushback.
    expect(performance.now() - abortedAt).toBeLessThan(5_000);
    expect(server.callsFor(id)).toBe(1);
    expect(pool.stats().inFlight).toBe(0);
  });

  it('settles at once with the last error when the pool closes during the sleep', async () => {
    const { pending, id } = await sleepingCall();
    const closedAt = performance.now();
    const result = await pool.close({ graceMs: 10_000 });
    // A close that waited for the sleep would take its 10 s grace period, then cancel.
    expect(performance.now() - closedAt).toBeLessThan(5_000);
    const error = (await pending) as StatusError;
    expect(error).toBeInstanceOf(StatusError);
    expect(error).toMatchObject({ code: grpc.status.UNAVAILABLE, attempts: 1 });
    // close() ended it in its backoff, so it counts as cancelled, not drained.
    expect(result).toMatchObject({ drained: 0, cancelled: 1 });
    expect(server.callsFor(id)).toBe(1);
  });
});

describe('onRetry', () => {
  it('reports each retry, and a throwing listener never breaks the call', async () => {
    const events: RetryEvent[] = [];
    const throwing = pool.onRetry(() => {
      throw new Error('listener bug');
    });
    const recording = pool.onRetry((event) => events.push(event));
    const { metadata } = script({ 'fail-times': 2 });
    await expect(echo().Echo({ message: 'x' }, { metadata })).resolves.toMatchObject({ message: 'x' });
    expect(events.map((e) => [e.attempt, e.code, e.target])).toEqual([
      [1, grpc.status.UNAVAILABLE, server.address],
      [2, grpc.status.UNAVAILABLE, server.address],
    ]);
    expect(events.every((e) => e.delayMs >= 0 && e.delayMs <= 50 && !e.pushback)).toBe(true);
    recording.dispose();
    throwing.dispose();
    await echo().Echo({ message: 'x' }, { metadata: script({ 'fail-times': 1 }).metadata });
    expect(events).toHaveLength(2);
  });
});
