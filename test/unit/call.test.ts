import { Metadata, connectivityState, credentials, status, type Interceptor } from '@grpc/grpc-js';
import { afterEach, beforeEach, describe, expect, test, vi } from 'vitest';
import { BoundMethod, type CallPool } from '../../src/call/bound-method.js';
import { admitCall } from '../../src/call/admission.js';
import { Call } from '../../src/call/call.js';
import { CallEvents } from '../../src/events/call-events.js';
import { resolveBreaker, type BreakerOptions } from '../../src/config/breaker-options.js';
import { POLICY_DEFAULTS } from '../../src/config/policy.js';
import { CircuitOpenError, StatusError } from '../../src/core/errors.js';
import { EventSource } from '../../src/events/events.js';
import { ManagedChannel, type ChannelContext } from '../../src/channel/managed-channel.js';
import type { CallOptions } from '../../src/config/call-options.js';
import { mergePolicy, type PolicyOptions } from '../../src/config/policy.js';
import type { RetryEvent } from '../../src/call/retry-event.js';
import type { Resolved } from '../../src/config/check-helpers.js';
import { channelContext, fakeFactory } from '../helpers/fake-channel.js';
import { METHOD, scripted, scriptedClient, TARGET, wire, type Sender } from '../helpers/scripted-wire.js';

// The life of a unary call with fake timers: a scripted grpc-js client plays the wire (each
// makeUnaryRequest answers as the script says), a ManagedChannel on a fake factory keeps the
// counters, Math.random is fixed so the backoff is known.

let context: ChannelContext;
let channel: ManagedChannel;
let pool: CallPool & { isOpen: boolean; onRetry: EventSource<RetryEvent> };
let retries: RetryEvent[];

function bind(policy: PolicyOptions = {}, breaker: BreakerOptions | false = false): BoundMethod {
  const breakerOptions = breaker === false ? false : (resolveBreaker(breaker) as Resolved<BreakerOptions>);
  return new BoundMethod(pool, channel, METHOD, mergePolicy(POLICY_DEFAULTS, policy), breakerOptions);
}

/** Admits and runs one unary call on the scripted wire; returns the call and its (already handled) promise. */
function call(bound: BoundMethod, send: Sender, options?: CallOptions) {
  wire.send = send;
  const run = admitCall(bound, 'message', {}, options);
  if (!(run instanceof Call)) throw run.error;
  const promise = run.response();
  const result = { settled: false, value: undefined as unknown, error: undefined as unknown };
  promise.then(
    (value) => Object.assign(result, { settled: true, value }),
    (error: unknown) => Object.assign(result, { settled: true, error }),
  );
  return { run, promise, result };
}

beforeEach(() => {
  vi.useFakeTimers();
  vi.setSystemTime(new Date('2030-01-01T00:00:00Z'));
  // Full jitter draws random() * ceiling: 0.5 makes the first backoff 50 ms with the defaults.
  vi.spyOn(Math, 'random').mockReturnValue(0.5);
  context = channelContext(fakeFactory(scriptedClient).factory);
  channel = new ManagedChannel(TARGET, credentials.createInsecure(), {}, context);
  pool = { isOpen: true, onRetry: new EventSource<RetryEvent>('onRetry'), callEvents: new CallEvents() };
  retries = [];
  pool.onRetry.subscribe((event) => retries.push(event));
});

afterEach(() => {
  channel.close();
  context.rotation.close();
  vi.restoreAllMocks();
  vi.useRealTimers();
});

