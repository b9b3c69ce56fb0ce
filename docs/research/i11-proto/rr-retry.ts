// Research: (1) with round_robin, where does a retry land? (2) the pool's per-channel retry
// throttle with 1 of 3 endpoints answering INTERNAL on an idempotent method.
// Run: npx tsx proto/rr-retry.ts
import * as grpc from '@grpc/grpc-js';
import { ChannelPool } from '../src/index.js';
import { TestServiceClient } from '../test/helpers/protos.js';
import { startFleet } from '../test/helpers/endpoint-fleet.js';

const RR = JSON.stringify({ loadBalancingConfig: [{ round_robin: {} }] });

async function rawRetryLanding(concurrency: number) {
  const fleet = await startFleet([grpc.status.INTERNAL, 'healthy', 'healthy']);
  const client = new TestServiceClient(fleet.target, grpc.credentials.createInsecure(), { 'grpc.service_config': RR }) as any;
  let n = 0;
  const echo = (id: string) =>
    new Promise<grpc.ServiceError | null>((resolve) => {
      const md = new grpc.Metadata();
      md.set('x-call-id', id);
      client.Echo({ message: 'x' }, md, { deadline: Date.now() + 1000 }, (e: grpc.ServiceError | null) => resolve(e));
    });
  const worker = async () => {
    while (n < 600) {
      const id = `c${n++}`;
      if (await echo(id)) await echo(id); // one retry, as a new call
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  // For each call that failed first on endpoint 0: where did its retry go?
  const where = new Map<string, number[]>();
  fleet.endpoints.forEach((e, i) => e.callIds.forEach((id) => id && where.set(id, [...(where.get(id) ?? []), i])));
  const retried = [...where.values()].filter((v) => v.length === 2);
  const landing = [0, 0, 0];
  for (const v of retried) landing[v[1]!]!++;
  console.log(`raw round_robin, concurrency ${concurrency}: ${retried.length} retries; retry landed on endpoint [0,1,2] = ${JSON.stringify(landing)}`);
  client.close();
  await fleet.close();
}

async function poolThrottle(label: string, sick: number, opts: Record<string, unknown> = {}) {
  const fleet = await startFleet([grpc.status.INTERNAL, 'healthy', 'healthy'].slice(0, 3).map((m, i) => (i < sick ? grpc.status.INTERNAL : 'healthy')) as never);
  const pool = new ChannelPool({ deadlineMs: 2000, ...opts });
  const client = pool.client(TestServiceClient, fleet.target, {
    channelOptions: { 'grpc.service_config': RR },
    methods: { Echo: { idempotent: true } },
  }) as any;
  let ok = 0;
  let fail = 0;
  const tokens: string[] = [];
  for (let i = 0; i < 300; i++) {
    try {
      await client.Echo({ message: 'x' });
      ok++;
    } catch {
      fail++;
    }
    if (i % 50 === 49) tokens.push((pool.stats() as any).perChannel[0].retryTokens?.toFixed(1) ?? "-");
  }
  const ch = (pool.stats() as any).perChannel[0];
  console.log(`${label}: ${ok}/300 ok (${((ok * 100) / 300).toFixed(1)} %), attempts at servers ${fleet.arrived()} (${(fleet.arrived() / 300).toFixed(2)}/call), retries ${ch.retries}, throttled ${ch.throttledRetries}, tokens every 50 calls ${tokens.join(' ')}, breaker ${ch.breakers.map((b: any) => b.state).join(',')}`);
  await pool.close();
  await fleet.close();
}

// Token model: p = failure probability of one attempt (sick share under round_robin), retry
// lands on a healthy endpoint with probability q; maxAttempts 3; tokens 10, ratio 0.1.
function simulate(policy: 'per-attempt (A6 as implemented)' | 'per-call (refund on a successful retry)', p: number, q: number, calls = 10_000) {
  let tokens = 10;
  let ok = 0;
  let attempts = 0;
  let seed = 42;
  const rand = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
  for (let c = 0; c < calls; c++) {
    let success = false;
    let failedAttempts = 0;
    for (let a = 0; a < 3; a++) {
      if (a > 0 && !(tokens > 5)) break;
      attempts++;
      const failed = a === 0 ? rand() < p : rand() >= q;
      if (!failed) {
        success = true;
        break;
      }
      failedAttempts++;
      if (policy.startsWith('per-attempt')) tokens = Math.max(0, tokens - 1);
    }
    if (policy.startsWith('per-attempt')) {
      if (success) tokens = Math.min(10, tokens + 0.1);
    } else if (success) tokens = Math.min(10, tokens + 0.1);
    else tokens = Math.max(0, tokens - 1);
    if (success) ok++;
  }
  return `${policy}, p=${p.toFixed(2)}, retry healthy ${q}: ${((ok * 100) / calls).toFixed(1)} % ok, ${(attempts / calls).toFixed(3)} attempts/call, tokens at end ${tokens.toFixed(1)}`;
}

// (landing measured above)
await rawRetryLanding(1);
await rawRetryLanding(8);
await poolThrottle('pool, round_robin, 1 of 3 INTERNAL, idempotent, defaults (maxAttempts 3)', 1);
await poolThrottle('pool, same, retryThrottling false', 1, { retryThrottling: false });
await poolThrottle('pool, same, breaker false', 1, { breaker: false });
for (const policy of ['per-attempt (A6 as implemented)', 'per-call (refund on a successful retry)'] as const) {
  console.log(simulate(policy, 1 / 3, 1));
  console.log(simulate(policy, 1 / 3, 0.5));
  console.log(simulate(policy, 0.5, 1));
  console.log(simulate(policy, 1, 0));
  console.log(simulate(policy, 0.05, 0.95));
}
