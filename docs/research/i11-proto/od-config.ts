// Research: grpc-js 1.14.7 outlier_detection over round_robin on N loopback endpoints.
// Run: npx tsx proto/od-config.ts
import * as grpc from '@grpc/grpc-js';
import { TestServiceClient } from '../test/helpers/protos.js';
import { startFleet, type EndpointMode } from '../test/helpers/endpoint-fleet.js';

const { parseLoadBalancingConfig } = grpc.experimental;

export function odConfig(over: Record<string, unknown> = {}) {
  return {
    outlier_detection: {
      interval: { seconds: 1, nanos: 0 },
      base_ejection_time: { seconds: 3, nanos: 0 },
      max_ejection_time: { seconds: 30, nanos: 0 },
      max_ejection_percent: 50,
      failure_percentage_ejection: { threshold: 50, enforcement_percentage: 100, minimum_hosts: 2, request_volume: 5 },
      child_policy: [{ round_robin: {} }],
      ...over,
    },
  };
}

function check(label: string, raw: object) {
  try {
    const cfg = parseLoadBalancingConfig(raw);
    console.log(`parse OK   ${label}: ${JSON.stringify(cfg.toJsonObject())}`);
  } catch (e) {
    console.log(`parse FAIL ${label}: ${(e as Error).message}`);
  }
}

async function run(modes: EndpointMode[], over: Record<string, unknown>, label: string, recoverAtMs?: number) {
  const fleet = await startFleet(modes);
  const sc = JSON.stringify({ loadBalancingConfig: [odConfig(over)] });
  const client = new TestServiceClient(fleet.target, grpc.credentials.createInsecure(), { 'grpc.service_config': sc });
  const t0 = Date.now();
  const perSecond: { ok: number; fail: number; codes: Record<number, number>; arrived: number[] }[] = [];
  const DURATION = recoverAtMs ? recoverAtMs + 6000 : 5000;
  let recovered = false;
  while (Date.now() - t0 < DURATION) {
    if (recoverAtMs && !recovered && Date.now() - t0 >= recoverAtMs) {
      recovered = true;
      fleet.endpoints.forEach((e) => e.setMode('healthy'));
    }
    const sec = Math.floor((Date.now() - t0) / 1000);
    const bucket = (perSecond[sec] ??= { ok: 0, fail: 0, codes: {}, arrived: [] });
    const before = fleet.endpoints.map((e) => e.arrived);
    await new Promise<void>((resolve) => {
      client.Echo({ message: 'x' }, { deadline: Date.now() + 300 }, (err: grpc.ServiceError | null) => {
        if (err) { bucket.fail++; bucket.codes[err.code] = (bucket.codes[err.code] ?? 0) + 1; } else bucket.ok++;
        resolve();
      });
    });
    fleet.endpoints.forEach((e, i) => { bucket.arrived[i] = (bucket.arrived[i] ?? 0) + e.arrived - before[i]!; });
    await new Promise((r) => setTimeout(r, 10));
  }
  console.log(`\n== ${label} modes=${JSON.stringify(modes)} ${JSON.stringify(over)}`);
  perSecond.forEach((b, s) => console.log(`  t=${s}s ok=${b.ok} fail=${b.fail} codes=${JSON.stringify(b.codes)} perEndpoint=${JSON.stringify(b.arrived)}`));
  client.close();
  await fleet.close();
}

check('as brief wrote (childPolicy camelCase)', { outlier_detection: { interval: { seconds: 1, nanos: 0 }, childPolicy: [{ round_robin: {} }] } });
check('string duration', odConfig({ interval: '1s' }));
check('pick_first child', odConfig({ child_policy: [{ pick_first: {} }] }));
check('good', odConfig());
check('no ejection block', odConfig({ failure_percentage_ejection: undefined }));
check('camelCase fields inside', odConfig({ maxEjectionPercent: 50 }));
check('threshold 0', odConfig({ failure_percentage_ejection: { threshold: 0 } }));

const U = grpc.status.UNAVAILABLE;
await run([U, 'healthy'], {}, 'A: 1 of 2 UNAVAILABLE, first');
await run(['healthy', 'healthy', U], {}, 'B: 1 of 3 UNAVAILABLE, last');
await run([U, 'healthy'], { max_ejection_percent: 10 }, 'C: 1 of 2, max_ejection_percent 10 (default)');
await run([U, 'healthy'], { failure_percentage_ejection: { threshold: 50, request_volume: 5 } }, 'D: minimum_hosts default (5)');
await run([U, U], {}, 'E: all 2 fail, max 50');
await run([U, U], { max_ejection_percent: 100 }, 'F: all 2 fail, max 100');
await run([U, U, U], { max_ejection_percent: 100 }, 'G: all 3 fail, max 100, recover at 3s', 3000);
await run(['hang', 'healthy', 'healthy'], {}, 'H: 1 of 3 hangs (300 ms deadline)');
await run([U, 'healthy'], {}, 'I: 1 of 2 then recovers at 2s', 2000);