describe('success', () => {
  test('one attempt, with the call deadline on the wire; counted as started and succeeded', async () => {
    const { send, sent } = scripted({ afterMs: 20 });
    const started = Date.now();
    const { promise } = call(bind({ deadlineMs: 1_000 }), send);
    expect(channel.snapshot()).toMatchObject({ inFlight: 1, started: 1 });
    await vi.advanceTimersByTimeAsync(20);
    await expect(promise).resolves.toEqual({ attempt: 1 });
    expect(sent).toHaveLength(1);
    expect(sent[0]?.options.deadline).toBe(started + 1_000);
    expect(sent[0]?.metadata.get('grpc-previous-rpc-attempts')).toEqual([]);
    expect(channel.snapshot()).toMatchObject({ inFlight: 0, started: 1, succeeded: 1, failed: 0, retries: 0 });
    expect(vi.getTimerCount()).toBe(0);
  });
});

describe("grpc-js's caller stack", () => {
  // grpc-js captures Error.stackTraceLimit frames of its caller on every call; the pool's own
  // frames tell nobody anything, so it makes its calls with the limit at 0 and restores it.
  test('each attempt is made with Error.stackTraceLimit 0, and the limit is restored after it, also when grpc-js throws', async () => {
    const before = Error.stackTraceLimit;
    Error.stackTraceLimit = 17;
    try {
      const seen: number[] = [];
      const { send } = scripted({ afterMs: 5, code: status.UNAVAILABLE }, { afterMs: 5 });
      const recording: Sender = (options, metadata, callback) => {
        seen.push(Error.stackTraceLimit);
        return send(options, metadata, callback);
      };
      const { promise } = call(bind({ idempotent: true }), recording);
      expect(Error.stackTraceLimit).toBe(17);
      await vi.advanceTimersByTimeAsync(1_000);
      await expect(promise).resolves.toEqual({ attempt: 2 });
      expect(seen).toEqual([0, 0]);
      expect(Error.stackTraceLimit).toBe(17);

      const throwing: Sender = () => {
        seen.push(Error.stackTraceLimit);
        throw new Error('Channel has been shut down');
      };
      const failed = call(bind(), throwing);
      await expect(failed.promise).rejects.toMatchObject({ code: status.UNAVAILABLE });
      expect(seen).toEqual([0, 0, 0]);
      expect(Error.stackTraceLimit).toBe(17);
    } finally {
      Error.stackTraceLimit = before;
    }
  });

  test("with the caller's interceptors, which run inside the grpc-js call, grpc-js is called with the limit as it was", async () => {
    const passThrough: Interceptor = (options, nextCall) => nextCall(options) as never;
    const bound = new BoundMethod(pool, channel, METHOD, mergePolicy(POLICY_DEFAULTS, {}), false, [passThrough]);
    const seen: number[] = [];
    const { send } = scripted({ afterMs: 5 });
    const { promise } = call(bound, (options, metadata, callback) => {
      seen.push(Error.stackTraceLimit);
      return send(options, metadata, callback);
    });
    await vi.advanceTimersByTimeAsync(5);
    await promise;
    expect(seen).toEqual([Error.stackTraceLimit]);
    expect(seen[0]).toBeGreaterThan(0);
  });

  test("with a call-events listener's scope around the attempt, grpc-js is called with the limit as it was", async () => {
    const events = pool.callEvents;
    const sub = events.onAttemptStart.subscribe((event) => {
      event.scope = (start) => start();
    });
    try {
      const seen: number[] = [];
      const { send } = scripted({ afterMs: 5 });
      const { promise } = call(bind(), (options, metadata, callback) => {
        seen.push(Error.stackTraceLimit);
        return send(options, metadata, callback);
      });
      await vi.advanceTimersByTimeAsync(5);
      await promise;
      expect(seen).toEqual([Error.stackTraceLimit]);
      expect(seen[0]).toBeGreaterThan(0);
    } finally {
      sub.dispose();
    }
  });
});

