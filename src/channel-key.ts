import { credentials as grpcCredentials, type ChannelCredentials, type ChannelOptions } from '@grpc/grpc-js';
import { optionError } from './errors.js';

// The one place that decides "same channel". Two clients share a channel when their target,
// their merged channel options and their credentials match. Credentials match by grpc-js's own
// `_equals` (the comparison its global subchannel pool uses): every insecure credentials object
// is equal to every other, while TLS credentials are equal only when they share a secure context
// (in practice: the same object). See grpc-node #1756 for what createSsl() per call costs.

/** Options the pool sets on every channel unless the user sets them. */
export const POOL_CHANNEL_DEFAULTS: ChannelOptions = {
  // One retry owner: a DNS TXT record must not be able to switch grpc-js retries on underneath
  // ours. A service config passed explicitly in `grpc.service_config` still applies.
  'grpc.service_config_disable_resolution': 1,
};

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

/** Returns a process-wide id per object, for keys that depend on an object's identity. */
const objectIds = new WeakMap<object, number>();
let nextObjectId = 1;
function objectId(value: object): number {
  let id = objectIds.get(value);
  if (id === undefined) {
    id = nextObjectId++;
    objectIds.set(value, id);
  }
  return id;
}

/** The key part that target and channel options contribute: stable whatever the key order. */
export function channelOptionsKey(target: string, options: ChannelOptions): string {
  const parts = Object.keys(options)
    .filter((key) => options[key] !== undefined)
    .sort()
    .map((key) => {
      const value: unknown = options[key];
      const encoded = typeof value === 'object' || typeof value === 'function' ? `#${objectId(value as object)}` : JSON.stringify(value);
      return `${JSON.stringify(key)}=${encoded}`;
    });
  return `${target}\n${parts.join('\n')}`;
}

/** Whether two credentials may share a channel, by grpc-js's own comparison. */
export function sameCredentials(a: ChannelCredentials, b: ChannelCredentials): boolean {
  return a === b || a._equals(b);
}

/** Throws unless `value` is a grpc-js `ChannelCredentials` object. */
export function checkCredentials(value: unknown): asserts value is ChannelCredentials | undefined {
  if (value === undefined) return;
  const creds = value as Partial<ChannelCredentials> | null;
  // Duck-typed rather than instanceof, which a second copy of grpc-js would defeat. Server
  // credentials share _equals and _isSecure; only channel credentials can connect.
  if (
    typeof creds !== 'object' ||
    creds === null ||
    typeof creds._equals !== 'function' ||
    typeof creds._isSecure !== 'function' ||
    typeof creds._createSecureConnector !== 'function'
  ) {
    throw optionError(
      'type',
      'credentials',
      'grpc-js ChannelCredentials (e.g. grpc.credentials.createInsecure()); ' +
        'server or call credentials are not channel credentials, and a second copy of @grpc/grpc-js makes different classes',
      value,
    );
  }
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
