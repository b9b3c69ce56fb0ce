import { status } from '@grpc/grpc-js';

// The one place that says what a gRPC status means: whether it says anything about the
// backend's health (for the circuit breaker), which codes may ever be retried, and which failures
// are grpc-js's own about a message of ours. The retry policy, the breaker and the attempt all
// ask here; none of them decides on its own.

/** Codes a server may send for a transient condition: the only ones a user may list as retryable. */
export const RETRYABLE_CANDIDATES: ReadonlySet<number> = new Set([
  status.UNKNOWN,
  status.DEADLINE_EXCEEDED,
  status.ABORTED,
  status.INTERNAL,
  status.UNAVAILABLE,
  status.DATA_LOSS,
]);

/** Retried for idempotent methods too: the request may or may not have run, and running it again is safe. */
export const IDEMPOTENT_RETRYABLE = [status.ABORTED, status.INTERNAL, status.UNKNOWN, status.DEADLINE_EXCEEDED] as const;

/**
 * grpc-js's own failures about a message: a request it could not serialize, a response it
 * could not parse, a message over a size limit. The server's health is not in question and the
 * same bytes would fail again, so these are neither retried nor counted by the breaker.
 */
export function isLocalMessageFailure(code: number, details: string): boolean {
  switch (code) {
    case status.INTERNAL:
      return details.startsWith('Request message serialization failure') || details.startsWith('Response message parsing error');
    case status.RESOURCE_EXHAUSTED:
      // "Received message larger than max", "Attempted to send message with a size larger than".
      return /larger than/i.test(details);
    default:
      return false;
  }
}

/** How grpc-js begins the details of a call whose call credentials failed (1.14, load-balancing-call.ts). */
const CALL_CREDENTIALS_FAILED = 'Getting metadata from plugin failed';

/**
 * Whether a status says the backend is unhealthy: UNAVAILABLE, DEADLINE_EXCEEDED, INTERNAL,
 * UNKNOWN, DATA_LOSS, a RESOURCE_EXHAUSTED the server sent. Any other status is a healthy
 * answer: the server decided (NOT_FOUND, INVALID_ARGUMENT, ...). A failure of the caller's
 * call credentials is neither: it says nothing about the backend.
 */
export function isBackendFailure(code: number, details: string): boolean {
  // The caller's call credentials could not make their metadata (a token service down): the
  // request never left the client, and the backend's health is not in question.
  if (details.startsWith(CALL_CREDENTIALS_FAILED)) return false;
  switch (code) {
    case status.UNAVAILABLE:
    case status.DEADLINE_EXCEEDED:
    case status.UNKNOWN:
    case status.DATA_LOSS:
      return true;
    case status.INTERNAL:
    case status.RESOURCE_EXHAUSTED:
      // Unless grpc-js raised it about a message of ours (size limits, serialization).
      return !isLocalMessageFailure(code, details);
    default:
      return false;
  }
}

/**
 * How a finished attempt counts for health: `'success'` (a response, or a healthy answer),
 * `'failure'` (the backend is unhealthy), or `'ignored'` (it says nothing about the backend:
 * we ended it ourselves, or it failed for a reason of ours).
 */
export type AttemptOutcome = 'success' | 'failure' | 'ignored';

/**
 * The health outcome of a settled attempt. `error` is null for a success; `endedByUs` says the
 * attempt was ended from our side (an abort, a parent's cancellation, close(), a stream's reader
 * leaving, a failing request source, a replaced channel), which counts neither way.
 */
export function attemptOutcome(error: unknown, endedByUs: boolean): AttemptOutcome {
  if (error === null || error === undefined) return 'success';
  if (endedByUs) return 'ignored';
  if (typeof error !== 'object') return 'ignored';
  const { code, details } = error as { code?: unknown; details?: unknown };
  if (typeof code !== 'number') return 'ignored';
  return isBackendFailure(code, typeof details === 'string' ? details : '') ? 'failure' : 'success';
}

/**
 * How far a failed attempt's request got, as far as the client can tell (grpc-js keeps its own
 * record of this private):
 * - `'committed'`: response headers or a message arrived. The call is committed (gRFC A6) and
 *   is never retried, whatever the method.
 * - `'not-sent'`: no HTTP/2 stream was ever opened (no connection yet, connect refused, the LB
 *   pick waited out the deadline, the channel closed first): the server cannot have seen it.
 * - `'answered'`: the server itself ended it with this status, before any header: the server
 *   decided, and its status says what it did (UNAVAILABLE: it did not run it).
 * - `'unknown'`: a stream was opened and then lost (connection dropped, stream reset, a deadline
 *   on the wire): the server may have run it.
 */
export type AttemptReach = 'committed' | 'not-sent' | 'answered' | 'unknown';

/**
 * @param committed response headers or a message arrived.
 * @param streamOpened grpc-js opened an HTTP/2 stream for it (its peer is an address, not the target).
 * @param serverTrailers the status came with trailers from the server (grpc-js makes up the
 *   statuses of lost calls with empty metadata).
 */
export function attemptReach(committed: boolean, streamOpened: boolean, serverTrailers: boolean): AttemptReach {
  if (committed) return 'committed';
  if (!streamOpened) return 'not-sent';
  return serverTrailers ? 'answered' : 'unknown';
}

/**
 * How an attempt counts for the target's circuit, which refuses every call to a target: only a
 * failure that no endpoint could take (its request never went out: no connection, every
 * endpoint down or ejected, the LB pick waited out the deadline) counts against the target. A
 * failure one endpoint or one method answered is left to endpoint ejection and the method's
 * circuit.
 */
export function targetOutcome(outcome: AttemptOutcome, reach: AttemptReach): AttemptOutcome {
  if (outcome !== 'failure') return outcome;
  return reach === 'not-sent' ? 'failure' : 'ignored';
}