describe('what grpc-js is handed', () => {
  const own: Interceptor = (options, nextCall) => nextCall(options) as never;
  const clients: Interceptor = (options, nextCall) => nextCall(options) as never;

  test('a call without interceptors or call credentials: its deadline alone, nothing made for them', async () => {
    const { send, sent } = scripted({ afterMs: 1 });
    const { promise } = call(bind(), send, { deadlineMs: 500 });
    await vi.advanceTimersByTimeAsync(1);
    await promise;
    expect(Object.keys(sent[0]!.options)).toEqual(['deadline']);
  });

  // The scripted wire does not run interceptors (grpc-js does: test/integration/interceptors.test.ts).
  test("the client's interceptors with the pool's tap innermost; a call's own replace them", async () => {
    const bound = new BoundMethod(pool, channel, METHOD, mergePolicy(POLICY_DEFAULTS, {}), false, [clients]);
    const { send, sent } = scripted({ afterMs: 1 });
    const { promise } = call(bound, send);
    await vi.advanceTimersByTimeAsync(1);
    await promise;
    expect(sent[0]!.options.interceptors).toHaveLength(2);
    expect(sent[0]!.options.interceptors?.[0]).toBe(clients);
    expect(sent[0]!.options.credentials).toBeUndefined();

    const callCredentials = credentials.createFromMetadataGenerator((_p, cb) => cb(null, new Metadata()));
    const second = scripted({ afterMs: 1 });
    const { promise: replaced } = call(bound, second.send, { interceptors: [own], credentials: callCredentials });
    await vi.advanceTimersByTimeAsync(1);
    await replaced;
    expect(second.sent[0]!.options.interceptors?.[0]).toBe(own);
    expect(second.sent[0]!.options.interceptors).toHaveLength(2);
    expect(second.sent[0]!.options.credentials).toBe(callCredentials);
  });
});

