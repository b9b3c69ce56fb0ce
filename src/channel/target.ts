import { isIP } from 'node:net';
import { credentials as grpcCredentials, experimental, type ChannelCredentials } from '@grpc/grpc-js';
import { optionError } from '../core/option-error.js';

// What a `pool.client()` target means: the address handed to grpc-js and the credentials it
// implies when the caller passes none. Targets are read as grpc-js 1.14 reads them
// (uri-parser.ts, resolver.ts): `scheme:path`, `scheme:///path` or `scheme://authority/path`
// when a resolver is registered for the scheme, and otherwise the whole target is a DNS name,
// `host[:port]` or `[v6][:port]` (`localhost:50051` is scheme "localhost", unregistered).

/** A parsed `pool.client()` target. */
export interface ParsedTarget {
  /** The target handed to grpc-js. */
  target: string;
  /** Credentials derived from the target when the caller passed none. */
  isTls: boolean;
}

/** grpc-js's own URI rule: scheme, then `//authority/` if present, then the path. */
const GRPC_URI = /^(?:([A-Za-z0-9+.-]+):)?(?:\/\/([^/]*)\/)?(.+)$/;

/** Schemes grpc-js 1.14 resolves itself, and `xds`, which @grpc/grpc-js-xds registers. */
const KNOWN_SCHEMES = new Set(['dns', 'ipv4', 'ipv6', 'unix', 'xds']);

/**
 * Whether the xDS resolver is registered with this copy of grpc-js. grpc-js 1.14 has no public
 * query for resolvers; `register()` of @grpc/grpc-js-xds registers the `xds` resolver together
 * with its load-balancing policies, and the resolver's service config selects
 * `xds_cluster_manager`, without which no `xds:` call can be routed: that policy's registration
 * is the public signal (`experimental.isLoadBalancerNameRegistered`). A second copy of grpc-js
 * that xds registered with would not serve our channels either, and reads false here.
 */
export function isXdsRegistered(): boolean {
  return experimental.isLoadBalancerNameRegistered('xds_cluster_manager');
}

/**
 * `https://host[:port]` means TLS (port 443 by default), `http://host[:port]` plaintext (port 80
 * by default); both are rewritten to `host:port` for grpc-js. Everything else passes through
 * untouched and is plaintext by default: `host:port`, `[v6]:port`, `dns:[//server/]host:port`,
 * `ipv4:a:p,b:p`, `ipv6:[a]:p`, `unix:/path`, `xds:name` / `xds:///name`, and a resolver
 * plugin's `scheme:///path` or `scheme://authority/path`. What can be known to be wrong before a
 * channel exists is refused with a RangeError naming `target`: a port that is not a number from
 * 1 to 65535, an unclosed or empty `[`, an empty address after a scheme, `unix-abstract:` (no
 * grpc-js resolver), a known scheme not in lower case (grpc-js would not find its resolver), an
 * `xds:` target while no xDS resolver is registered, and userinfo
 * (`user:password@`), shown with the password replaced by `***`.
 *
 * @param xdsRegistered whether `xds:` targets can resolve (a parameter for tests).
 */
