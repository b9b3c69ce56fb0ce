// What the pool reads of a user's `grpc.service_config` channel option (grpc-js itself applies it).

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
