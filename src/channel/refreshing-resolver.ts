import { isIP } from 'node:net';
import { experimental, type ChannelOptions } from '@grpc/grpc-js';
import type { ChannelFactory } from './managed-channel.js';

// Periodic DNS re-resolution. grpc-js resolves a DNS name when a channel starts and again only
// when a connection drops (grpc-node #2455, #2023, #1663): after a scale-up, the new endpoints of
// a headless Service get no traffic until something breaks, and the ones removed are dialled
// until they fail. The pool's channels to DNS targets use a resolver of ours instead, registered
// under its own scheme (the built-in `dns` one is left alone: registering is process-wide). It
// builds grpc-js's own DNS resolver (`experimental.createResolver`, no resolver code of ours)
// and asks it to resolve again every `refreshMs`; grpc-js hands each new answer to the load
// balancer, which connects to added addresses and drains removed ones (round_robin spreads calls
// over all of them; pick_first stays on its address while it is in the answer).

/** The scheme of the pool's refreshing DNS resolver. */
export const REFRESHING_DNS_SCHEME = 'resilient-grpc-dns';

/** The channel option (ours, ignored by grpc-js) that carries the refresh interval to the resolver. */
const REFRESH_OPTION = 'resilient-grpc.dns_refresh_ms';
/** grpc-js's DNS resolver coalesces resolutions closer than this (default 30 s). */
const MIN_TIME_OPTION = 'grpc.dns_min_time_between_resolutions_ms';

type GrpcUri = Parameters<typeof experimental.createResolver>[0];

/** Resolves `<inner scheme>:` targets through grpc-js's resolver for them, again every refresh. */
class RefreshingResolver implements experimental.Resolver {
  readonly #inner: experimental.Resolver;
  readonly #timer: NodeJS.Timeout | undefined;

  constructor(target: GrpcUri, listener: experimental.ResolverListener, options: ChannelOptions, innerScheme: string) {
    this.#inner = experimental.createResolver({ ...target, scheme: innerScheme }, listener, options);
    const refreshMs = options[REFRESH_OPTION] as number | undefined;
    if (refreshMs !== undefined) {
      this.#timer = setInterval(() => this.#inner.updateResolution(), refreshMs);
      // A channel's resolver must never keep the process alive; destroy() (channel close) clears it.
      this.#timer.unref();
    }
  }

  updateResolution(): void {
    this.#inner.updateResolution();
  }

  destroy(): void {
    clearInterval(this.#timer);
    this.#inner.destroy();
  }
}

const registered = new Set<string>();

/**
 * Registers (once per process) `scheme` as a refreshing resolver over grpc-js's resolver of
 * `innerScheme`. Exported with an inner scheme for tests; the pool uses `dns`.
 */
export function registerRefreshingScheme(scheme: string, innerScheme: string): void {
  if (registered.has(scheme)) return;
  registered.add(scheme);
  experimental.registerResolver(
    scheme,
    class extends RefreshingResolver {
      constructor(target: GrpcUri, listener: experimental.ResolverListener, options: ChannelOptions) {
        super(target, listener, options, innerScheme);
      }

      // What grpc-js's DNS resolver answers (the host:port path), so TLS names and the
      // :authority header stay what they would be.
      static getDefaultAuthority(target: GrpcUri): string {
        return target.path;
      }
    },
  );
}

/**
 * The target grpc-js should get for a DNS target when re-resolution is on: `dns:host:port`,
 * `dns:///host:port` and bare `host[:port]` go through the refreshing resolver; IP literals,
 * other schemes (`ipv4:`, `unix:`, `xds:` ...) and `dns://server/...` (a DNS server of its own)
 * are left as they are. Returns undefined to leave the target alone.
 */
export function refreshingTarget(target: string, scheme: string = REFRESHING_DNS_SCHEME): string | undefined {
  let path: string;
  const dns = /^dns:(.*)$/i.exec(target);
  if (dns !== null) {
    const rest = dns[1]!;
    if (rest.startsWith('//')) {
      if (!rest.startsWith('///')) return undefined;
      path = rest.slice(3);
    } else {
      path = rest;
    }
  } else if (/^[a-z][a-z0-9+.-]*:/i.test(target) && !/^[^:]+:\d+$/.test(target)) {
    // Another scheme (a bare `host:port` also starts like `scheme:`, but ends in a port).
    return undefined;
  } else {
    path = target;
  }
  if (isIP(hostOf(path)) !== 0) return undefined;
  return `${scheme}:///${path}`;
}

/** The host of `host[:port]` or `[v6][:port]`. */
function hostOf(path: string): string {
  const bracketed = /^\[([^\]]*)\]/.exec(path);
  if (bracketed !== null) return bracketed[1]!;
  const colon = path.indexOf(':');
  // More than one colon and no brackets: a bare IPv6 address.
  if (colon !== -1 && path.indexOf(':', colon + 1) !== -1) return path;
  return colon === -1 ? path : path.slice(0, colon);
}

/**
 * Wraps a channel factory so that channels to DNS targets re-resolve every `refreshMs` (or
 * returns it unchanged for `false`). The channel's own target and key are untouched; only what
 * grpc-js gets changes: the target's scheme, our refresh option, and the DNS resolver's minimum
 * time between resolutions lowered to `refreshMs` when that is shorter and not set by the user.
 */
export function withRefreshingDns(
  factory: ChannelFactory,
  refreshMs: number | false,
  scheme: string = REFRESHING_DNS_SCHEME,
  innerScheme = 'dns',
): ChannelFactory {
  if (refreshMs === false) return factory;
  return (target, credentials, options) => {
    const rewritten = refreshingTarget(target, scheme);
    if (rewritten === undefined) return factory(target, credentials, options);
    registerRefreshingScheme(scheme, innerScheme);
    const wire: ChannelOptions = { ...options, [REFRESH_OPTION]: refreshMs };
    if (wire[MIN_TIME_OPTION] === undefined && refreshMs < 30_000) wire[MIN_TIME_OPTION] = refreshMs;
    return factory(rewritten, credentials, wire);
  };
}
