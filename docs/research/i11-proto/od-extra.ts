// Research: does a client-side deadline count as a failure in outlier_detection; what does a
// call see when every endpoint is ejected. Run: npx tsx proto/od-extra.ts
import * as grpc from '@grpc/grpc-js';
import { TestServiceClient } from '../test/helpers/protos.js';
import { startFleet } from '../test/helpers/endpoint-fleet.js';
import { odConfig } from './od-config-lib.js';

async function main() {
  for (const [label, modes, over] of [
    ['hang 1 of 3, request_volume 2', ['hang', 'healthy', 'healthy'], { failure_percentage_ejection: { threshold: 50, minimum_hosts: 2, request_volume: 2 } }],
    ['all fail, max 100', [grpc.status.UNAVAILABLE, grpc.status.UNAVAILABLE], { max_ejection_percent: 100 }],
  ] as const) {
    const fleet = await startFleet([...modes]);
    const client = new TestServiceClient(fleet.target, grpc.credentials.createInsecure(), {
      'grpc.service_config': JSON.stringify({ loadBalancingConfig: [odConfig(over as Record<string, unknown>)] }),
    });
    const t0 = Date.now();
    const seen = new Map<string, number>();
    while (Date.now() - t0 < 3500) {
      const before = fleet.endpoints.map((e) => e.arrived);
      const started = Date.now();
      const outcome = await new Promise<string>((resolve) => {
        client.Echo({ message: 'x' }, { deadline: Date.now() + 300 }, (err: grpc.ServiceError | null) => resolve(err ? `${err.code} ${err.details}` : 'OK'));
      });
      const at = fleet.endpoints.map((e, i) => e.arrived - before[i]!).join('');
      const key = `t=${Math.floor((Date.now() - t0) / 1000)}s ${outcome} endpoints=${at} took~${Math.round((Date.now() - started) / 50) * 50}ms`;
      seen.set(key, (seen.get(key) ?? 0) + 1);
      await new Promise((r) => setTimeout(r, 10));
    }
    console.log(`== ${label}`);
    for (const [k, n] of seen) console.log(`  ${n} x ${k}`);
    client.close();
    await fleet.close();
  }
}
await main();
