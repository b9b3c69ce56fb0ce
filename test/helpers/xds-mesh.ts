// A service mesh on loopback for tests: a fleet of test servers (endpoint-fleet.ts) published
// over EDS by an in-process xDS control plane (xds-control-plane.ts), and @grpc/grpc-js-xds
// registered with this process's grpc-js. Torn down (pools first, then plane and fleet) when the
// test finishes.
//
//   const mesh = await startMesh(['healthy', 'healthy'], { retryPolicy: { numRetries: 2 } });
//   const pool = mesh.newPool();
//   const echo = pool.client(TestServiceClient, mesh.target, mesh.clientOptions());
//   mesh.fleet.endpoints[0].arrived    // attempts on the wire at that backend
import * as xds from '@grpc/grpc-js-xds';
import { onTestFinished } from 'vitest';
import { ChannelPool, type ChannelPoolOptions, type ClientOptions } from '../../src/index.js';
import { startFleet, type EndpointMode, type Fleet } from './endpoint-fleet.js';
import { startFaultProxy, type FaultProxy, type FaultProxyOptions } from './fault-proxy.js';
import { startControlPlane, XDS_BOOTSTRAP_OPTION, type ControlPlane, type RouteRetryPolicy } from './xds-control-plane.js';

export const LISTENER = 'listener1';

export interface Mesh {
  readonly fleet: Fleet;
  readonly plane: ControlPlane;
  /** With `proxied`: one fault proxy in front of each backend (EDS publishes the proxies). */
  readonly proxies: readonly FaultProxy[];
  /** `xds:///listener1`. */
  readonly target: string;
  /** Client options whose channel bootstraps from this plane; `channelOptions` are merged in. */
  clientOptions(options?: ClientOptions): ClientOptions;
  /** A new pool, closed (graceMs 0) before the plane and the fleet go. */
  newPool(options?: ChannelPoolOptions): ChannelPool;
}

export interface MeshOptions {
  retryPolicy?: RouteRetryPolicy;
  /** Put a fault proxy in front of each backend (with these options, when an object). Default: false. */
  proxied?: boolean | FaultProxyOptions;
}

export async function startMesh(modes: readonly EndpointMode[], options: MeshOptions = {}): Promise<Mesh> {
  xds.register();
  const fleet = await startFleet(modes);
  const proxies: FaultProxy[] = [];
  const pools: ChannelPool[] = [];
  let plane: ControlPlane | undefined;
  onTestFinished(async () => {
    await Promise.allSettled(pools.map((pool) => pool.close({ graceMs: 0 })));
    await plane?.close();
    await Promise.all(proxies.map((proxy) => proxy.close()));
    await fleet.close();
  });
  const proxied = options.proxied ?? false;
  if (proxied !== false) {
    for (const endpoint of fleet.endpoints)
      proxies.push(await startFaultProxy({ port: portOf(endpoint) }, proxied === true ? {} : proxied));
  }
  const backends = proxied !== false ? proxies.map((proxy) => proxy.port) : fleet.endpoints.map(portOf);
  plane = await startControlPlane({ listeners: [LISTENER], backends, retryPolicy: options.retryPolicy });
  return {
    fleet,
    plane,
    proxies,
    target: `xds:///${LISTENER}`,
    clientOptions: (client = {}) => ({
      ...client,
      channelOptions: { ...client.channelOptions, [XDS_BOOTSTRAP_OPTION]: plane.bootstrap },
    }),
    newPool(poolOptions) {
      const pool = new ChannelPool(poolOptions);
      pools.push(pool);
      return pool;
    },
  };
}

/** The port of a fleet endpoint's "127.0.0.1:PORT". */
export function portOf(endpoint: { address: string }): number {
  return Number(endpoint.address.slice(endpoint.address.lastIndexOf(':') + 1));
}

/** Resolves once `condition()` holds, checking every 20 ms; rejects after `limitMs` (a bound, not a measure). */
export async function eventually(condition: () => boolean, what: string, limitMs = 20_000): Promise<void> {
  const giveUpAt = Date.now() + limitMs;
  while (!condition()) {
    if (Date.now() > giveUpAt) throw new Error(`still not ${what} after ${limitMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}
