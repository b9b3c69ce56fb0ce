import { status, type Metadata } from '@grpc/grpc-js';
import { EventSource } from './events.js';
import type { MethodInfo, MethodKind } from '../core/service-methods.js';

// The call-level events: a call started and ended, and each of its attempts started and ended.
// They are what the Prometheus and OpenTelemetry adapters are built on (with `stats()`), and
// anyone can build another adapter on them. Cheap enough to leave on: with no listener the call
// path only reads `hasListeners`; no event object, no clock read, no string is made.

/** A call's shape, named as go-grpc-middleware's `grpc_type` label names it. */
export type CallType = 'unary' | 'client_stream' | 'server_stream' | 'bidi_stream';

/**
 * Why a call never reached the network: `'circuit'`, its breaker was open (it rejected with
 * `CircuitOpenError`); `'pool'`, the pool was closing (`PoolClosedError`); `'throttle'`, the
 * channel's adaptive throttle rejected it (a `StatusError` with `throttled` true).
 */
export type CallRefusal = 'circuit' | 'pool' | 'throttle';

/** What every call event says about its call. */
export interface CallInfo {
  /**
   * The call's number in its pool, the same on its start, attempt and end events: the key to
   * keep per-call state under (a span, a start time). Numbers are only given while somebody
   * listens, so they have gaps.
   */
  callId: number;
  /** The channel's target, as the client was given it (`host:port`, `dns:...`). */
  target: string;
  /** The full method path, `/pkg.Service/Method`. */
  method: string;
  /** The service part of the path, `pkg.Service`. */
  service: string;
  /** The method part of the path, `Method`. */
  methodName: string;
  /** The call's shape: `'unary' | 'client_stream' | 'server_stream' | 'bidi_stream'`. */
  type: CallType;
}

/** Reported by `pool.onCallStart` when a call is admitted (or refused by a closing pool). */
export type CallStartEvent = CallInfo;

/** Reported by `pool.onCallEnd` once per started call, when its outcome is known. */
export interface CallEndEvent extends CallInfo {
  /**
   * The call's gRPC status code: 0 (OK) on success; the failure's code otherwise. A call ended
   * from the caller's side (abort, parent cancelled, `close()`, a stream's reader leaving early,
   * a request source that threw) is CANCELLED (1); a refusal (`refused`) is the error's code.
   */
  code: number;
  /** From admission to the outcome, in ms (a stream: until its status arrived). */
  durationMs: number;
  /** Attempts that went on the wire (0 for a refused call). */
  attempts: number;
  /** Hedged attempts among `attempts` (adaptive hedging: `hedging` on the pool, a client or a method). */
  hedges: number;
  /** Total time spent in retry backoff, in ms. */
  backoffMs: number;
  /** Request messages sent: 1 for unary and server-stream calls, those written for client and bidi streams. */
  messagesSent: number;
  /** Response messages received: 1 for a successful unary or client-stream call; a stream's count. */
  messagesReceived: number;
  /**
   * Set when the call was refused, see {@link CallRefusal}: by the pool before it started, by
   * the adaptive throttle (before its first attempt), or by an open circuit (before its first
   * attempt, or before a retry: then `attempts` > 0).
   */
  refused: CallRefusal | undefined;
  /** The failure's status details (or the error's message); undefined on success. */
  details: string | undefined;
}

/**
 * Reported by `pool.onAttemptStart` just before an attempt goes on the wire. Listeners may add
 * headers to `metadata` (a W3C `traceparent`, say): it is this attempt's own request metadata,
 * never the caller's object.
 */
export interface AttemptStartEvent extends CallInfo {
  /** 1 for the first attempt. */
  attempt: number;
  /** This attempt's request metadata, sent as it is when the listeners return. */
  metadata: Metadata;
  /** The attempt is a hedge: it races an earlier attempt of the call that is still running. */
  hedge: boolean;
  /**
   * Set by a listener to start the attempt inside a scope of its own: the attempt's grpc-js
   * call is made inside `scope(start)`, e.g. `(start) => context.with(attemptContext, start)`,
   * so instrumentation of grpc-js itself sees the attempt as its parent. `scope` must call
   * `start` once, synchronously. One scope per attempt: a later listener's replaces it.
   */
  scope: ((start: () => void) => void) | undefined;
}