describe('retries', () => {
  test('an UNAVAILABLE attempt is retried after the jittered backoff, with grpc-previous-rpc-attempts', async () => {
    const { send, sent } = scripted({ afterMs: 10, code: status.UNAVAILABLE }, { afterMs: 10 });
    const { promise, result } = call(bind(), send);
    await vi.advanceTimersByTimeAsync(10);
    expect(retries).toEqual([
      {
        target: TARGET,
        method: METHOD.path,
        attempt: 1,
        code: status.UNAVAILABLE,
        details: 'scripted 14',
        delayMs: 50,
        pushback: false,
        callId: 0,
      },
    ]);
    // In the backoff: no second attempt yet.
    await vi.advanceTimersByTimeAsync(49);
    expect(sent).toHaveLength(1);
    await vi.advanceTimersByTimeAsync(1);
    expect(sent).toHaveLength(2);
    expect(sent[1]?.startedAt).toBe(sent[0]!.startedAt + 10 + 50);
    expect(sent[1]?.metadata.get('grpc-previous-rpc-attempts')).toEqual(['1']);
    await vi.advanceTimersByTimeAsync(10);
    expect(result.settled).toBe(true);
    await expect(promise).resolves.toEqual({ attempt: 2 });
    // The failed attempt's token comes back once its retry succeeded (issue #11): 10 - 1 + 1 + 0.1, capped at 10.
    expect(channel.snapshot()).toMatchObject({ started: 1, succeeded: 1, failed: 0, retries: 1, retryTokens: 10 });
  });

  test('the backoff doubles per retry (full jitter of initialDelayMs * 2^(n-1)), capped by maxDelayMs', async () => {
    const { send, sent } = scripted({ afterMs: 0, code: status.UNAVAILABLE });
    const { promise } = call(bind({ retry: { maxAttempts: 4, initialDelayMs: 100, maxDelayMs: 300 } }), send);
    await vi.advanceTimersByTimeAsync(1_000);
    await expect(promise).rejects.toBeInstanceOf(StatusError);
    expect(retries.map((r) => r.delayMs)).toEqual([50, 100, 150]);
    expect(sent).toHaveLength(4);
  });

  test('when every attempt fails, the last error carries the attempts and the earlier errors', async () => {
    const { send, sent } = scripted({ afterMs: 5, code: status.UNAVAILABLE });
    const { promise } = call(bind(), send);
    await vi.advanceTimersByTimeAsync(1_000);
    const error = (await promise.catch((e: unknown) => e)) as StatusError;
    expect(error).toBeInstanceOf(StatusError);
    expect(error).toMatchObject({ code: status.UNAVAILABLE, attempts: 3, method: METHOD.path, target: TARGET });
    expect(error.previousAttempts.map((e) => e.attempts)).toEqual([1, 2]);
    expect(sent).toHaveLength(3);
    expect(channel.snapshot()).toMatchObject({ started: 1, succeeded: 0, failed: 1, retries: 2 });
    expect(vi.getTimerCount()).toBe(0);
  });

  test('a status that is not retryable fails at once', async () => {
    const { send, sent } = scripted({ afterMs: 5, code: status.NOT_FOUND });
    const { promise } = call(bind(), send);
    await vi.advanceTimersByTimeAsync(5);
    await expect(promise).rejects.toMatchObject({ code: status.NOT_FOUND, attempts: 1 });
    expect(sent).toHaveLength(1);
    expect(retries).toEqual([]);
  });

  test('server pushback replaces the backoff', async () => {
    const { send, sent } = scripted(
      { afterMs: 0, code: status.UNAVAILABLE, trailers: { 'grpc-retry-pushback-ms': '700' } },
      { afterMs: 0 },
    );
    const { promise, result } = call(bind(), send);
    await vi.advanceTimersByTimeAsync(699);
    expect(sent).toHaveLength(1);
    expect(retries[0]).toMatchObject({ delayMs: 700, pushback: true });
    await vi.advanceTimersByTimeAsync(1);
    expect(sent).toHaveLength(2);
    await vi.advanceTimersByTimeAsync(1);
    expect(result.settled).toBe(true);
    await expect(promise).resolves.toEqual({ attempt: 2 });
  });

  test('no retry when the backoff and another attempt as long as the last would pass the deadline', async () => {
    const { send, sent } = scripted({ afterMs: 400, code: status.UNAVAILABLE });
    // 400 ms used, 50 ms backoff, 400 ms for the next: 850 >= 800.
    const { promise } = call(bind({ deadlineMs: 800 }), send);
    await vi.advanceTimersByTimeAsync(400);
    await expect(promise).rejects.toMatchObject({ code: status.UNAVAILABLE, attempts: 1 });
    expect(sent).toHaveLength(1);
  });

  test('settles within the deadline and never starts an attempt it cannot finish', async () => {
    // Every attempt takes 1 s and fails; the call has 3 s in all and may make ten attempts. The
    // first ends at 1,000 and the retry starts after its 50 ms backoff (1,050 + 1,000 fits in
    // 3,000); the second ends at 2,050, and a third after a 100 ms backoff would end at 3,150.
    const { send, sent } = scripted({ afterMs: 1_000, code: status.UNAVAILABLE });
    const started = Date.now();
    const { promise, result } = call(bind({ deadlineMs: 3_000, retry: { maxAttempts: 10 } }), send);
    await vi.advanceTimersByTimeAsync(2_049);
    expect(result.settled).toBe(false);
    expect(sent).toHaveLength(2);
    await vi.advanceTimersByTimeAsync(1);
    // Settled at 2,050, before the deadline, with the last real failure, not DEADLINE_EXCEEDED.
    expect(result.settled).toBe(true);
    await expect(promise).rejects.toMatchObject({ code: status.UNAVAILABLE, attempts: 2 });
    expect(sent.map((a) => a.startedAt - started)).toEqual([0, 1_050]);
    for (const attempt of sent) {
      // Each attempt carried the call's deadline and started with the 1 s it needs left on it.
      expect(attempt.options.deadline).toBe(started + 3_000);
      expect(attempt.options.deadline - attempt.startedAt).toBeGreaterThanOrEqual(1_000);
      expect(attempt.cancelled).toBe(false);
    }
    expect(retries.map((r) => r.delayMs)).toEqual([50]);
    expect(vi.getTimerCount()).toBe(0);
  });

  test('a spent retry budget (gRFC A6 throttling) stops retries and counts the refusal', async () => {
    for (let i = 0; i < 5; i++) channel.attemptFailedRetryably();
    const { send, sent } = scripted({ afterMs: 0, code: status.UNAVAILABLE });
    const { promise } = call(bind(), send);
    await vi.advanceTimersByTimeAsync(0);
    await expect(promise).rejects.toMatchObject({ attempts: 1 });
    expect(sent).toHaveLength(1);
    expect(channel.snapshot().throttledRetries).toBe(1);
  });
});

