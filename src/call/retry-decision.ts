import { status, type Metadata } from '@grpc/grpc-js';
import { retryWithDefaults, type RetryOptions } from '../config/retry-options.js';
import { IDEMPOTENT_RETRYABLE, isLocalMessageFailure, type AttemptReach } from '../core/status-meaning.js';
import type { MethodKind } from '../core/service-methods.js';
import { MAX_TIMER_MS } from '../config/check-helpers.js';

// The retry decision: which failed attempts may be retried and after how long. Pure functions of
// the resolved options, a status and its trailers, and the call's state; the attempts that act on
// it are in attempts.ts, p-retry in retry-loop.ts.

/** Retry options with every level applied; `maxAttempts` 1 means retries are off. */
export interface ResolvedRetry {
  maxAttempts: number;
  initialDelayMs: number;
  maxDelayMs: number;
  retryableCodes: ReadonlySet<number>;
  perAttemptTimeoutMs: number | undefined;
}

export const NO_RETRY: ResolvedRetry = Object.freeze({
  maxAttempts: 1,
  initialDelayMs: 0,
  maxDelayMs: 0,
  retryableCodes: new Set<number>(),
  perAttemptTimeoutMs: undefined,
});

/**
 * Turns the cascaded retry options into what the call loop reads, for an idempotent method or
 * not, on a channel where grpc-js owns retries or not.
 */
export function resolveRetry(retry: RetryOptions | false, idempotent: boolean, grpcOwnsRetries = false): ResolvedRetry {
  // One retry owner: a channel whose service config gives grpc-js a retry policy keeps ours off.
  if (retry === false || grpcOwnsRetries) return NO_RETRY;
  const options = retryWithDefaults(retry);
  const codes = new Set<number>(options.retryableCodes);
  if (idempotent) for (const code of IDEMPOTENT_RETRYABLE) codes.add(code);
  return { ...options, retryableCodes: codes };
}

/** `grpc-retry-pushback-ms` from trailers: ms to wait, `'stop'` (negative or malformed), or undefined. */
export function readPushback(metadata: Metadata | undefined): number | 'stop' | undefined {
  const values = metadata?.get('grpc-retry-pushback-ms');
  if (values === undefined || values.length === 0) return undefined;
  const raw = values[0];
  // gRFC A6: a negative or unparseable value means "do not retry".
  if (typeof raw !== 'string' || !/^\d{1,10}$/.test(raw.trim())) return 'stop';
  return Math.min(Number(raw.trim()), MAX_TIMER_MS);
}

/** What the retry loop does after a failed attempt. */
export type RetryVerdict =
  | { retry: false; reason: 'not-retryable' | 'pushback-stop' | 'committed' | 'may-have-run' }
  | { retry: true; pushbackMs: number | undefined };

/**
 * Whether a failed attempt may be retried under `policy`. `attemptTimedOut` says the attempt
 * ended on its own per-attempt deadline, earlier than the call's; `reach` how far its request
 * got (see `attemptReach`), and `idempotent` whether the method may run twice.
 *
 * The commit rule: nothing is retried once response headers or a message arrived (gRFC A6); a
 * non-idempotent method is retried only when its request provably never reached the server
 * (no stream was opened), or when the server itself answered with a retryable status.
 */
export function retryVerdict(
  policy: ResolvedRetry,
  code: number,
  trailers: Metadata | undefined,
  attemptTimedOut: boolean,
  details = '',
  reach: AttemptReach = 'answered',
  idempotent = false,
): RetryVerdict {
  // Retries off: nothing is retryable, so nothing takes a throttling token either. A message
  // grpc-js itself could not send or read would fail the same way again.
  if (policy.maxAttempts <= 1 || isLocalMessageFailure(code, details)) return { retry: false, reason: 'not-retryable' };
  if (reach === 'committed') return { retry: false, reason: 'committed' };
  if (reach === 'unknown' && !idempotent) return { retry: false, reason: 'may-have-run' };
  const pushback = readPushback(trailers);
  if (pushback === 'stop') return { retry: false, reason: 'pushback-stop' };
  let retryable = policy.retryableCodes.has(code);
  // RESOURCE_EXHAUSTED is retried only when the server says when: otherwise it is as likely to
  // be a local limit (a message over the size limit) as an overload that retries would worsen.
  if (code === status.RESOURCE_EXHAUSTED) retryable = pushback !== undefined;
  // DEADLINE_EXCEEDED is retried only for an attempt that hit its own per-attempt timeout.
  if (code === status.DEADLINE_EXCEEDED) retryable &&= attemptTimedOut;
  return retryable ? { retry: true, pushbackMs: pushback } : { retry: false, reason: 'not-retryable' };
}

