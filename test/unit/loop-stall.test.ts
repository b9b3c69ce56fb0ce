import { describe, expect, test } from 'vitest';
import { loopBusySince, sampleLoop } from '../../src/call/loop-stall.js';

// The share of time the loop was busy since a sample: a loop blocked synchronously counts its block as busy;
// one that waits on a timer counts it as idle. Real time, but bounded from the safe side: a
// block is at least as long as it is, a wait is not busy however loaded the machine.

function block(ms: number): void {
  const end = performance.now() + ms;
  while (performance.now() < end) {
    // busy
  }
}

describe('loopBusySince', () => {
  test('a synchronous block after the sample counts as busy time', () => {
    const at = Date.now() + 1_000; // never within SAMPLE_EVERY_MS of an earlier sample
    sampleLoop(at);
    block(300);
    // Blocked since the sample: busy nearly all the time (the rest is this test's own steps).
    expect(loopBusySince(at)).toBeGreaterThanOrEqual(0.9);
  });

  test('no sample at or before the moment asked: 0', () => {
    expect(loopBusySince(0)).toBe(0);
  });

  test('a wait on a timer is not busy time', async () => {
    const at = Date.now() + 10_000;
    sampleLoop(at);
    await new Promise((resolve) => setTimeout(resolve, 300));
    // The loop waited in its poll for >= 300 ms; what it ran meanwhile is a few ms of work.
    expect(loopBusySince(at)).toBeLessThan(0.5);
  });
});
