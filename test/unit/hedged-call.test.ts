import { credentials, status } from '@grpc/grpc-js';
import { afterEach, beforeEach, describe, expect, test, vi } from 'vitest';
import { BoundMethod, type CallPool } from '../../src/call/bound-method.js';
import { admitCall } from '../../src/call/admission.js';
import { Call } from '../../src/call/call.js';
import { CallEvents, type AttemptEndEvent, type AttemptStartEvent, type CallEndEvent } from '../../src/events/call-events.js';
import { resolveBreaker, type BreakerOptions } from '../../src/config/breaker-options.js';
import { hedgingWithDefaults } from '../../src/config/hedging-options.js';
import { StatusError } from '../../src/core/errors.js';
import { EventSource } from '../../src/events/events.js';
import { ManagedChannel, type ChannelContext } from '../../src/channel/managed-channel.js';
import type { CallOptions } from '../../src/config/call-options.js';
import { mergePolicy, POLICY_DEFAULTS, type PolicyOptions } from '../../src/config/policy.js';
import type { RetryEvent } from '../../src/call/retry-event.js';
import type { Resolved } from '../../src/config/check-helpers.js';
import { channelContext, fakeFactory } from '../helpers/fake-channel.js';
import { METHOD, scripted, scriptedClient, TARGET, wire, type Sender } from '../helpers/scripted-wire.js';

// A hedged unary call with fake timers (test/helpers/scripted-wire.ts, as call.test.ts): a scripted grpc-js
// client plays the wire, one script step per attempt. The race: the first response wins, the
// other attempt is cancelled, a failure while the other runs does not end the call, and the call
// settles once.

let context: ChannelContext;
let channel: ManagedChannel;
let pool: CallPool & { isOpen: boolean; onRetry: EventSource<RetryEvent> };
let retries: RetryEvent[];

