import { isIP } from 'node:net';
import { credentials as grpcCredentials, type ChannelCredentials } from '@grpc/grpc-js';
import { optionError } from '../core/option-error.js';

// What a `pool.client()` target means: the address handed to grpc-js and the credentials it
// implies when the caller passes none.

/** A parsed `pool.client()` target. */
export interface ParsedTarget {
  /** The target handed to grpc-js. */
  target: string;
  /** Credentials derived from the target when the caller passed none. */
  isTls: boolean;
}

/**
 * `https://host[:port]` means TLS (port 443 by default), `http://host[:port]` plaintext (port 80
 * by default); both are rewritten to `host:port` for grpc-js. Everything else (`host:port`,
 * `dns:`, `ipv4:`, `unix:`, `xds:` ...) passes through untouched and is plaintext by default.
 * What can be known to be wrong before a channel exists is refused: a port that is not a number
 * from 1 to 65535, and an empty address after `dns:`, `ipv4:`, `ipv6:`, `unix:` or
 * `unix-abstract:` (grpc-js would accept them and fail every call with UNAVAILABLE).
 */
export function parseTarget(target: unknown): ParsedTarget {
  if (typeof target !== 'string') throw optionError('type', 'target', 'a string such as "host:port"', target);
  if (target.length === 0 || target.trim() !== target || /\s/.test(target)) {
    throw optionError('type', 'target', 'a non-empty string without spaces, such as "host:port"', target);
  }
  const match = /^(https?):\/\/([^/?#]+)\/?$/i.exec(target);
  if (match === null) {
    if (/^https?:\/\//i.test(target)) {
      throw optionError('type', 'target', 'https://host[:port] or http://host[:port] without a path', target);
    }
    checkGrpcTarget(target);
    return { target, isTls: false };
  }
  const isTls = match[1]!.toLowerCase() === 'https';
  const authority = match[2]!;
  const { port } = splitAddress(authority, target);
  return { target: port === undefined ? `${authority}:${isTls ? 443 : 80}` : authority, isTls };
}

/**
 * Whether a grpc-js target can resolve to several endpoints: a `dns:` name or a bare host name
 * (not an IP literal), or an `ipv4:` / `ipv6:` list of two or more addresses. Single-address
 * targets, `unix:` and schemes of plugins (`xds:`) are not.
 */
export function mayHaveSeveralEndpoints(target: string): boolean {
  const scheme = ADDRESS_SCHEMES.exec(target);
  if (scheme !== null) {
    const name = scheme[1]!.toLowerCase();
    const rest = scheme[2]!.replace(/^\/\/[^/]*\//, '');
    if (name === 'ipv4' || name === 'ipv6') return rest.split(',').length > 1;
    if (name === 'dns') return !isIpLiteral(splitAddress(rest, target).host);
    return false;
  }
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(target)) return false;
  return !isIpLiteral(splitAddress(target, target).host);
}

function isIpLiteral(host: string): boolean {
  return host.startsWith('[') || isIP(host) !== 0;
}

/** Schemes whose addresses grpc-js resolves itself, and that an empty address makes useless. */
const ADDRESS_SCHEMES = /^(dns|ipv4|ipv6|unix|unix-abstract):(.*)$/i;

function checkGrpcTarget(target: string): void {
  const scheme = ADDRESS_SCHEMES.exec(target);
  if (scheme === null) {
    // `host:port`, `[v6]:port`, a bare host, or a scheme grpc-js or a plugin knows (`xds:`).
    if (!/^[a-z][a-z0-9+.-]*:\/\//i.test(target)) splitAddress(target, target);
    return;
  }
  const name = scheme[1]!.toLowerCase();
  // `scheme:rest`, `scheme:///rest` or `scheme://authority/rest`: the address is the path.
  const rest = scheme[2]!.replace(/^\/\/[^/]*\//, '');
  if (rest.length === 0 || rest === '/') {
    throw optionError(
      'range',
      'target',
      `an address after "${name}:" (such as "${name === 'unix' ? 'unix:/run/app.sock' : `${name}:host:port`}")`,
      target,
    );
  }
  if (name === 'dns') splitAddress(rest, target);
  if (name === 'ipv4' || name === 'ipv6') for (const address of rest.split(',')) splitAddress(address, target);
}

/** Splits `host[:port]` / `[v6][:port]` and checks the port: decimal, from 1 to 65535. */
function splitAddress(address: string, target: string): { host: string; port: number | undefined } {
  const bracketed = /^(\[[^\]]*\])(?::(.*))?$/.exec(address);
  let host: string;
  let port: string | undefined;
  if (address.length === 0) throw optionError('range', 'target', 'a list without empty addresses', target);
  if (bracketed !== null) {
    host = bracketed[1]!;
    port = bracketed[2];
  } else {
    const colon = address.indexOf(':');
    // More than one colon and no brackets: a bare IPv6 address, without a port.
    if (colon === -1 || address.indexOf(':', colon + 1) !== -1) return { host: address, port: undefined };
    host = address.slice(0, colon);
    port = address.slice(colon + 1);
  }
  if (host.length === 0) throw optionError('range', 'target', 'an address with a host, such as "host:port"', target);
  if (port === undefined) return { host, port: undefined };
  const n = /^\d{1,5}$/.test(port) ? Number(port) : Number.NaN;
  if (!(n >= 1 && n <= 65535))
    throw optionError('range', 'target', `an address whose port is a number from 1 to 65535 (got port ${JSON.stringify(port)})`, target);
  return { host, port: n };
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
