// The hedging arithmetic (call/hedging.ts) on a fake clock: the latency window and its
// percentiles, the hedge delay as a scripted latency distribution moves, the hedge budget, and
// the ceiling that stops hedging when every call is slow. Option checks too.
import { describe, expect, it } from 'vitest';
import { bucketOf, bucketUpperMs, hedgeDelay, Hedger, LatencyWindow } from '../../src/call/hedging.js';
import { checkHedgingOptions, hedgingWithDefaults, HEDGING_DEFAULTS } from '../../src/config/hedging-options.js';

/** A fake clock in ms. */
function clock(start = 1_000_000) {
  let now = start;
  return { now: () => now, advance: (ms: number) => void (now += ms) };
}

const DEFAULTS = hedgingWithDefaults('hedging', {});

/** A latency distribution: `slowShare` of calls take `slowMs`, the rest `fastMs`, spread evenly over `n` calls. */
function script(n: number, fastMs: number, slowMs: number, slowShare: number): number[] {
  const slowEvery = slowShare > 0 ? Math.round(1 / slowShare) : Number.POSITIVE_INFINITY;
  return Array.from({ length: n }, (_, i) => ((i + 1) % slowEvery === 0 ? slowMs : fastMs));
}

describe('LatencyWindow', () => {
  it('reads a percentile within one 10 % bucket of the true value', () => {
    const c = clock();
    const w = new LatencyWindow(30_000, 3_000, c.now);
    for (let i = 1; i <= 1000; i++) w.record(i / 10); // 0.1 .. 100 ms, uniform
    const p95 = w.quantile(0.95)!;
    expect(p95).toBeGreaterThanOrEqual(95);
    expect(p95).toBeLessThanOrEqual(95 * 1.1);
    const p50 = w.quantile(0.5)!;
    expect(p50).toBeGreaterThanOrEqual(50);
    expect(p50).toBeLessThanOrEqual(55);
    expect(w.count).toBe(1000);
  });

  it('forgets what left the window: after windowMs a latency no longer counts', () => {
    const c = clock();
    const w = new LatencyWindow(30_000, 3_000, c.now);
    for (let i = 0; i < 100; i++) w.record(500);
    c.advance(15_000);
    for (let i = 0; i < 100; i++) w.record(5);
    expect(w.count).toBe(200);
    c.advance(15_000); // the 500 ms ones were 30 s ago: their slot is gone
    expect(w.count).toBe(100);
    expect(w.quantile(0.95)).toBe(bucketUpperMs(bucketOf(5)));
    c.advance(30_000);
    expect(w.count).toBe(0);
    expect(w.quantile(0.95)).toBeUndefined();
  });

  it('buckets are 10 % wide and cover sub-millisecond to minutes', () => {
    expect(bucketOf(0)).toBe(0);
    expect(bucketOf(0.1)).toBe(0);
    expect(bucketUpperMs(bucketOf(5))).toBeGreaterThanOrEqual(5);
    expect(bucketUpperMs(bucketOf(5))).toBeLessThan(5.5);
    expect(bucketUpperMs(bucketOf(600_000))).toBeGreaterThanOrEqual(600_000);
    expect(bucketOf(1e12)).toBe(bucketOf(1e13));
  });
});