/** A hedged method (idempotent) whose window already holds 100 calls of 5 ms, refreshed: its hedge delay is 6 ms. */
function bind(policy: PolicyOptions = {}, breaker: BreakerOptions | false = false): BoundMethod {
  const breakerOptions = breaker === false ? false : (resolveBreaker(breaker) as Resolved<BreakerOptions>);
  const bound = new BoundMethod(
    pool,
    channel,
    METHOD,
    mergePolicy(POLICY_DEFAULTS, { idempotent: true, ...policy }),
    breakerOptions,
    undefined,
    hedgingWithDefaults('hedging', {}),
  );
  for (let i = 0; i < 100; i++) bound.hedger!.record(5);
  vi.advanceTimersByTime(3_000);
  return bound;
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

/** Listens to the call events. */
function listen() {
  const starts: AttemptStartEvent[] = [];
  const ends: AttemptEndEvent[] = [];
  const calls: CallEndEvent[] = [];
  pool.callEvents.onAttemptStart.subscribe((e) => starts.push(e));
  pool.callEvents.onAttemptEnd.subscribe((e) => ends.push(e));
  pool.callEvents.onCallEnd.subscribe((e) => calls.push(e));
  return { starts, ends, calls };
}

describe('a hedged unary call', () => {
  test('a slow first attempt: the hedge goes out at the delay, wins, and the first is cancelled; the call settles once', async () => {
    const events = listen();
    const { send, sent } = scripted({ afterMs: 500 }, { afterMs: 5 });
    const bound = bind({ retry: false });
    const { promise, result } = call(bound, send);
    await vi.advanceTimersByTimeAsync(5);
    expect(sent).toHaveLength(1);
    await vi.advanceTimersByTimeAsync(1); // the delay: 6 ms
    expect(sent).toHaveLength(2);
    expect(sent[1]!.metadata.get('grpc-previous-rpc-attempts')).toEqual(['1']);
    await vi.advanceTimersByTimeAsync(5);
    await expect(promise).resolves.toEqual({ attempt: 2 });
    expect(sent[0]!.cancelled).toBe(true);
    await vi.advanceTimersByTimeAsync(1_000);
    expect(result.settled).toBe(true);
    expect(events.starts.map((e) => [e.attempt, e.hedge])).toEqual([
      [1, false],
      [2, true],
    ]);
    expect(events.ends.map((e) => [e.attempt, e.hedge, e.won, e.code]).sort()).toEqual([
      [1, false, false, status.CANCELLED],
      [2, true, true, status.OK],
    ]);
    expect(events.calls).toHaveLength(1);
    expect(events.calls[0]).toMatchObject({ code: status.OK, attempts: 2, hedges: 1 });
    // The loser counts neither way for the channel: one call, succeeded, one hedge that won.
    expect(channel.snapshot()).toMatchObject({ inFlight: 0, succeeded: 1, failed: 0, retries: 0, hedges: 1, hedgesWon: 1 });
    expect(vi.getTimerCount()).toBe(0);
  });

  test('the first attempt answers before the delay: no hedge, no timer left', async () => {
    const { send, sent } = scripted({ afterMs: 3 });
    const { promise } = call(bind(), send);
    await vi.advanceTimersByTimeAsync(3);
    await expect(promise).resolves.toEqual({ attempt: 1 });
    await vi.advanceTimersByTimeAsync(100);
    expect(sent).toHaveLength(1);
    expect(vi.getTimerCount()).toBe(0);
  });

  test('the first attempt wins the race: the hedge is cancelled', async () => {
    const events = listen();
    const { send, sent } = scripted({ afterMs: 20 }, { afterMs: 500 });
    const { promise } = call(bind(), send);
    await vi.advanceTimersByTimeAsync(20);
    await expect(promise).resolves.toEqual({ attempt: 1 });
    expect(sent).toHaveLength(2);
    expect(sent[1]!.cancelled).toBe(true);
    await vi.advanceTimersByTimeAsync(0);
    expect(events.ends.find((e) => e.attempt === 1)?.won).toBe(true);
    expect(events.ends.find((e) => e.attempt === 2)).toMatchObject({ hedge: true, won: false, code: status.CANCELLED });
  });

  test('a failed hedge while the first attempt still runs does not fail the call', async () => {
    const { send, sent } = scripted({ afterMs: 100 }, { afterMs: 4, code: status.INTERNAL });
    const { promise, result } = call(bind({ retry: false }), send);
    await vi.advanceTimersByTimeAsync(50);
    expect(sent).toHaveLength(2);
    expect(result.settled).toBe(false);
    await vi.advanceTimersByTimeAsync(50);
    await expect(promise).resolves.toEqual({ attempt: 1 });
  });

  test('a failed first attempt while the hedge runs does not fail the call either', async () => {
    const { send } = scripted({ afterMs: 50, code: status.UNAVAILABLE }, { afterMs: 100 });
    const { promise, result } = call(bind({ retry: false }), send);
    await vi.advanceTimersByTimeAsync(60);
    expect(result.settled).toBe(false);
    await vi.advanceTimersByTimeAsync(60);
    await expect(promise).resolves.toEqual({ attempt: 2 });
  });

  test('both fail: the call fails once, with the last failure, a StatusError', async () => {
    const events = listen();
    const { send } = scripted({ afterMs: 50, code: status.UNAVAILABLE }, { afterMs: 100, code: status.INTERNAL });
    const { promise } = call(bind({ retry: false }), send);
    await vi.advanceTimersByTimeAsync(200);
    const error = await promise.catch((e: unknown) => e);
    expect(error).toBeInstanceOf(StatusError);
    expect((error as StatusError).code).toBe(status.INTERNAL);
    expect(events.calls).toHaveLength(1);
    expect(channel.snapshot()).toMatchObject({ inFlight: 0, failed: 1 });
  });

  test("the caller's abort cancels both attempts and the call rejects once with the reason", async () => {
    const { send, sent } = scripted({ afterMs: 500 }, { afterMs: 500 });
    const controller = new AbortController();
    const { promise } = call(bind(), send, { signal: controller.signal });
    await vi.advanceTimersByTimeAsync(10);
    expect(sent).toHaveLength(2);
    const reason = new Error('caller gave up');
    controller.abort(reason);
    await expect(promise).rejects.toBe(reason);
    expect(sent.every((a) => a.cancelled)).toBe(true);
    await vi.advanceTimersByTimeAsync(1_000);
    expect(channel.snapshot()).toMatchObject({ inFlight: 0 });
  });

  test('a call made not idempotent by its own options is never hedged', async () => {
    const { send, sent } = scripted({ afterMs: 100 });
    const { promise } = call(bind(), send, { idempotent: false });
    await vi.advanceTimersByTimeAsync(100);
    await expect(promise).resolves.toEqual({ attempt: 1 });
    expect(sent).toHaveLength(1);
  });

  test('the budget caps hedges: with the reserve and the share spent, slow calls are not hedged', async () => {
    const bound = bind();
    // One call's share (0.05) and the reserve (1/s over 30 s: 30 hedges), then the reserve spent.
    bound.hedger!.callStarted();
    let reserve = 0;
    while (bound.hedger!.takeHedge()) reserve++;
    expect(reserve).toBe(30);
    const { send, sent } = scripted({ afterMs: 100 });
    // 0.05 left; each call earns 0.05: 18 calls leave 0.95, none is hedged; the 19th makes it whole.
    for (let i = 0; i < 18; i++) {
      const { promise } = call(bound, send);
      await vi.advanceTimersByTimeAsync(100);
      await promise;
    }
    expect(sent).toHaveLength(18);
    const { promise } = call(bound, send);
    await vi.advanceTimersByTimeAsync(100);
    await promise;
    expect(sent).toHaveLength(20);
    expect(channel.snapshot()).toMatchObject({ hedges: 1, retries: 0 });
  });

  test('no hedge while the circuit is half-open', async () => {
    const bound = bind({ retry: false }, { volumeThreshold: 1, errorThresholdPercentage: 10, resetTimeoutMs: 1_000 });
    const failing = scripted({ afterMs: 1, code: status.UNAVAILABLE });
    const { promise: failed } = call(bound, failing.send);
    await vi.advanceTimersByTimeAsync(1);
    await failed.catch(() => undefined);
    expect(bound.breaker()!.state).toBe('open');
    await vi.advanceTimersByTimeAsync(1_000);
    expect(bound.breaker()!.state).toBe('half-open');
    const { send, sent } = scripted({ afterMs: 100 });
    const { promise } = call(bound, send);
    await vi.advanceTimersByTimeAsync(100);
    await expect(promise).resolves.toEqual({ attempt: 1 });
    expect(sent).toHaveLength(1);
  });
});
