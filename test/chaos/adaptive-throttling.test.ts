// The scenario in real time: a backend with room for 50 calls/s, offered 500 calls/s (it
// refuses 90 % with RESOURCE_EXHAUSTED), adaptive throttling at its defaults (K 2, padding 8,
// 30 s in 100 bins). After 30 s it must receive at most 2.2 times what it takes. The fast tier's
// version (test/integration/adaptive-throttling.test.ts) is timing-free; this one uses the wall
// clock, Math.random, and the throttle's real window.
import * as grpc from '@grpc/grpc-js';
import { afterEach, describe, expect, it } from 'vitest';
import { ChannelPool, StatusError } from '../../src/index.js';
import { startOverloadedBackend, type OverloadedBackend } from '../helpers/overloaded-backend.js';
import { TestServiceClient } from '../helpers/protos.js';
import { sleep } from './support.js';

const OFFERED_PER_SEC = 500;
const ROOM_PER_SEC = 50;
const SETTLE_MS = 30_000;
const MEASURE_MS = 15_000;

let backend: OverloadedBackend | undefined;
let pool: ChannelPool | undefined;

afterEach(async () => {
  await pool?.close({ graceMs: 0 });
  await backend?.close();
  pool = backend = undefined;
});

/** A token bucket of `perSec` tokens a second, holding at most `burst`: the backend's room. */
function room(perSec: number, burst: number): () => boolean {
  let tokens = burst;
  let at = performance.now();
  return () => {
    const now = performance.now();
    tokens = Math.min(burst, tokens + ((now - at) * perSec) / 1000);
    at = now;
    if (tokens < 1) return false;
    tokens--;
    return true;
  };
}

describe('adaptive throttling, 500 calls/s offered to a backend with room for 50/s', () => {
  it(
    'after 30 s the backend receives at most 2.2x what it takes',
    async () => {
      backend = await startOverloadedBackend({ takes: room(ROOM_PER_SEC, 5) });
      pool = new ChannelPool({ deadlineMs: 2_000, adaptiveThrottling: {}, breaker: false });
      const client = pool.client(TestServiceClient, backend.addresses[0]!);
      const codes = new Map<string, number>();
      const pending = new Set<Promise<void>>();
      const fire = (): void => {
        const call = client.Echo({ message: 'x' }).then(
          () => codes.set('OK', (codes.get('OK') ?? 0) + 1),
          (error: unknown) => {
            const key = error instanceof StatusError ? (error.throttled ? 'throttled' : grpc.status[error.code]!) : String(error);
            codes.set(key, (codes.get(key) ?? 0) + 1);
          },
        );
        const tracked = call.then(() => {
          pending.delete(tracked);
        });
        pending.add(tracked);
      };

      const startedAt = performance.now();
      let offered = 0;
      let mark: { at: number; offered: number; received: number; accepted: number } | undefined;
      // Bounded: ends by itself after SETTLE_MS + MEASURE_MS.
      while (performance.now() - startedAt < SETTLE_MS + MEASURE_MS) {
        const elapsed = performance.now() - startedAt;
        if (mark === undefined && elapsed >= SETTLE_MS) {
          mark = { at: elapsed, offered, received: backend.received, accepted: backend.accepted };
        }
        // Catch up with the offered rate, at most 50 calls per tick (a stalled loop does not burst).
        const due = Math.min(50, Math.floor((elapsed * OFFERED_PER_SEC) / 1000) - offered);
        for (let i = 0; i < due; i++, offered++) fire();
        await sleep(10);
      }
      await Promise.all(pending);
      const measured = {
        seconds: (performance.now() - startedAt - mark!.at) / 1000,
        offered: offered - mark!.offered,
        received: backend.received - mark!.received,
        accepted: backend.accepted - mark!.accepted,
      };
      const stats = pool.stats().perChannel[0]!.adaptiveThrottling!;
      console.log('adaptive throttling, last %d s:', MEASURE_MS / 1000, {
        ...measured,
        ratio: measured.received / measured.accepted,
        rejectProbability: stats.rejectProbability,
        outcomes: Object.fromEntries(codes),
      });
      // The backend had work the whole time, and the throttle shed load in proportion.
      expect(measured.accepted).toBeGreaterThan(0);
      expect(measured.received / measured.accepted).toBeLessThanOrEqual(2.2);
      expect(codes.get('throttled') ?? 0).toBeGreaterThan(offered / 2);
    },
    SETTLE_MS + MEASURE_MS + 30_000,
  );
});
