// Demo of proto/filtered-lb.ts against grpc-js's plain outlier_detection, on real loopback servers.
// Run: npx tsx proto/filtered-demo.ts
import { randomUUID } from 'node:crypto';
import * as grpc from '@grpc/grpc-js';
import { TestServiceClient } from '../test/helpers/protos.js';
import { startFleet, type EndpointMode } from '../test/helpers/endpoint-fleet.js';
import { odConfig } from './od-config-lib.js';
import { attempts, registerFilterPolicy, TOKEN_KEY, POLICY_NAME, type AttemptContext } from './filtered-lb.js';

registerFilterPolicy();
const od = odConfig();
const RAW = JSON.stringify({ loadBalancingConfig: [od] });
const FILTERED = JSON.stringify({ loadBalancingConfig: [{ [POLICY_NAME]: { child_policy: [od] } }] });
console.log('parse filtered:', JSON.stringify(grpc.experimental.parseLoadBalancingConfig({ [POLICY_NAME]: { child_policy: [od] } }).toJsonObject()));

type Kind = 'unary' | 'unary-abort' | 'stream-to-deadline';
const peers = new Set<string>();
let tokensOnWire = 0;

function callOnce(client: grpc.Client & Record<string, any>, kind: Kind): Promise<void> {
  const token = randomUUID();
  const ctx: AttemptContext = { shape: kind === 'stream-to-deadline' ? 'server-stream' : 'unary', messagesReceived: 0, endedByUs: false };
  attempts.set(token, ctx);
  const md = new grpc.Metadata();
  md.set(TOKEN_KEY, token);
  return new Promise<void>((resolve) => {
    const done = () => {
      attempts.delete(token);
      resolve();
    };
    if (kind === 'stream-to-deadline') {
      const call = client.ServerStream({ message: 's', count: 1000, intervalMs: 20 }, md, { deadline: Date.now() + 150 });
      call.on('data', () => ctx.messagesReceived++);
      call.on('metadata', () => peers.add(`after metadata: ${call.getPeer()}`));
      call.on('error', () => {});
      call.on('status', () => done());
      return;
    }
    if (kind === 'unary-abort') md.set('x-delay-ms', '200');
    const call = client.Echo({ message: 'x' }, md, { deadline: Date.now() + 1000 }, () => {
      peers.add(`after status: ${call.getPeer()}`);
      done();
    });
    if (kind === 'unary-abort') setTimeout(() => { ctx.endedByUs = true; call.cancel(); }, 20);
  });
}

async function scenario(label: string, modes: EndpointMode[], kind: Kind) {
  for (const [name, sc] of [['raw outlier_detection', RAW], ['resilient_filter(outlier_detection)', FILTERED]] as const) {
    const fleet = await startFleet(modes);
    const client = new TestServiceClient(fleet.target, grpc.credentials.createInsecure(), { 'grpc.service_config': sc }) as any;
    const t0 = Date.now();
    let late = [0, 0, 0];
    while (Date.now() - t0 < 3000) {
      const before = fleet.endpoints.map((e) => e.arrived);
      await Promise.all([callOnce(client, kind), callOnce(client, kind), callOnce(client, kind)]);
      if (Date.now() - t0 > 2000) fleet.endpoints.forEach((e, i) => (late[i]! += e.arrived - before[i]!));
    }
    if (sc === FILTERED) for (const e of fleet.endpoints) for (const c of e.server.calls) if (c.metadata.get(TOKEN_KEY).length > 0) tokensOnWire++;
    console.log(`${label.padEnd(48)} ${name.padEnd(38)} attempts per endpoint in 2..3 s: ${JSON.stringify(late)}`);
    client.close();
    await fleet.close();
  }
}

await scenario('1 of 3 UNAVAILABLE (eject it)', [grpc.status.UNAVAILABLE, 'healthy', 'healthy'], 'unary');
await scenario('1 of 3 NOT_FOUND (healthy answer: keep it)', [grpc.status.NOT_FOUND, 'healthy', 'healthy'], 'unary');
await scenario('every call aborted by the caller (keep all)', ['healthy', 'healthy', 'healthy'], 'unary-abort');
await scenario('streams served until their deadline (keep all)', ['healthy', 'healthy', 'healthy'], 'stream-to-deadline');
console.log('token seen by servers under resilient_filter:', tokensOnWire, 'times');
console.log('getPeer samples:', [...peers].filter((p) => p.startsWith('after metadata')).slice(0, 2), [...peers].slice(0, 2));