/**
 * The backoff before retry number `retry` (1 for the first retry): a random time between 0 and
 * `min(maxDelayMs, initialDelayMs * 2^(retry-1))`. `random` returns [0, 1).
 */
export function backoffDelayMs(policy: ResolvedRetry, retry: number, random: () => number): number {
  const ceiling = Math.min(policy.maxDelayMs, policy.initialDelayMs * 2 ** (retry - 1));
  return Math.floor(random() * ceiling);
}

/** What the call does after a failed attempt, all things considered. */
export type RetryDecision = { retry: true; delayMs: number; pushback: boolean } | { retry: false; reason: RetryRefusal };

/** Why a failed attempt is not retried. */
export type RetryRefusal =
  | 'not-retryable'
  | 'pushback-stop'
  | 'committed'
  | 'may-have-run'
  | 'ended'
  | 'pool-closing'
  | 'attempts-used'
  | 'throttled'
  | 'no-time';

/** Everything the decision after a failed attempt depends on, beside its status verdict. */
export interface RetryState {
  /** Attempts made so far, the failed one included. */
  attempts: number;
  /** The call was ended from our side (abort, parent, close, a stream's reader or source). */
  ended: boolean;
  poolOpen: boolean;
  /** The channel allows a retry now: its gRFC A6 token bucket, or else its retry budget (managed-channel.ts `allowsRetry`). */
  budgetAllows: boolean;
  /** ms until the call's deadline. */
  msLeft: number;
  /** How long the failed attempt ran, in ms: the estimate of what another one needs. */
  lastAttemptMs: number;
  /** [0, 1), for the backoff's jitter. */
  random: () => number;
}

/**
 * The retry decision: one pure function of the failed attempt's verdict (its status, how far it
 * got, pushback; see `retryVerdict`) and the call's state (attempt number, time left, budget).
 * Retried when the status allows it, attempts are left, the budget allows it, the call is still
 * wanted, and the backoff (or the server's pushback) plus another attempt as long as the last one
 * fit before the deadline.
 */
export function decideRetry(policy: ResolvedRetry, verdict: RetryVerdict, state: RetryState): RetryDecision {
  if (state.ended) return { retry: false, reason: 'ended' };
  if (!verdict.retry) return { retry: false, reason: verdict.reason };
  if (state.attempts >= policy.maxAttempts) return { retry: false, reason: 'attempts-used' };
  if (!state.poolOpen) return { retry: false, reason: 'pool-closing' };
  if (!state.budgetAllows) return { retry: false, reason: 'throttled' };
  const delayMs = verdict.pushbackMs ?? backoffDelayMs(policy, state.attempts, state.random);
  const nextAttemptMs = Math.min(state.lastAttemptMs, policy.perAttemptTimeoutMs ?? Number.POSITIVE_INFINITY);
  if (delayMs + nextAttemptMs >= state.msLeft) return { retry: false, reason: 'no-time' };
  return { retry: true, delayMs, pushback: verdict.pushbackMs !== undefined };
}

/**
 * Whether an attempt that failed because the connect watchdog or the stall detector closed its
 * channel is sent once more, on the new channel, though the retry policy does not retry it
 * (retries off, or grpc-js owns them: an `xds:` target, a service config retry policy). Only
 * an UNAVAILABLE attempt that never left the client ('not-sent'): it reached no server, so this
 * is a transparent retry (gRFC A6), which grpc-js cannot make for a call whose channel was
 * closed under it; the replacement was ours. Once per call, while it is wanted and has time
 * left, and not for client and bidi streams, whose request source may already be read.
 */
export function resendsAfterReplacement(
  verdict: RetryVerdict,
  code: number,
  reach: AttemptReach,
  kind: MethodKind,
  state: { resent: boolean; ended: boolean; msLeft: number },
): boolean {
  if (verdict.retry || state.resent || state.ended || state.msLeft <= 0) return false;
  return code === status.UNAVAILABLE && reach === 'not-sent' && (kind === 'unary' || kind === 'server-stream');
}
