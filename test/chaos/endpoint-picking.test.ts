// Issue 19, the rows of the picker (slow tier: rates and onset timings). Pool defaults, real
// servers on 127.0.0.1.
// - Row 1: one endpoint of 2 or 3 starts answering UNAVAILABLE (or, under the user's own
//   round_robin, INTERNAL on an idempotent method) while 8 callers call in a tight loop (~1,000
//   calls/s or more): >= 99.5 % of the calls started from 1 s after the onset succeed.
// - Row 3: one endpoint of 3 is a server process that is SIGSTOPped (its connection stays open,
//   nothing answers), 50 calls/s with a 1 s deadline: from 1 s after the onset no attempt goes
//   to it but its probes, and >= 99 % of the calls started then succeed.
import * as grpc from '@grpc/grpc-js';
import { afterEach, describe, expect, it } from 'vitest';
import { ChannelPool, type EndpointEjection } from '../../src/index.js';
import { startFleet, type EndpointMode, type Fleet } from '../helpers/endpoint-fleet.js';
import { ROUND_ROBIN, type Test } from '../helpers/fleet-scenario.js';
import { TestServiceClient } from '../helpers/protos.js';
import { startTestServerProcess, type TestServerProcess } from '../helpers/test-server-process.js';

interface Sample {
  startedAt: number;
  ok: boolean;
  code: number | string;
}

function sampleOf(startedAt: number, error: unknown): Sample {
  if (error === undefined) return { startedAt, ok: true, code: 0 };
  const { code, name } = error as { code?: unknown; name?: unknown };
  return { startedAt, ok: false, code: typeof code === 'number' ? code : String(name) };
}

/** `callers` workers calling back to back for `durationMs`. */
async function tightLoop(call: () => Promise<unknown>, callers: number, durationMs: number): Promise<Sample[]> {
  const samples: Sample[] = [];
  const stopAt = Date.now() + durationMs;
  const worker = async (): Promise<void> => {
    while (Date.now() < stopAt) {
      const startedAt = Date.now();
      try {
        await call();
        samples.push(sampleOf(startedAt, undefined));
      } catch (error) {
        samples.push(sampleOf(startedAt, error));
      }
    }
  };
  await Promise.all(Array.from({ length: callers }, worker));
  return samples;
}

/** An open loop: a call every 1000/`perSecond` ms for `durationMs`, each left to settle on its own. */
async function paced(call: () => Promise<unknown>, perSecond: number, durationMs: number): Promise<Sample[]> {
  const pending: Promise<Sample>[] = [];
  const start = Date.now();
  for (let i = 0; Date.now() - start < durationMs; i++) {
    const startedAt = Date.now();
    pending.push(
      call().then(
        () => sampleOf(startedAt, undefined),
        (error: unknown) => sampleOf(startedAt, error),
      ),
    );
    const next = start + ((i + 1) * 1_000) / perSecond;
    await new Promise((resolve) => setTimeout(resolve, Math.max(0, next - Date.now())));
  }
  return Promise.all(pending);
}

function summary(samples: readonly Sample[]): { calls: number; percent: number; text: string } {
  const ok = samples.filter((s) => s.ok).length;
  const codes: Record<string, number> = {};
  for (const s of samples) codes[String(s.code)] = (codes[String(s.code)] ?? 0) + 1;
  const percent = samples.length === 0 ? 0 : (ok * 100) / samples.length;
  return { calls: samples.length, percent, text: `${percent.toFixed(2)} % of ${samples.length} (codes ${JSON.stringify(codes)})` };
}

let pool: ChannelPool | undefined;
let fleet: Fleet | undefined;
let stopped: TestServerProcess | undefined;

afterEach(async () => {
  await pool?.close({ graceMs: 0 });
  await fleet?.close();
  await stopped?.kill();
  pool = undefined;
  fleet = undefined;
  stopped = undefined;
});

