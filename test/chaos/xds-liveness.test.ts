// Chaos: the pool's liveness machinery on an xds: channel. The stall detector (a READY channel
// silent while unary calls wait) and the connect watchdog (a channel CONNECTING too long) replace
// the grpc-js channel; on an xds: channel the replacement has its own xDS resolver, so it must
// come back with the mesh's endpoints, and the ADS stream of the channel it replaced must go.
// Backends sit behind fault proxies published over EDS by the in-process control plane.
import * as grpc from '@grpc/grpc-js';
import { describe, expect, it } from 'vitest';
import { type ChannelReplaced, StatusError, type UnaryMethod } from '../../src/index.js';
import { TestServiceClient, type EchoRequest, type EchoResponse } from '../helpers/protos.js';
import { eventually, startMesh } from '../helpers/xds-mesh.js';

interface Echo {
  Echo: UnaryMethod<Partial<EchoRequest>, EchoResponse>;
}

describe('chaos: liveness on an xds: channel', () => {
  it('stall detector: a silently dead connection is left for a new channel, which resolves the mesh again; the old ADS stream goes', async () => {
    const mesh = await startMesh(['healthy'], { proxied: true });
    const pool = mesh.newPool({ stallTimeoutMs: 1_000, deadlineMs: 8_000 });
    const replaced: ChannelReplaced[] = [];
    const replacement = new Promise<void>((resolve) =>
      pool.onChannelReplaced((event) => {
        replaced.push(event);
        resolve();
      }),
    );
    const echo = pool.client(TestServiceClient, mesh.target, mesh.clientOptions()) as unknown as Echo;
    await echo.Echo({ message: 'warm' });
    expect(mesh.proxies[0]!.freezeEstablished()).toBe(1);
    const stuck = echo.Echo({ message: 'on the dead connection' }).catch((error: unknown) => error);
    await replacement;
    // The replacement resolves the listener again over its own ADS stream and connects anew.
    await expect(echo.Echo({ message: 'after' })).resolves.toMatchObject({ message: 'after' });
    const error = await stuck;
    expect(error).toBeInstanceOf(StatusError);
    expect((error as StatusError).code).toBe(grpc.status.DEADLINE_EXCEEDED);
    expect(replaced).toMatchObject([{ target: 'xds:///listener1', reason: 'stalled', replacements: 1 }]);
    expect(pool.stats().perChannel[0]).toMatchObject({ target: 'xds:///listener1', stalls: 1, replacements: 1 });
    expect(mesh.plane.streamsOpened).toBe(2);
    await eventually(() => mesh.plane.openStreams === 1, 'down to the new channel’s stream');
    expect(mesh.plane.nacks).toEqual([]);
  });

  it('connect watchdog: a channel stuck CONNECTING to an endpoint that never answers TCP with HTTP/2 is replaced and calls succeed', async () => {
    // The first connection through the proxy is accepted and never answered (no SETTINGS).
    const mesh = await startMesh(['healthy'], { proxied: { blackholeFirst: 1 } });
    const pool = mesh.newPool({ connectTimeoutMs: 1_000, deadlineMs: 15_000 });
    const replaced: ChannelReplaced[] = [];
    pool.onChannelReplaced((event) => replaced.push(event));
    const echo = pool.client(TestServiceClient, mesh.target, mesh.clientOptions()) as unknown as Echo;
    // The call queued on the stuck channel never left the client; the watchdog's close fails it
    // UNAVAILABLE, and grpc-js cannot retry a call of a closed channel. The mesh owns retries
    // here, so the pool's policy does not retry it either; the pool sends it once more on the
    // new channel all the same (a transparent retry: it reached no server, and the replacement
    // was the pool's). Found by this test: it failed UNAVAILABLE "Channel closed before call started".
    const attempts: number[] = [];
    pool.onAttemptEnd((event) => attempts.push(event.attempt));
    await expect(echo.Echo({ message: 'first' })).resolves.toMatchObject({ message: 'first' });
    expect(attempts).toEqual([1, 2]);
    expect(mesh.fleet.arrived()).toBe(1);
    expect(pool.stats().perChannel[0]).toMatchObject({ retries: 0, grpcOwnsRetries: true });
    await expect(echo.Echo({ message: 'after' })).resolves.toMatchObject({ message: 'after' });
    expect(replaced).toMatchObject([{ target: 'xds:///listener1', reason: 'connect-timeout', replacements: 1 }]);
    expect(mesh.proxies[0]!.accepted).toBe(2);
    await eventually(() => mesh.plane.openStreams === 1, 'down to the new channel’s stream');
  });
});