describe('the per-attempt deadline', () => {
  test('each attempt gets min(perAttemptTimeoutMs, time left); an idempotent call retries its DEADLINE_EXCEEDED', async () => {
    const { send, sent } = scripted({ afterMs: 200, code: status.DEADLINE_EXCEEDED }, { afterMs: 10 });
    const started = Date.now();
    const { promise } = call(bind({ deadlineMs: 1_000, idempotent: true, retry: { perAttemptTimeoutMs: 200 } }), send);
    expect(sent[0]?.options.deadline).toBe(started + 200);
    await vi.advanceTimersByTimeAsync(250);
    expect(sent).toHaveLength(2);
    expect(sent[1]?.options.deadline).toBe(started + 250 + 200);
    await vi.advanceTimersByTimeAsync(10);
    await expect(promise).resolves.toEqual({ attempt: 2 });
  });

  test('the last attempt is cut to the call deadline', async () => {
    const { send, sent } = scripted({ afterMs: 200, code: status.DEADLINE_EXCEEDED });
    const started = Date.now();
    const { promise } = call(bind({ deadlineMs: 500, idempotent: true, retry: { perAttemptTimeoutMs: 200 } }), send);
    await vi.advanceTimersByTimeAsync(250);
    expect(sent[1]?.options.deadline).toBe(started + 450);
    await vi.advanceTimersByTimeAsync(1_000);
    await expect(promise).rejects.toMatchObject({ code: status.DEADLINE_EXCEEDED });
    // The second ended at 450: 50 ms backoff plus 200 ms do not fit before 500.
    expect(sent).toHaveLength(2);
  });

  test('a DEADLINE_EXCEEDED of the call deadline itself is not retried', async () => {
    const { send, sent } = scripted({ afterMs: 300, code: status.DEADLINE_EXCEEDED });
    const { promise } = call(bind({ deadlineMs: 300, idempotent: true }), send);
    await vi.advanceTimersByTimeAsync(300);
    await expect(promise).rejects.toMatchObject({ code: status.DEADLINE_EXCEEDED, attempts: 1 });
    expect(sent).toHaveLength(1);
  });
});

