import type { ChannelOptions } from '@grpc/grpc-js';

// Who owns retries on a channel: grpc-js (a service config's or an xDS route's retry policy) or
// the pool. Never both: two layers multiply attempts (3 of ours times 3 of a route's made 9).

/**
 * Whether a `grpc.service_config` channel option gives grpc-js a retry or hedging policy. Then
 * grpc-js owns retries on that channel and ours stay off: two layers would multiply attempts.
 */
export function serviceConfigHasRetries(serviceConfig: unknown): boolean {
  if (typeof serviceConfig !== 'string') return false;
  try {
    const parsed = JSON.parse(serviceConfig) as { methodConfig?: Array<Record<string, unknown>> };
    return (parsed.methodConfig ?? []).some((m) => m.retryPolicy !== undefined || m.hedgingPolicy !== undefined);
  } catch {
    // grpc-js rejects a malformed service config itself when it builds the channel.
    return false;
  }
}

/**
 * Whether grpc-js owns retries on a channel, and the pool's retries are off for it:
 * - `grpc.enable_retries: 0` turns grpc-js's retries off (its RetryingCall then makes one attempt,
 *   transparent retries included): the pool owns them, whatever a service config or a mesh says;
 * - an `xds:` target: the mesh's routes carry retry policies the pool cannot see (they arrive
 *   over RDS after the channel exists, and change), and grpc-js applies them;
 * - a `grpc.service_config` with a `retryPolicy` or `hedgingPolicy`.
 */
export function grpcOwnsRetries(target: string, options: ChannelOptions): boolean {
  if (options['grpc.enable_retries'] === 0) return false;
  return /^xds:/i.test(target) || serviceConfigHasRetries(options['grpc.service_config']);
}