export function parseTarget(target: unknown, xdsRegistered: boolean = isXdsRegistered()): ParsedTarget {
  if (typeof target !== 'string') throw optionError('type', 'target', 'a string such as "host:port"', target);
  // Redacted before it is cut: a cut could leave a password without the `@` that marks it.
  const redacted = redactTarget(target);
  const shown = JSON.stringify(redacted.length > 200 ? `${redacted.slice(0, 197)}...` : redacted);
  const refuse = (expected: string, kind: 'type' | 'range' = 'range') => optionError(kind, 'target', expected, target, shown);
  if (target.length === 0 || target.trim() !== target || /\s/.test(target)) {
    throw refuse('a non-empty string without spaces, such as "host:port"', 'type');
  }
  const web = /^(https?):\/\/(.*)$/i.exec(target);
  if (web !== null) {
    const [, scheme, rest] = web as unknown as [string, string, string];
    const authority = rest.replace(/\/$/, '');
    if (authority.includes('@')) throw refuse(USERINFO);
    if (authority.length === 0 || /[/?#]/.test(authority)) {
      throw refuse('https://host[:port] or http://host[:port] without a path', 'type');
    }
    const isTls = scheme.toLowerCase() === 'https';
    const { port } = splitHostPort(authority, refuse);
    return { target: port === undefined ? `${authority}:${isTls ? 443 : 80}` : authority, isTls };
  }
  checkGrpcTarget(target, xdsRegistered, refuse);
  return { target, isTls: false };
}

/**
 * Whether a grpc-js target can resolve to several endpoints: a `dns:` name or a bare host name
 * (not an IP literal), or an `ipv4:` / `ipv6:` list of two or more addresses. Single-address
 * targets, `unix:` and schemes of plugins (`xds:`) are not. Takes a target parseTarget accepted.
 */
export function mayHaveSeveralEndpoints(target: string): boolean {
  const { scheme, path } = readUri(target);
  if (scheme === 'ipv4' || scheme === 'ipv6') return path.split(',').length > 1;
  if (scheme === 'dns') return !isIpLiteral(hostOf(path));
  if (scheme !== undefined || /^[A-Za-z0-9+.-]+:\/\//.test(target)) return false;
  return !isIpLiteral(hostOf(target));
}

/**
 * The target with the password of any userinfo replaced by `***` (`user:***@host`), or the whole
 * userinfo when it has no colon (it may be a token). Everything from where the authority starts
 * up to the last `@` counts, so a password holding `/` or `@` is hidden too.
 */
export function redactTarget(target: string): string {
  const at = target.lastIndexOf('@');
  if (at === -1) return target;
  const scheme = /^([A-Za-z0-9+.-]+):(\/\/)?/.exec(target);
  const start = scheme === null || (scheme[2] === undefined && !KNOWN_SCHEMES.has(scheme[1]!.toLowerCase())) ? 0 : scheme[0].length;
  if (start > at) return target;
  const userinfo = target.slice(start, at);
  const colon = userinfo.indexOf(':');
  return `${target.slice(0, start)}${colon === -1 ? '***' : `${userinfo.slice(0, colon)}:***`}${target.slice(at)}`;
}

const USERINFO =
  'a target without userinfo (user:password@): grpc-js sends none, and the pool never echoes it; ' +
  'pass credentials as channel or call credentials';

type Refuse = (expected: string, kind?: 'type' | 'range') => Error;

/** Scheme (lowercased, when grpc-js would resolve it), authority and path, as grpc-js splits them. */
function readUri(target: string): { scheme: string | undefined; authority: string | undefined; path: string } {
  const uri = GRPC_URI.exec(target);
  const scheme = uri?.[1]?.toLowerCase();
  if (uri === null || scheme === undefined || !KNOWN_SCHEMES.has(scheme)) return { scheme: undefined, authority: undefined, path: target };
  return { scheme, authority: uri[2], path: uri[3]! };
}

function checkGrpcTarget(target: string, xdsRegistered: boolean, refuse: Refuse): void {
  // `scheme:` alone: grpc-js's path needs a character, so it would read the whole as a DNS name.
  const bare = /^([a-z0-9+.-]+):\/*$/.exec(target)?.[1];
  if (bare !== undefined && KNOWN_SCHEMES.has(bare)) throw refuse(emptyAfter(bare));
  if (/^unix-abstract:/i.test(target)) {
    throw refuse('a target grpc-js can resolve: grpc-js has no resolver for "unix-abstract:" (use "unix:/path")');
  }
  const uri = GRPC_URI.exec(target)!;
  const scheme = uri[1]?.toLowerCase();
  // grpc-js looks resolvers up by the scheme as written: `XDS:` or `DNS:` finds none, and the
  // whole target becomes a DNS name that fails every call.
  if (scheme !== undefined && KNOWN_SCHEMES.has(scheme) && uri[1] !== scheme) {
    throw refuse(`a scheme in lower case, as grpc-js matches it ("${scheme}:")`);
  }
  if (scheme === undefined || !KNOWN_SCHEMES.has(scheme)) {
    // No scheme, or one grpc-js has no resolver for: grpc-js reads the whole target as a DNS
    // name. A plugin's own scheme is passed through when written `scheme:///path` or
    // `scheme://authority/path`.
    if (scheme !== undefined && uri[2] !== undefined) {
      if (uri[2].includes('@')) throw refuse(USERINFO);
      return;
    }
    checkDnsName(target, refuse);
    return;
  }
  if (scheme === 'xds' && !xdsRegistered) {
    throw refuse(
      'a target with a registered resolver: "xds:" needs the xDS resolver, so call register() from ' +
        '@grpc/grpc-js-xds before pool.client() (grpc-js would resolve this target as a DNS name and fail every call)',
    );
  }
  const authority = uri[2];
  const path = uri[3]!;
  if (authority?.includes('@')) throw refuse(USERINFO);
  // `scheme://authority/` with nothing after it, or `scheme://authority` without the slash.
  if (path.startsWith('//') && scheme !== 'unix') throw refuse(emptyAfter(scheme));
  switch (scheme) {
    case 'xds':
    case 'unix':
      if (path.replace(/^\/+/, '').length === 0) throw refuse(emptyAfter(scheme));
      return;
    case 'dns':
      checkDnsName(path, refuse);
      return;
    default:
      // ipv4, ipv6: a list of addresses
      for (const address of path.split(',')) {
        if (address.length === 0) throw refuse('a list without empty addresses');
        checkDnsName(address, refuse);
      }
  }
}

function emptyAfter(scheme: string): string {
  const example = scheme === 'unix' ? 'unix:/run/app.sock' : scheme === 'xds' ? 'xds:///listener' : `${scheme}:host:port`;
  return `an address after "${scheme}:" (such as "${example}")`;
}

/** `host[:port]` or `[v6][:port]`, as grpc-js's DNS and IP resolvers split it. */
function checkDnsName(name: string, refuse: Refuse): void {
  const { host } = splitHostPort(name, refuse);
  if (host.includes('@')) throw refuse(USERINFO);
}

/**
 * grpc-js's splitHostPort, with the port checked: a bracketed host must be closed and hold an
 * IPv6 address (a colon), followed by nothing or `:port`; otherwise one colon separates the
 * port and more than one make a bare IPv6 address. Ports are decimal, from 1 to 65535.
 */
function splitHostPort(address: string, refuse: Refuse): { host: string; port: number | undefined } {
  let host: string;
  let port: string | undefined;
  if (address.startsWith('[')) {
    const end = address.indexOf(']');
    if (end === -1) throw refuse('an address whose "[" is closed, such as "[::1]:50051"');
    host = address.slice(0, end + 1);
    if (!host.includes(':')) throw refuse('an IPv6 address inside "[...]", such as "[::1]:50051"');
    const after = address.slice(end + 1);
    if (after.length > 0 && !after.startsWith(':')) throw refuse('nothing after "]" but ":port", such as "[::1]:50051"');
    port = after.length > 0 ? after.slice(1) : undefined;
  } else {
    const parts = address.split(':');
    // More than one colon and no brackets: a bare IPv6 address, without a port.
    if (parts.length !== 2) return { host: address, port: undefined };
    [host, port] = parts as [string, string];
  }
  if (host.length === 0) throw refuse('an address with a host, such as "host:port"');
  if (port === undefined) return { host, port: undefined };
  const n = /^\d{1,5}$/.test(port) ? Number(port) : Number.NaN;
  if (!(n >= 1 && n <= 65535)) throw refuse(`an address whose port is a number from 1 to 65535 (got port ${JSON.stringify(port)})`);
  return { host, port: n };
}

function hostOf(address: string): string {
  if (address.startsWith('[')) return address.slice(0, address.indexOf(']') + 1);
  const parts = address.split(':');
  return parts.length === 2 ? parts[0]! : address;
}

function isIpLiteral(host: string): boolean {
  return host.startsWith('[') || isIP(host) !== 0;
}

/** The credentials derived from a target, one object per pool so TLS channels can be shared. */
export class DefaultCredentials {
  #tls: ChannelCredentials | undefined;
  #insecure: ChannelCredentials | undefined;

  for(parsed: ParsedTarget): ChannelCredentials {
    if (parsed.isTls) return (this.#tls ??= grpcCredentials.createSsl());
    return (this.#insecure ??= grpcCredentials.createInsecure());
  }
}