describe('ending a call from our side', () => {
  test('an abort during the backoff settles the call at once with signal.reason; no new attempt, no timer left', async () => {
    const controller = new AbortController();
    const { send, sent } = scripted({ afterMs: 10, code: status.UNAVAILABLE }, { afterMs: 10 });
    const { promise, result } = call(bind({ retry: { initialDelayMs: 10_000, maxDelayMs: 10_000 } }), send, { signal: controller.signal });
    await vi.advanceTimersByTimeAsync(10);
    expect(retries).toHaveLength(1);
    const reason = new Error('user gave up');
    controller.abort(reason);
    await vi.advanceTimersByTimeAsync(0);
    expect(result.settled).toBe(true);
    await expect(promise).rejects.toBe(reason);
    await vi.advanceTimersByTimeAsync(60_000);
    expect(sent).toHaveLength(1);
    expect(vi.getTimerCount()).toBe(0);
    expect(channel.snapshot()).toMatchObject({ inFlight: 0, failed: 1 });
  });

  test('an abort during an attempt cancels it on the wire and rejects with signal.reason; the breaker ignores it', async () => {
    const controller = new AbortController();
    const { send, sent } = scripted({ afterMs: 1_000 });
    const bound = bind({}, { volumeThreshold: 1 });
    const { promise } = call(bound, send, { signal: controller.signal });
    await vi.advanceTimersByTimeAsync(100);
    controller.abort();
    await vi.advanceTimersByTimeAsync(0);
    expect(sent[0]?.cancelled).toBe(true);
    await expect(promise).rejects.toMatchObject({ name: 'AbortError' });
    expect(bound.breaker()?.stats().state).toBe('closed');
  });

  test('close during the backoff (poolClosing) settles the call with its last error; no new attempt', async () => {
    const { send, sent } = scripted({ afterMs: 10, code: status.UNAVAILABLE }, { afterMs: 10 });
    const { promise, result } = call(bind({ retry: { initialDelayMs: 10_000, maxDelayMs: 10_000 } }), send);
    await vi.advanceTimersByTimeAsync(10);
    pool.isOpen = false;
    const drain = channel.drain(5_000);
    await vi.advanceTimersByTimeAsync(0);
    expect(result.settled).toBe(true);
    await expect(promise).rejects.toMatchObject({ code: status.UNAVAILABLE, details: 'scripted 14', attempts: 1 });
    // Issue #12.5: close() ended it in its backoff, so it counts as cancelled.
    await expect(drain).resolves.toEqual({ drained: 0, cancelled: 1 });
    expect(sent).toHaveLength(1);
  });

  test('close past the grace period cancels a running attempt: CANCELLED naming close() and graceMs', async () => {
    const { send, sent } = scripted({ afterMs: 60_000 });
    const { promise } = call(bind({ deadlineMs: 120_000 }), send);
    pool.isOpen = false;
    const drain = channel.drain(1_000);
    await vi.advanceTimersByTimeAsync(1_000);
    expect(sent[0]?.cancelled).toBe(true);
    await expect(drain).resolves.toEqual({ drained: 0, cancelled: 1 });
    await expect(promise).rejects.toMatchObject({
      code: status.CANCELLED,
      details: 'cancelled by ChannelPool.close(): still running after graceMs 1000 ms',
    });
  });
});

