// Chaos: 30 s of steady traffic through GOAWAYs (issue 13), pool defaults. Two endpoints, each
// ageing its connections out every second (grpc.max_connection_age_ms 1000, grace 5 s); at 10 s
// endpoint A shuts down gracefully (tryShutdown: GOAWAY, in-flight calls finish) and at 20 s
// a new server takes A's port again. round_robin spreads calls over both. Not one call may fail.
import { describe, expect, it } from 'vitest';
import { ChannelPool } from '../../src/index.js';
import { TestServiceClient } from '../helpers/protos.js';
import { startTestServer, type TestServer } from '../helpers/test-server.js';
import { sleep } from './support.js';

const AGEING = { 'grpc.max_connection_age_ms': 1_000, 'grpc.max_connection_age_grace_ms': 5_000 };
const ROUND_ROBIN = { 'grpc.service_config': JSON.stringify({ loadBalancingConfig: [{ round_robin: {} }] }) };

describe('chaos: GOAWAY under steady traffic', () => {
  it('30 s of max-age GOAWAYs, a graceful shutdown and a restart on the same port: zero failed calls', async () => {
    const a = await startTestServer({ serverOptions: AGEING });
    const b = await startTestServer({ serverOptions: AGEING });
    let a2: TestServer | undefined;
    const pool = new ChannelPool({ channelOptions: ROUND_ROBIN });
    try {
      const echo = pool.client(TestServiceClient, `ipv4:${a.address},${b.address}`);
      const failures: string[] = [];
      let ok = 0;
      const t0 = performance.now();
      const events = (async () => {
        await sleep(10_000);
        await a.stop();
        await sleep(10_000 - (performance.now() - t0 - 10_000));
        a2 = await startTestServer({ port: a.port, serverOptions: AGEING });
      })();
      await Promise.all(
        Array.from({ length: 8 }, async (_, w) => {
          for (let i = 0; performance.now() - t0 < 30_000 && i < 100_000; i++) {
            try {
              await echo.Echo({ message: `${w}-${i}`, delayMs: i % 4 === 0 ? 200 : 5 });
              ok++;
            } catch (error) {
              const e = error as { code?: number; details?: string };
              failures.push(`${(performance.now() - t0).toFixed(0)} ms: ${e.code} ${e.details}`);
            }
          }
        }),
      );
      await events;
      const stats = pool.stats().perChannel[0]!;
      console.info(
        `[chaos goaway] 30 s: ${ok} calls ok, ${failures.length} failed; A ${a.calls.length}, B ${b.calls.length}, ` +
          `A restarted ${a2?.calls.length ?? 0}; retries ${stats.retries}, replacements ${stats.replacements}`,
      );
      expect(failures).toEqual([]);
      expect(a.calls.length).toBeGreaterThan(0);
      expect(b.calls.length).toBeGreaterThan(0);
      // The restarted A got traffic again (round_robin reconnects to it within its backoff).
      expect(a2!.calls.length).toBeGreaterThan(0);
    } finally {
      await pool.close({ graceMs: 0 });
      await a.kill();
      await b.kill();
      await a2?.kill();
    }
  }, 60_000);
});
