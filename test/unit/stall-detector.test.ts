import { status } from '@grpc/grpc-js';
import { afterEach, beforeEach, describe, expect, test, vi } from 'vitest';
import { MAX_STALL_MS, StallDetector } from '../../src/channel/stall-detector.js';

beforeEach(() => {
  vi.useFakeTimers();
});

afterEach(() => {
  vi.useRealTimers();
});

/** Starts a call on the detector's current channel, reporting to it as an attempt does (call/attempt.ts); returns what the "server" can send it. */
function startCall(d: StallDetector, streaming = false) {
  const watch = d.watch!;
  if (streaming) {
    return {
      headers: () => watch.heard(false),
      message: () => watch.heard(false),
      end: (code: number) => watch.streamEnded(code),
    };
  }
  watch.begin();
  let waiting = true;
  return {
    headers: () => {
      watch.heard(waiting);
      waiting = false;
    },
    message: () => {
      watch.unaryEnded(waiting, undefined);
      waiting = false;
    },
    end: (code: number) => {
      watch.unaryEnded(waiting, code === status.OK ? undefined : code);
      waiting = false;
    },
  };
}

function detector(baseMs = 1_000) {
  const onStall = vi.fn();
  const d = new StallDetector(baseMs, onStall, () => Date.now());
  d.newChannel(false);
  return { d, onStall };
}

describe('StallDetector', () => {
  test('a unary call that hears nothing for stallMs on a READY channel is a stall, reported once', () => {
    const { d, onStall } = detector();
    d.onState(true);
    startCall(d);
    vi.advanceTimersByTime(999);
    expect(onStall).not.toHaveBeenCalled();
    vi.advanceTimersByTime(1);
    expect(onStall).toHaveBeenCalledExactlyOnceWith(1_000);
    expect(d.stalls).toBe(1);
  });

  test('silence counts only while READY: waiting for a connection is not a stall', () => {
    const { d, onStall } = detector();
    startCall(d);
    vi.advanceTimersByTime(5_000);
    expect(onStall).not.toHaveBeenCalled();
    d.onState(true);
    vi.advanceTimersByTime(999);
    expect(onStall).not.toHaveBeenCalled();
    vi.advanceTimersByTime(1);
    expect(onStall).toHaveBeenCalledTimes(1);
  });

  test('anything heard restarts the clock; a call answered leaves nothing to watch', () => {
    const { d, onStall } = detector();
    d.onState(true);
    const first = startCall(d);
    startCall(d);
    vi.advanceTimersByTime(800);
    first.headers();
    vi.advanceTimersByTime(800);
    expect(onStall).not.toHaveBeenCalled();
    vi.advanceTimersByTime(200);
    expect(onStall).toHaveBeenCalledTimes(1);

    const other = detector();
    other.d.onState(true);
    const call = startCall(other.d);
    call.message();
    call.end(status.OK);
    vi.advanceTimersByTime(10_000);
    expect(other.onStall).not.toHaveBeenCalled();
  });

  test('streams are not watched, but what they receive counts as heard', () => {
    const { d, onStall } = detector();
    d.onState(true);
    startCall(d, true);
    vi.advanceTimersByTime(10_000);
    expect(onStall).not.toHaveBeenCalled();
    const stream = startCall(d, true);
    startCall(d);
    vi.advanceTimersByTime(900);
    stream.message();
    vi.advanceTimersByTime(900);
    expect(onStall).not.toHaveBeenCalled();
  });

  test('a call that timed out unheard is silence; one cancelled by its caller is not', () => {
    const timedOut = detector();
    timedOut.d.onState(true);
    startCall(timedOut.d).end(status.DEADLINE_EXCEEDED);
    vi.advanceTimersByTime(1_000);
    expect(timedOut.onStall).toHaveBeenCalledTimes(1);

    const cancelled = detector();
    cancelled.d.onState(true);
    startCall(cancelled.d).end(status.CANCELLED);
    vi.advanceTimersByTime(5_000);
    expect(cancelled.onStall).not.toHaveBeenCalled();
  });

  test('a status the server sent is heard', () => {
    const { d, onStall } = detector();
    d.onState(true);
    startCall(d).end(status.INVALID_ARGUMENT);
    vi.advanceTimersByTime(5_000);
    expect(onStall).not.toHaveBeenCalled();
  });

  test('an answer on the replaced channel is a false alarm: stallMs doubles, up to 60 s', () => {
    const { d, onStall } = detector(20_000);
    d.onState(true);
    const slow = startCall(d);
    vi.advanceTimersByTime(20_000);
    expect(onStall).toHaveBeenCalledTimes(1);
    d.newChannel(true);
    slow.message();
    expect(d.falseAlarms).toBe(1);
    expect(d.stallMs).toBe(40_000);
    // Once per replaced channel.
    slow.end(status.OK);
    expect(d.stallMs).toBe(40_000);
    d.onState(true);
    const slower = startCall(d);
    vi.advanceTimersByTime(40_000);
    expect(onStall).toHaveBeenCalledTimes(2);
    d.newChannel(true);
    slower.headers();
    expect(d.stallMs).toBe(MAX_STALL_MS);
  });

  test('a replacement that stalls before hearing anything doubles stallMs: the server is slow, not gone', () => {
    const { d, onStall } = detector();
    d.onState(true);
    startCall(d);
    vi.advanceTimersByTime(1_000);
    expect(onStall).toHaveBeenCalledTimes(1);
    d.newChannel(true);
    d.onState(true);
    startCall(d);
    vi.advanceTimersByTime(1_000);
    expect(onStall).toHaveBeenCalledTimes(2);
    expect(d.stallMs).toBe(2_000);
  });

  test('stop() clears the timer', () => {
    const { d, onStall } = detector();
    d.onState(true);
    startCall(d);
    d.stop();
    expect(vi.getTimerCount()).toBe(0);
    vi.advanceTimersByTime(5_000);
    expect(onStall).not.toHaveBeenCalled();
  });
});