describe('Hedger: the delay follows a scripted latency distribution', () => {
  it('no hedge before the window holds 2 / maxExtraLoad calls; then p95 at once, refreshed every 3 s', () => {
    const c = clock();
    const h = new Hedger(DEFAULTS, c.now);
    expect(h.delay(10_000, undefined)).toEqual({ hedge: false, reason: 'warming-up' });
    // 3 % at 500 ms, the rest 5 ms: p95 is the fast calls' bucket.
    const calls = script(200, 5, 500, 0.03);
    for (const ms of calls.slice(0, 39)) h.record(ms);
    expect(h.delay(10_000, undefined)).toEqual({ hedge: false, reason: 'warming-up' });
    for (const ms of calls.slice(39)) h.record(ms);
    expect(h.delay(10_000, undefined)).toEqual({ hedge: true, delayMs: Math.ceil(bucketUpperMs(bucketOf(5))) });
    // The tail grows to 10 % at 200 ms: p95 moves there, at the next refresh and not before.
    for (const ms of script(800, 5, 200, 0.1)) h.record(ms);
    c.advance(2_999);
    expect(h.delay(10_000, undefined)).toEqual({ hedge: true, delayMs: Math.ceil(bucketUpperMs(bucketOf(5))) });
    c.advance(1);
    expect(h.delay(10_000, undefined)).toEqual({ hedge: true, delayMs: Math.ceil(bucketUpperMs(bucketOf(200))) });
  });

  it('maxExtraLoad sets the percentile: 0.2 hedges at p80', () => {
    const c = clock();
    const h = new Hedger(hedgingWithDefaults('hedging', { maxExtraLoad: 0.2 }), c.now);
    for (let i = 1; i <= 100; i++) h.record(i); // 1 .. 100 ms
    c.advance(3_000);
    const plan = h.delay(10_000, undefined);
    expect(plan.hedge && plan.delayMs).toBe(Math.ceil(bucketUpperMs(bucketOf(80))));
  });

  it('stops hedging by itself when every call is slow: the delay plus the median no longer fits the time left', () => {
    const c = clock();
    const h = new Hedger(DEFAULTS, c.now);
    for (let i = 0; i < 1000; i++) h.record(5);
    c.advance(3_000);
    expect(h.delay(1_000, undefined).hedge).toBe(true);
    // Every call now takes 500 ms. Once they are over 5 % of the window the delay is ~500 ms: a
    // hedge would go out only after the slow attempt itself answered, so none is sent.
    for (let i = 0; i < 100; i++) h.record(500);
    c.advance(3_000);
    const transition = h.delay(1_000, undefined);
    expect(transition.hedge && transition.delayMs).toBeGreaterThanOrEqual(500);
    // Once they are most of the window, the delay plus the median passes the time left: no hedge at all.
    for (let i = 0; i < 2000; i++) h.record(500);
    c.advance(3_000);
    expect(h.delay(1_000, undefined)).toEqual({ hedge: false, reason: 'no-time' });
    // With a per-attempt timeout below delay + median as well.
    expect(h.delay(60_000, 800)).toEqual({ hedge: false, reason: 'no-time' });
    // maxDelayMs, the explicit ceiling.
    const capped = new Hedger(hedgingWithDefaults('hedging', { maxDelayMs: 100 }), c.now);
    for (let i = 0; i < 1000; i++) capped.record(500);
    c.advance(3_000);
    expect(capped.delay(60_000, undefined)).toEqual({ hedge: false, reason: 'ceiling' });
    // And when the calls are fast again, hedging comes back once the slow ones left the window.
    c.advance(30_000);
    for (let i = 0; i < 1000; i++) h.record(5);
    c.advance(3_000);
    expect(h.delay(1_000, undefined).hedge).toBe(true);
  });

  it('hedgeDelay: minDelayMs is the floor', () => {
    expect(
      hedgeDelay({ percentileMs: 0.2, medianMs: 0.1, minDelayMs: 3, maxDelayMs: undefined, msLeft: 100, perAttemptTimeoutMs: undefined }),
    ).toEqual({
      hedge: true,
      delayMs: 3,
    });
  });
});

describe('Hedger: the budget admits exactly what its parameters say', () => {
  it('maxExtraLoad of a hedge per call over the window, plus minHedgesPerSec x windowMs', () => {
    const c = clock();
    const h = new Hedger(hedgingWithDefaults('hedging', { maxExtraLoad: 0.05, windowMs: 30_000, minHedgesPerSec: 1 }), c.now);
    for (let i = 0; i < 1000; i++) h.callStarted(); // 1000 x 0.05 = 50, plus a reserve of 1/s x 30 s = 30
    let admitted = 0;
    while (h.takeHedge()) admitted++;
    expect(admitted).toBe(80);
    // 20 more calls earn exactly one more hedge.
    for (let i = 0; i < 19; i++) h.callStarted();
    expect(h.takeHedge()).toBe(false);
    h.callStarted();
    expect(h.takeHedge()).toBe(true);
    expect(h.takeHedge()).toBe(false);
  });

  it('without a reserve, 5 % means one hedge per 20 calls; deposits expire with the window', () => {
    const c = clock();
    const h = new Hedger(hedgingWithDefaults('hedging', { minHedgesPerSec: 0 }), c.now);
    for (let i = 0; i < 200; i++) h.callStarted();
    let admitted = 0;
    while (h.takeHedge()) admitted++;
    expect(admitted).toBe(10);
    for (let i = 0; i < 200; i++) h.callStarted();
    c.advance(30_000); // every deposit left the window
    expect(h.takeHedge()).toBe(false);
  });
});

describe('hedging options', () => {
  it('defaults', () => {
    expect(DEFAULTS).toEqual({ ...HEDGING_DEFAULTS, maxDelayMs: undefined });
    expect(DEFAULTS.maxExtraLoad).toBe(0.05);
    expect(DEFAULTS.windowMs).toBe(30_000);
    expect(DEFAULTS.refreshMs).toBe(3_000);
  });

  it('refuses bad values, naming the option and the value', () => {
    expect(checkHedgingOptions('hedging', false)).toBe(false);
    expect(() => checkHedgingOptions('hedging', { maxExtraLoad: 0 })).toThrow(
      /hedging\.maxExtraLoad must be a share of calls > 0 and <= 0\.5.*got 0/,
    );
    expect(() => checkHedgingOptions('hedging', { maxExtraLoad: '5%' })).toThrow(TypeError);
    expect(() => checkHedgingOptions('methods.Get.hedging', { windowMs: 500 })).toThrow(
      /methods\.Get\.hedging\.windowMs must be at least 1000 ms, got 500/,
    );
    expect(() => checkHedgingOptions('hedging', { delayMs: 5 })).toThrow(/hedging/);
    expect(() => checkHedgingOptions('hedging', true)).toThrow(/hedging/);
    expect(() => hedgingWithDefaults('hedging', { refreshMs: 60_000 })).toThrow(
      /hedging\.refreshMs must be at most windowMs \(30000 ms\), got 60000/,
    );
    expect(() => hedgingWithDefaults('hedging', { minDelayMs: 10, maxDelayMs: 5 })).toThrow(
      /hedging\.maxDelayMs must be at least minDelayMs/,
    );
  });
});
