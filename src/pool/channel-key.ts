import type { ChannelCredentials, ChannelOptions } from '@grpc/grpc-js';

// The one place that decides "same channel". Two clients share a channel when their target,
// their merged channel options and their credentials match. Credentials match by grpc-js's own
// `_equals` (the comparison its global subchannel pool uses): every insecure credentials object
// is equal to every other, while TLS credentials are equal only when they share a secure context
// (in practice: the same object). See grpc-node #1756 for what createSsl() per call costs.

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
