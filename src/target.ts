import { credentials as grpcCredentials, type ChannelCredentials } from '@grpc/grpc-js';
import { optionError } from './validation.js';

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
    return { target, isTls: false };
  }
  const isTls = match[1]!.toLowerCase() === 'https';
  const authority = match[2]!;
  const hasPort = /:\d+$/.test(authority) && !/^\[[^\]]*\]$/.test(authority);
  return { target: hasPort ? authority : `${authority}:${isTls ? 443 : 80}`, isTls };
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
