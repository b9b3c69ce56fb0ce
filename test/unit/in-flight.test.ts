// The in-flight list of one channel: tracking and settling in any order, the idle hand-off of
// the last call (kept while the channel is idle, let go of when the next call starts or the
// channel drains), and the drain.
import { describe, expect, it } from 'vitest';
import { type InFlight, InFlightCalls } from '../../src/channel/in-flight.js';
import { collectedByFullGcs as collected } from '../helpers/full-gc.js';

class FakeCall implements InFlight {
  inFlightSlot: number | undefined;
  kept = 0;
  cancelled = 0;
  constructor(readonly onCancel?: () => void) {}
  cancelForClose(): void {
    this.cancelled++;
    this.onCancel?.();
  }
  poolClosing(): boolean {
    return false;
  }
  keptIdle(): void {
    this.kept++;
  }
}

describe('InFlightCalls', () => {
  it('tracks calls and settles them in any order, counting successes and failures', () => {
    const inFlight = new InFlightCalls();
    const calls = [new FakeCall(), new FakeCall(), new FakeCall(), new FakeCall()];
    for (const call of calls) inFlight.track(call);
    expect(inFlight.size).toBe(4);
    inFlight.settle(calls[1]!, true);
    inFlight.settle(calls[3]!, false);
    inFlight.settle(calls[1]!, true); // a second settle is ignored
    expect(inFlight.size).toBe(2);
    inFlight.settle(calls[0]!, true);
    inFlight.settle(calls[2]!, true);
    expect(inFlight.size).toBe(0);
    expect({ started: inFlight.started, succeeded: inFlight.succeeded, failed: inFlight.failed }).toEqual({
      started: 4,
      succeeded: 3,
      failed: 1,
    });
    expect(calls.map((c) => c.inFlightSlot)).toEqual([undefined, undefined, undefined, undefined]);
  });

  it('hands the call that settles last, and only that one, to keptIdle() once', () => {
    const inFlight = new InFlightCalls();
    const [a, b] = [new FakeCall(), new FakeCall()];
    inFlight.track(a);
    inFlight.track(b);
    inFlight.settle(a, true);
    expect(a.kept).toBe(0);
    inFlight.settle(b, false);
    expect(b.kept).toBe(1);
    inFlight.settle(b, false);
    expect(b.kept).toBe(1);
  });

  it('keeps the last call while idle, and lets go of it when the next call starts', async () => {
    const inFlight = new InFlightCalls();
    const firstRef = await (async () => {
      const first = new FakeCall();
      inFlight.track(first);
      inFlight.settle(first, true);
      return new WeakRef(first);
    })();
    expect(await collected(firstRef)).toBe(false);
    const next = new FakeCall();
    inFlight.track(next);
    expect(await collected(firstRef)).toBe(true);
    inFlight.settle(next, true);
    expect(next.kept).toBe(1);
  });

  it('lets go of the kept call once drained', async () => {
    const inFlight = new InFlightCalls();
    const ref = await (async () => {
      const call = new FakeCall(() => inFlight.settle(call, false));
      inFlight.track(call);
      // drain(0) cancels it; its cancel settles it, which makes it the kept call for a moment.
      await expect(inFlight.drain(0)).resolves.toEqual({ drained: 0, cancelled: 1 });
      expect(call.cancelled).toBe(1);
      expect(call.kept).toBe(1);
      return new WeakRef(call);
    })();
    expect(await collected(ref)).toBe(true);
  });
});
