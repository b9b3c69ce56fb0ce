// Chaos: the connect watchdog over a long run against a persistent half-open peer (issue 13):
// every connection is accepted and never answered, so the watchdog replaces the channel every
// connectTimeoutMs for 40 s. The sockets open at the peer are sampled throughout: at most one
// per target at a time (the current channel's attempt), and none after close().
import { describe, expect, it } from 'vitest';
import { ChannelPool, type ChannelReplaced } from '../../src/index.js';
import { startFaultProxy } from '../helpers/fault-proxy.js';
import { TestServiceClient } from '../helpers/protos.js';
import { startTestServer } from '../helpers/test-server.js';
import { sleep, waitUntil } from './support.js';

describe('chaos: connect watchdog against a persistent half-open peer', () => {
  it('40 s of replacements leave at most one socket per target open, and close() none', async () => {
    const server = await startTestServer();
    const proxy = await startFaultProxy({ port: server.port }, { mode: 'blackhole' });
    const pool = new ChannelPool({ connectTimeoutMs: 400, deadlineMs: 1_000, breaker: false });
    try {
      const replaced: ChannelReplaced[] = [];
      pool.onChannelReplaced((event) => replaced.push(event));
      // Two targets (two clients of one peer under different channel options): one socket each.
      const one = pool.client(TestServiceClient, proxy.address);
      const two = pool.client(TestServiceClient, proxy.address, { channelOptions: { 'grpc.primary_user_agent': 'second' } });
      const samples: number[] = [];
      const sampler = setInterval(() => samples.push(proxy.live), 25);
      const t0 = performance.now();
      await Promise.all(
        [one, two].map(async (echo) => {
          for (let i = 0; performance.now() - t0 < 40_000 && i < 1_000; i++) await echo.Echo({ message: `${i}` }).catch(() => undefined);
        }),
      );
      clearInterval(sampler);
      const maxLive = Math.max(...samples);
      await sleep(200);
      const liveBeforeClose = proxy.live;
      await pool.close({ graceMs: 0 });
      await waitUntil(() => proxy.live === 0, 3_000);
      console.info(
        `[chaos watchdog-leak] 40 s, 2 channels: ${replaced.length} replacements, ${proxy.accepted} connections accepted; ` +
          `open at the peer: max ${maxLive} (of 2 channels), ${liveBeforeClose} before close(), ${proxy.live} after`,
      );
      expect(replaced.length).toBeGreaterThanOrEqual(100);
      // One socket per channel, with a moment's overlap as a replacement dials while the old one's close travels.
      expect(maxLive).toBeLessThanOrEqual(4);
      expect(samples.filter((n) => n > 2).length / samples.length).toBeLessThan(0.05);
      expect(proxy.live).toBe(0);
    } finally {
      await pool.close({ graceMs: 0 });
      await proxy.close();
      await server.kill();
    }
  }, 90_000);
});