/** Reported by `pool.onAttemptEnd` when an attempt's final outcome is known (a stream: when it ends). */
export interface AttemptEndEvent extends CallInfo {
  /** 1 for the first attempt. */
  attempt: number;
  /** The attempt's gRPC status code (0 OK). */
  code: number;
  /** From the attempt's start to its outcome, in ms. */
  durationMs: number;
  /** The endpoint's address (`127.0.0.1:50051`) once an HTTP/2 stream was opened; undefined before. */
  peer: string | undefined;
  /** The attempt is a hedge (see AttemptStartEvent.hedge). */
  hedge: boolean;
  /**
   * Whether it won its race, when the call was hedged: true for the attempt whose response (a
   * server stream: first message) committed the call, false for the others (the loser ends
   * CANCELLED); undefined for an attempt that raced nothing.
   */
  won: boolean | undefined;
}

/** The call events of one pool. */
export class CallEvents {
  readonly onCallStart = new EventSource<CallStartEvent>('onCallStart');
  readonly onCallEnd = new EventSource<CallEndEvent>('onCallEnd');
  readonly onAttemptStart = new EventSource<AttemptStartEvent>('onAttemptStart');
  readonly onAttemptEnd = new EventSource<AttemptEndEvent>('onAttemptEnd');
  #lastCallId = 0;

  /** Whether a call starting now needs a number and a start time. */
  get watchingCalls(): boolean {
    return (
      this.onCallStart.hasListeners || this.onCallEnd.hasListeners || this.onAttemptStart.hasListeners || this.onAttemptEnd.hasListeners
    );
  }

  nextCallId(): number {
    return ++this.#lastCallId;
  }

  /**
   * A call refused before it started (the pool was closing), or ended before it started (its
   * signal or parent was already cancelled): its start and end events, while somebody listens.
   */
  notStarted(target: string, method: MethodInfo, error: { code: number; message: string }, refused: CallRefusal | undefined): void {
    if (!this.onCallStart.hasListeners && !this.onCallEnd.hasListeners) return;
    const labels = methodLabels(method);
    const info: CallInfo = {
      callId: this.nextCallId(),
      target,
      method: labels.method,
      service: labels.service,
      methodName: labels.methodName,
      type: labels.type,
    };
    this.onCallStart.emit(info);
    this.onCallEnd.emit({
      ...info,
      code: error.code,
      durationMs: 0,
      attempts: 0,
      hedges: 0,
      backoffMs: 0,
      messagesSent: 0,
      messagesReceived: 0,
      refused,
      details: error.message,
    });
  }

  clear(): void {
    for (const source of [this.onCallStart, this.onCallEnd, this.onAttemptStart, this.onAttemptEnd]) source.clear();
  }
}

/** The method part of every call event, made once per method (only while somebody listens). */
export interface MethodLabels {
  method: string;
  service: string;
  methodName: string;
  type: CallType;
}

const TYPES: Record<MethodKind, CallType> = {
  unary: 'unary',
  'server-stream': 'server_stream',
  'client-stream': 'client_stream',
  bidi: 'bidi_stream',
};

const labelsCache = new WeakMap<MethodInfo, MethodLabels>();

export function methodLabels(method: MethodInfo): MethodLabels {
  let labels = labelsCache.get(method);
  if (labels === undefined) {
    const slash = method.path.lastIndexOf('/');
    labels = Object.freeze({
      method: method.path,
      service: method.path.slice(method.path.startsWith('/') ? 1 : 0, Math.max(slash, 0)),
      methodName: method.path.slice(slash + 1),
      type: TYPES[method.kind],
    });
    labelsCache.set(method, labels);
  }
  return labels;
}

/** The gRPC status code of what a caller saw: the error's numeric `code`, else UNKNOWN. */
export function codeOf(error: unknown): number {
  if (error === undefined || error === null) return status.OK;
  const code = (error as { code?: unknown }).code;
  return typeof code === 'number' && Number.isInteger(code) && code >= 0 && code <= 16 ? code : status.UNKNOWN;
}

/**
 * Starts an attempt inside a call-event listener's scope (see `AttemptStartEvent.scope`). A scope
 * that never calls `start`, or throws before it, cannot keep the attempt off the wire.
 */
export function inScope<T>(scope: (start: () => void) => void, start: () => T): T {
  let started = false;
  let result: { value: T } | { error: unknown } | undefined;
  try {
    scope(() => {
      started = true;
      try {
        result = { value: start() };
      } catch (error) {
        result = { error };
      }
    });
  } catch {
    // The listener's own failure: the attempt goes ahead without its scope.
  }
  if (!started || result === undefined) return start();
  if ('error' in result) throw result.error;
  return result.value;
}

/** A failure's status details (or message), for the call end event. */
export function detailsOf(error: unknown): string | undefined {
  if (typeof error !== 'object' || error === null) return undefined;
  const { details, message } = error as { details?: unknown; message?: unknown };
  return typeof details === 'string' ? details : typeof message === 'string' ? message : undefined;
}
