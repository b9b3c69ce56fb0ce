import { Metadata, status, type InterceptingListener, type Interceptor } from '@grpc/grpc-js';
import { afterEach, beforeEach, describe, expect, test, vi } from 'vitest';
import { MAX_STALL_MS, StallDetector } from '../../src/stall-detector.js';

beforeEach(() => {
  vi.useFakeTimers();
});

afterEach(() => {
  vi.useRealTimers();
});

/** Starts a call through the detector's interceptor; returns what the "server" can send it. */
function startCall(interceptors: Interceptor[], streaming = false) {
  let listener: InterceptingListener | undefined;
  const next = {
    start: (_metadata: Metadata, l: InterceptingListener) => (listener = l),
    sendMessageWithContext: () => undefined,
    sendMessage: () => undefined,
    startRead: () => undefined,
    halfClose: () => undefined,
    cancelWithStatus: () => undefined,
    getPeer: () => 'peer',
    getAuthContext: () => null,
  };
  const method_definition = { path: '/t.S/M', requestStream: streaming, responseStream: streaming } as never;
  const call = interceptors[0]!({ method_definition } as never, () => next as never);
  call.start(new Metadata(), { onReceiveMetadata: () => undefined, onReceiveMessage: () => undefined, onReceiveStatus: () => undefined });
  return {
    headers: () => listener!.onReceiveMetadata(new Metadata()),
    message: () => listener!.onReceiveMessage({ ok: true }),
    end: (code: number) => {
      // grpc-js's unary calls get a null message before a status without response.
      if (!streaming && code !== status.OK) listener!.onReceiveMessage(null);
      listener!.onReceiveStatus({ code, details: '', metadata: new Metadata() });
    },
  };
}

function detector(baseMs = 1_000) {
  const onStall = vi.fn();
  const d = new StallDetector(baseMs, onStall, () => Date.now());
  return { d, onStall, interceptors: d.interceptorsFor(false) };
}

describe('StallDetector', () => {
  test('a unary call that hears nothing for stallMs on a READY channel is a stall, reported once', () => {
    const { d, onStall, interceptors } = detector();
    d.onState(true);
    startCall(interceptors);
    vi.advanceTimersByTime(999);
    expect(onStall).not.toHaveBeenCalled();
    vi.advanceTimersByTime(1);
    expect(onStall).toHaveBeenCalledExactlyOnceWith(1_000);
    expect(d.stalls).toBe(1);
  });

  test('silence counts only while READY: waiting for a connection is not a stall', () => {
    const { d, onStall, interceptors } = detector();
    startCall(interceptors);
    vi.advanceTimersByTime(5_000);
    expect(onStall).not.toHaveBeenCalled();
    d.onState(true);
    vi.advanceTimersByTime(999);
    expect(onStall).not.toHaveBeenCalled();
    vi.advanceTimersByTime(1);
    expect(onStall).toHaveBeenCalledTimes(1);
  });

  test('anything heard restarts the clock; a call answered leaves nothing to watch', () => {
    const { d, onStall, interceptors } = detector();
    d.onState(true);
    const first = startCall(interceptors);
    startCall(interceptors);
    vi.advanceTimersByTime(800);
    first.headers();
    vi.advanceTimersByTime(800);
    expect(onStall).not.toHaveBeenCalled();
    vi.advanceTimersByTime(200);
    expect(onStall).toHaveBeenCalledTimes(1);

    const other = detector();
    other.d.onState(true);
    const call = startCall(other.interceptors);
    call.message();
    call.end(status.OK);
    vi.advanceTimersByTime(10_000);
    expect(other.onStall).not.toHaveBeenCalled();
  });

  test('streams are not watched, but what they receive counts as heard', () => {
    const { d, onStall, interceptors } = detector();
    d.onState(true);
    startCall(interceptors, true);
    vi.advanceTimersByTime(10_000);
    expect(onStall).not.toHaveBeenCalled();
    const stream = startCall(interceptors, true);
    startCall(interceptors);
    vi.advanceTimersByTime(900);
    stream.message();
    vi.advanceTimersByTime(900);
    expect(onStall).not.toHaveBeenCalled();
  });

  test('a call that timed out unheard is silence; one cancelled by its caller is not', () => {
    const timedOut = detector();
    timedOut.d.onState(true);
    startCall(timedOut.interceptors).end(status.DEADLINE_EXCEEDED);
    vi.advanceTimersByTime(1_000);
    expect(timedOut.onStall).toHaveBeenCalledTimes(1);

    const cancelled = detector();
    cancelled.d.onState(true);
    startCall(cancelled.interceptors).end(status.CANCELLED);
    vi.advanceTimersByTime(5_000);
    expect(cancelled.onStall).not.toHaveBeenCalled();
  });

  test('a status the server sent is heard', () => {
    const { d, onStall, interceptors } = detector();
    d.onState(true);
    startCall(interceptors).end(status.INVALID_ARGUMENT);
    vi.advanceTimersByTime(5_000);
    expect(onStall).not.toHaveBeenCalled();
  });

  test('an answer on the replaced channel is a false alarm: stallMs doubles, up to 60 s', () => {
    const { d, onStall, interceptors } = detector(20_000);
    d.onState(true);
    const slow = startCall(interceptors);
    vi.advanceTimersByTime(20_000);
    expect(onStall).toHaveBeenCalledTimes(1);
    const next = d.interceptorsFor(true);
    slow.message();
    expect(d.falseAlarms).toBe(1);
    expect(d.stallMs).toBe(40_000);
    // Once per replaced channel.
    slow.end(status.OK);
    expect(d.stallMs).toBe(40_000);
    d.onState(true);
    const slower = startCall(next);
    vi.advanceTimersByTime(40_000);
    expect(onStall).toHaveBeenCalledTimes(2);
    d.interceptorsFor(true);
    slower.headers();
    expect(d.stallMs).toBe(MAX_STALL_MS);
  });

  test('a replacement that stalls before hearing anything doubles stallMs: the server is slow, not gone', () => {
    const { d, onStall, interceptors } = detector();
    d.onState(true);
    startCall(interceptors);
    vi.advanceTimersByTime(1_000);
    expect(onStall).toHaveBeenCalledTimes(1);
    const second = d.interceptorsFor(true);
    d.onState(true);
    startCall(second);
    vi.advanceTimersByTime(1_000);
    expect(onStall).toHaveBeenCalledTimes(2);
    expect(d.stallMs).toBe(2_000);
  });

  test('stop() clears the timer', () => {
    const { d, onStall, interceptors } = detector();
    d.onState(true);
    startCall(interceptors);
    d.stop();
    expect(vi.getTimerCount()).toBe(0);
    vi.advanceTimersByTime(5_000);
    expect(onStall).not.toHaveBeenCalled();
  });
});
