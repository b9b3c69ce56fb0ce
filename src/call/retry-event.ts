// What `pool.onRetry` reports: the only event a call emits on the pool itself.

/** Reported by `pool.onRetry` before each retry's backoff. */
export interface RetryEvent {
  /** The channel's target, as given to `pool.client()`. */
  target: string;
  /** Full method path. */
  method: string;
  /** The attempt that failed (1 for the first). */
  attempt: number;
  /** Its status code. */
  code: number;
  /** Its status details. */
  details: string;
  /** The backoff before the next attempt, in ms. */
  delayMs: number;
  /** The delay is the server's `grpc-retry-pushback-ms` rather than our backoff. */
  pushback: boolean;
  /** The call's `callId` in the call events (`pool.onCallStart`); 0 when nobody listened to those when it started. */
  callId: number;
}