describe('row 1: one endpoint starts failing under 8 callers in a tight loop', () => {
  const cases: Array<{ label: string; n: number; sick: EndpointMode; roundRobin: boolean }> = [
    { label: '1 of 2 UNAVAILABLE', n: 2, sick: grpc.status.UNAVAILABLE, roundRobin: false },
    { label: '1 of 3 UNAVAILABLE', n: 3, sick: grpc.status.UNAVAILABLE, roundRobin: false },
    { label: "1 of 3 INTERNAL, idempotent, the user's own round_robin", n: 3, sick: grpc.status.INTERNAL, roundRobin: true },
  ];
  for (const { label, n, sick, roundRobin } of cases) {
    it(`${label}: >= 99.5 % of the calls started from 1 s after the onset succeed`, async () => {
      fleet = await startFleet(Array.from({ length: n }, (): EndpointMode => 'healthy'));
      pool = new ChannelPool();
      const test = pool.client(TestServiceClient, fleet.target, {
        ...(roundRobin ? { channelOptions: { 'grpc.service_config': ROUND_ROBIN } } : {}),
        methods: { Echo: { idempotent: true } },
      }) as unknown as Test;
      const call = (): Promise<unknown> => test.Echo({ message: 'x' });
      await tightLoop(call, 8, 1_000);
      const sickEndpoint = fleet.endpoints[0]!;
      let onset = Number.POSITIVE_INFINITY;
      const timer = setTimeout(() => {
        sickEndpoint.setMode(sick);
        onset = Date.now();
      }, 1_000);
      const samples = await tightLoop(call, 8, 6_000);
      clearTimeout(timer);
      const measured = samples.filter((s) => s.startedAt >= onset + 1_000);
      const all = summary(samples);
      const result = summary(measured);
      const rate = Math.round(all.calls / 6);
      expect(sickEndpoint.failed, 'the endpoint did fail calls').toBeGreaterThan(0);
      expect(result.calls, `${rate} calls/s`).toBeGreaterThan(100);
      expect(result.percent, `${result.text} at ${rate} calls/s over all (${all.text})`).toBeGreaterThanOrEqual(99.5);
    });
  }
});

describe('row 3: a hung endpoint (a server process SIGSTOPped)', () => {
  it('50 calls/s, 1 s deadline: from 1 s after the onset no attempt goes to it but its probes, and >= 99 % succeed', async () => {
    fleet = await startFleet(['healthy', 'healthy']);
    stopped = await startTestServerProcess();
    const target = `ipv4:${fleet.endpoints.map((e) => e.address).join(',')},${stopped.address}`;
    pool = new ChannelPool();
    const attempts: Array<{ peer: string | undefined; startedAt: number }> = [];
    pool.onAttemptEnd((event) => attempts.push({ peer: event.peer, startedAt: Date.now() - event.durationMs }));
    const ejections: EndpointEjection[] = [];
    pool.onEndpointEjection((event) => ejections.push(event));
    const test = pool.client(TestServiceClient, target, { methods: { Echo: { deadlineMs: 1_000 } } }) as unknown as Test;
    const call = (): Promise<unknown> => test.Echo({ message: 'x' });
    // Warm-up: every endpoint connected and answering.
    const warm = await paced(call, 50, 2_000);
    expect(summary(warm).percent, summary(warm).text).toBe(100);
    expect(attempts.some((a) => a.peer === stopped!.address)).toBe(true);
    let onset = Number.POSITIVE_INFINITY;
    const timer = setTimeout(() => {
      stopped!.pause();
      onset = Date.now();
    }, 500);
    const samples = await paced(call, 50, 6_500);
    clearTimeout(timer);
    stopped.resume();
    const measured = summary(samples.filter((s) => s.startedAt >= onset + 1_000));
    const toStopped = attempts.filter((a) => a.peer === stopped!.address && a.startedAt >= onset + 1_000);
    const outOfStopped = ejections.filter((e) => e.address === stopped!.address && e.ejected);
    const stats = pool.stats().perChannel[0]!.endpoints.find((e) => e.address === stopped!.address);
    const detail = `${measured.text}; attempts to it after onset + 1 s: ${toStopped.length}; its ejections: ${JSON.stringify(outOfStopped)}; stats ${JSON.stringify(stats)}`;
    expect(outOfStopped.length, detail).toBeGreaterThan(0);
    // After the first ejection, every later one is a failed probe: one attempt each.
    expect(toStopped.length, detail).toBeLessThanOrEqual(outOfStopped.length);
    expect(measured.calls, detail).toBeGreaterThan(150);
    expect(measured.percent, detail).toBeGreaterThanOrEqual(99);
  });
});
