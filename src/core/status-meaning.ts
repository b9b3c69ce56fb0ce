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
 * Whether a failure is of the client's own making, whatever its code: grpc-js's own failure
 * about a message of ours (`isLocalMessageFailure`), or call credentials that could not make
 * their metadata (the request never left the client).
 */
export function isOwnFailure(code: number, details: string): boolean {
  return details.startsWith(CALL_CREDENTIALS_FAILED) || isLocalMessageFailure(code, details);
}

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
 *   decided, and its status says what it did (UNAVAILABLE: it did not run it). A stream the
 *   server reset with HTTP/2 REFUSED_STREAM (`refusedStream`) is answered too: RFC 9113 §8.7
 *   says no processing happened and the request can be retried, whatever the method.
 * - `'unknown'`: a stream was opened and then lost (connection dropped, stream reset, a deadline
 *   on the wire): the server may have run it.
 */
export type AttemptReach = 'committed' | 'not-sent' | 'answered' | 'unknown';

/**
 * @param committed response headers or a message arrived.
 * @param streamOpened grpc-js opened an HTTP/2 stream for it (its peer is an address, not the target).
 * @param serverTrailers the status came with trailers from the server (grpc-js makes up the
 *   statuses of lost calls with empty metadata).
 * @param refused the server reset the stream with REFUSED_STREAM (`refusedStream`).
 */
export function attemptReach(committed: boolean, streamOpened: boolean, serverTrailers: boolean, refused = false): AttemptReach {
  if (committed) return 'committed';
  if (!streamOpened) return 'not-sent';
  return serverTrailers || refused ? 'answered' : 'unknown';
}

/**
 * grpc-js's status for a stream the server reset with HTTP/2 REFUSED_STREAM (a server going away
 * after its GOAWAY, or over its concurrent-stream limit): UNAVAILABLE with exactly these details
 * (its subchannel-call.ts; the rst code itself is not exposed). grpc-js retries such a stream
 * once by itself (a transparent retry); a second refusal reaches the pool.
 */
export const REFUSED_STREAM_DETAILS = 'Stream refused by server';

/** Whether a failure is a stream the server refused before any processing (see REFUSED_STREAM_DETAILS). */
export function refusedStream(code: number, details: string | undefined): boolean {
  return code === status.UNAVAILABLE && details === REFUSED_STREAM_DETAILS;
}

/**
 * Whether a failure is a deadline that expired on the client: a DEADLINE_EXCEEDED the server
 * never sent (no trailers of its own), with nothing heard on the attempt (no header, no message).
 * grpc-js enforces the deadline with a timer of the client's: the server may be hung, or the
 * client's own event loop may have been too busy to read an answer that was there.
 */
export function expiredLocally(code: number, reach: AttemptReach): boolean {
  return code === status.DEADLINE_EXCEEDED && (reach === 'not-sent' || reach === 'unknown');
}

/**
 * How late past its deadline (ms) grpc-js may report a deadline that expired locally for it to
 * count against the backend whatever the client's event loop did. Reported later than this, with
 * the loop busy (not waiting for I/O) for at least STALLED_LOOP_SHARE of the time since the
 * attempt's last sample before its deadline (a busy loop, a long GC pause, a synchronous task),
 * the client's own loop was stalled when the deadline came: grpc-js's deadline timer ran late,
 * and an answer may have sat unread in the socket. Such an attempt says nothing about the backend
 * and counts neither way, in the method's circuit and in the endpoint books. A process that was
 * late because the machine was loaded while it waited for an answer is not stalled: its
 * deadlines count.
 */
export const STALLED_LOOP_MS = 100;
/** See STALLED_LOOP_MS: the share of time (0 to 1) a stalled loop was busy. */
export const STALLED_LOOP_SHARE = 0.75;

/**
 * The health outcome of a failed attempt, given when its deadline expired locally: `lateMs` is
 * how long after its deadline grpc-js reported it (negative or 0 when it was not a deadline),
 * `busy` the share of time the client's event loop was busy meanwhile (see STALLED_LOOP_MS). A
 * local expiry reported by a stalled loop is 'ignored'; anything else keeps `outcome`.
 */
export function judgedOutcome(outcome: AttemptOutcome, code: number, reach: AttemptReach, lateMs: number, busy: number): AttemptOutcome {
  if (outcome !== 'failure' || !loopStalled(lateMs, busy)) return outcome;
  return expiredLocally(code, reach) ? 'ignored' : outcome;
}

/** Whether a deadline reported `lateMs` after it came, the loop busy for the share `busy` of the time, found the loop stalled. */
export function loopStalled(lateMs: number, busy: number): boolean {
  return lateMs > STALLED_LOOP_MS && busy >= STALLED_LOOP_SHARE;
}

/**
 * How an attempt counts for the target's circuit, which refuses every call to a target: only a
 * failure that no endpoint could take (its request never went out: no connection, every
 * endpoint down or ejected) counts against the target. A failure one endpoint or one method
 * answered is left to endpoint ejection and the method's circuit, and so is a deadline that
 * expired locally (`expiredLocally`: a DEADLINE_EXCEEDED the server never sent, whether or not
 * its request went out): the client's own clock ended it, and a client starved of CPU, whose
 * calls expire before they are even picked, must never refuse every call to a healthy target.
 * `code` is the failure's status code (undefined: not a gRPC status).
 */
export function targetOutcome(outcome: AttemptOutcome, reach: AttemptReach, code?: number): AttemptOutcome {
  if (outcome !== 'failure') return outcome;
  if (code !== undefined && expiredLocally(code, reach)) return 'ignored';
  return reach === 'not-sent' ? 'failure' : 'ignored';
}
