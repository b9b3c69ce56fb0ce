import { performance, type EventLoopUtilization } from 'node:perf_hooks';

// Whether this process's event loop was busy, rather than waiting, over a stretch of time: the
// difference between a client whose own loop was blocked (a busy loop, a long GC pause, a
// synchronous task) and a client that was merely waiting for an answer while the machine was
// loaded. Node's event loop utilization counts the time the loop spent outside its poll for I/O;
// a loop blocked for 300 ms counts 300 ms active, a loop waiting in its poll counts idle even
// when the machine's scheduler kept the process off the CPU.
//
// A sample is taken as attempts start (the time is already read), at most every SAMPLE_EVERY_MS:
// nothing runs on a timer, and a healthy call pays one comparison. Only a failure that may have
// expired locally asks how busy the loop was since a sample.

const SAMPLE_EVERY_MS = 50;
const SAMPLES = 16;
const sampledAt = new Float64Array(SAMPLES);
const samples: (EventLoopUtilization | undefined)[] = new Array(SAMPLES).fill(undefined);
let next = 0;
let lastAt = Number.NEGATIVE_INFINITY;

/** An attempt starts at `now` (epoch ms): keeps a sample of the loop, at most every SAMPLE_EVERY_MS. */
export function sampleLoop(now: number): void {
  if (now - lastAt < SAMPLE_EVERY_MS) return;
  lastAt = now;
  sampledAt[next] = now;
  samples[next] = performance.eventLoopUtilization();
  next = (next + 1) % SAMPLES;
}

/**
 * The share of time (0 to 1) the event loop was busy (not waiting for I/O) since the latest
 * sample taken at or before `since` (epoch ms), until now; 0 when no sample is that old. A loop
 * blocked since then is near 1; one that waited for answers is near 0, however loaded the machine.
 */
export function loopBusySince(since: number): number {
  let best = -1;
  for (let i = 0; i < SAMPLES; i++) {
    if (samples[i] === undefined || sampledAt[i]! > since) continue;
    if (best < 0 || sampledAt[i]! > sampledAt[best]!) best = i;
  }
  if (best < 0) return 0;
  return performance.eventLoopUtilization(samples[best]).utilization;
}
