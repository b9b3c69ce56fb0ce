// Small network helpers for tests. Everything stays on 127.0.0.1.
import net from 'node:net';
import * as grpc from '@grpc/grpc-js';

/** A 127.0.0.1 port where nothing listens: bound once by us, then released. */
export async function closedPort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

interface ChannelzChannel {
  data: { target: string; state: { state: string } | null };
}

/**
 * grpc-js channels with this target that are not closed, read from channelz (on by default):
 * grpc-js lists every channel from its creation until it is closed, so this counts leaks
 * independently of the pool's own figures.
 */
export function channelzChannels(target: string): Promise<number> {
  const handlers = grpc.getChannelzHandlers();
  return new Promise((resolve, reject) => {
    const call = { request: { start_channel_id: 0, max_results: 10_000 } } as never;
    handlers.GetTopChannels(call, (error, response) => {
      if (error) return reject(error);
      const channels = (response as { channel: ChannelzChannel[] }).channel;
      resolve(channels.filter((c) => c.data.target.endsWith(target) && c.data.state?.state !== 'SHUTDOWN').length);
    });
  });
}