describe('the circuit breaker', () => {
  test('refuses attempts with CircuitOpenError while open: nothing is sent, the last failure is the cause', async () => {
    // One circuit (scope 'channel'), as before issue #11 added the target's circuit beside the method's.
    const bound = bind({ retry: false }, { volumeThreshold: 1, resetTimeoutMs: 5_000, scope: 'channel' });
    const failing = scripted({ afterMs: 0, code: status.UNAVAILABLE });
    const first = call(bound, failing.send);
    await vi.advanceTimersByTimeAsync(0);
    await expect(first.promise).rejects.toMatchObject({ code: status.UNAVAILABLE });
    expect(bound.breaker()?.stats().state).toBe('open');

    const never = scripted({ afterMs: 0 });
    const refused = call(bound, never.send);
    const error = (await refused.promise.catch((e: unknown) => e)) as CircuitOpenError;
    expect(error).toBeInstanceOf(CircuitOpenError);
    expect(error).toMatchObject({ code: status.UNAVAILABLE, method: METHOD.path, target: TARGET });
    expect(error.nextProbeAt.getTime()).toBe(Date.now() + 5_000);
    expect(never.sent).toHaveLength(0);
    expect(bound.breaker()?.stats().rejected).toBe(1);
  });

  test('a retry refused by the open breaker ends the call with CircuitOpenError caused by the last failure', async () => {
    // Circuits count calls, not attempts (issue #11): another call's failure opens the circuit
    // while this one waits in its backoff, and its retry is refused.
    const bound = bind({ retry: { initialDelayMs: 1_000, maxDelayMs: 1_000 } }, { volumeThreshold: 1 });
    vi.spyOn(Math, 'random').mockReturnValue(0.5);
    const { send, sent } = scripted({ afterMs: 0, code: status.UNAVAILABLE });
    const { promise } = call(bound, send);
    await vi.advanceTimersByTimeAsync(10);
    const other = call(bind({ retry: false }, { volumeThreshold: 1 }), send);
    await vi.advanceTimersByTimeAsync(1_000);
    await other.promise.catch(() => {});
    const error = (await promise.catch((e: unknown) => e)) as CircuitOpenError;
    expect(error).toBeInstanceOf(CircuitOpenError);
    expect(error.cause).toMatchObject({ code: status.UNAVAILABLE, attempts: 1 });
    expect(sent).toHaveLength(2);
  });

  test('after resetTimeoutMs, a call is the probe and its success closes the circuit', async () => {
    // One circuit (scope 'channel'), as before issue #11 added the target's circuit beside the method's.
    const bound = bind({ retry: false }, { volumeThreshold: 1, resetTimeoutMs: 5_000, scope: 'channel' });
    const failing = scripted({ afterMs: 0, code: status.UNAVAILABLE });
    const first = call(bound, failing.send);
    await vi.advanceTimersByTimeAsync(5_000);
    await first.promise.catch(() => {});
    expect(bound.breaker()?.stats().state).toBe('half-open');
    const healthy = scripted({ afterMs: 10 });
    const probe = call(bound, healthy.send);
    await vi.advanceTimersByTimeAsync(10);
    await expect(probe.promise).resolves.toEqual({ attempt: 1 });
    expect(bound.breaker()?.stats().state).toBe('closed');
  });

  test("an aborted probe opens the circuit again ('probe-inconclusive'): it said nothing about the backend", async () => {
    const changes: string[] = [];
    context.onBreakerStateChange.subscribe((change) => changes.push(change.reason));
    // One circuit (scope 'channel'), as before issue #11 added the target's circuit beside the method's.
    const bound = bind({ retry: false }, { volumeThreshold: 1, resetTimeoutMs: 5_000, scope: 'channel' });
    const failing = call(bound, scripted({ afterMs: 0, code: status.UNAVAILABLE }).send);
    await vi.advanceTimersByTimeAsync(5_000);
    await failing.promise.catch(() => {});
    const controller = new AbortController();
    const probe = call(bound, scripted({ afterMs: 1_000 }).send, { signal: controller.signal });
    await vi.advanceTimersByTimeAsync(10);
    controller.abort();
    await vi.advanceTimersByTimeAsync(0);
    await expect(probe.promise).rejects.toMatchObject({ name: 'AbortError' });
    expect(bound.breaker()?.stats().state).toBe('open');
    expect(changes).toEqual(['error-threshold', 'reset-timeout', 'probe-inconclusive']);
  });
});

describe('the connect watchdog under a running attempt', () => {
  test('an attempt that fails because its channel was replaced is retried, takes no retry token and is not counted by the breaker', async () => {
    channel.close();
    context.rotation.close();
    const fake = fakeFactory(scriptedClient);
    context = channelContext(fake.factory, { connectTimeoutMs: 1_000 });
    channel = new ManagedChannel(TARGET, credentials.createInsecure(), {}, context);
    const bound = bind({}, { volumeThreshold: 1 });
    // The first attempt waits on the stuck channel and fails UNAVAILABLE when it is closed (at 1000 ms).
    const { send, sent } = scripted({ afterMs: 1_001, code: status.UNAVAILABLE }, { afterMs: 10 });
    const { promise, result } = call(bound, send);
    fake.last.setState(connectivityState.CONNECTING);
    await vi.advanceTimersByTimeAsync(1_000);
    expect(channel.generation).toBe(1);
    await vi.advanceTimersByTimeAsync(1 + 50 + 10);
    expect(result.settled).toBe(true);
    await expect(promise).resolves.toEqual({ attempt: 2 });
    expect(sent).toHaveLength(2);
    expect(channel.snapshot()).toMatchObject({ retries: 1, retryTokens: 10, replacements: 1 });
    expect(bound.breaker()?.stats()).toMatchObject({ state: 'closed', opened: 0 });
  });
});
