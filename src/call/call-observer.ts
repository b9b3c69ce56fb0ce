import { status, type Metadata } from '@grpc/grpc-js';
import type { BoundMethod } from './bound-method.js';
import {
  codeOf,
  detailsOf,
  methodLabels,
  type CallEvents,
  type CallInfo,
  type CallRefusal,
  type MethodLabels,
} from '../events/call-events.js';
import { CircuitOpenError, StatusError } from '../core/errors.js';

/** The part of a started grpc-js call the attempt-end event reads. */
interface PeerOf {
  getPeer(): string;
}

/**
 * The call events of one call (call-events.ts): made only when somebody listens as the call
 * begins, so a call nobody watches pays one `watchingCalls` read and nothing else. Keeps what the
 * events report (the call's id, its start, time in backoff, messages) and writes each event out
 * field by field: an object spread here costs microseconds per call.
 */
export class CallObserver {
  readonly callId: number;
  readonly #labels: MethodLabels;
  readonly #startedAt = performance.now();
  #backoffMs = 0;
  #sent = 0;
  #received = 0;

  constructor(
    readonly bound: BoundMethod,
    readonly events: CallEvents,
  ) {
    this.callId = events.nextCallId();
    this.#labels = methodLabels(bound.method);
    if (events.onCallStart.hasListeners) events.onCallStart.emit(this.#info());
  }

  /** A request message went out (client and bidi streams). */
  sent(): void {
    this.#sent++;
  }

  /** A stream's response messages, counted when its status arrives. */
  received(count: number): void {
    this.#received += count;
  }

  /** Time the call slept in a retry backoff, in ms. */
  slept(ms: number): void {
    this.#backoffMs += ms;
  }

  /**
   * An attempt is about to go on the wire with `metadata` (its own copy: listeners may add
   * headers). Returns the scope a listener asked the attempt to start in, if any.
   */
  attemptStart(attempt: number, metadata: Metadata, hedge: boolean): ((start: () => void) => void) | undefined {
    const labels = this.#labels;
    const event = {
      callId: this.callId,
      target: this.bound.channel.target,
      method: labels.method,
      service: labels.service,
      methodName: labels.methodName,
      type: labels.type,
      attempt,
      metadata,
      hedge,
      scope: undefined as ((start: () => void) => void) | undefined,
    };
    this.events.onAttemptStart.emit(event);
    return event.scope;
  }

  /** An attempt ended: its status, how long it took, and the endpoint once a stream was opened. */
  attemptEnd(attempt: number, error: unknown, startedAt: number, call: PeerOf | undefined, hedge: boolean, won: boolean | undefined): void {
    if (!this.events.onAttemptEnd.hasListeners) return;
    const peer = call?.getPeer();
    const labels = this.#labels;
    this.events.onAttemptEnd.emit({
      callId: this.callId,
      target: this.bound.channel.target,
      method: labels.method,
      service: labels.service,
      methodName: labels.methodName,
      type: labels.type,
      attempt,
      code: codeOf(error),
      durationMs: performance.now() - startedAt,
      peer: peer === undefined || peer === this.bound.channel.grpcTarget ? undefined : peer,
      hedge,
      won,
    });
  }

  /** The call ended, with `error` (undefined on success) after `attempts`; `endedByUs` reports CANCELLED. */
  end(error: unknown, attempts: number, endedByUs: boolean, hedges = 0): void {
    if (!this.events.onCallEnd.hasListeners) return;
    const labels = this.#labels;
    const oneRequest = labels.type === 'unary' || labels.type === 'server_stream';
    const oneResponse = labels.type === 'unary' || labels.type === 'client_stream';
    // Ended from our side: CANCELLED on the wire, whatever the caller then saw (signal.reason ...).
    const code = endedByUs ? status.CANCELLED : codeOf(error);
    this.events.onCallEnd.emit({
      callId: this.callId,
      target: this.bound.channel.target,
      method: labels.method,
      service: labels.service,
      methodName: labels.methodName,
      type: labels.type,
      code,
      durationMs: performance.now() - this.#startedAt,
      attempts,
      hedges,
      backoffMs: this.#backoffMs,
      messagesSent: oneRequest ? (attempts > 0 ? 1 : 0) : this.#sent,
      messagesReceived: oneResponse ? (code === status.OK ? 1 : 0) : this.#received,
      refused: refusalOf(error),
      details: error === undefined ? undefined : detailsOf(error),
    });
  }

  #info(): CallInfo {
    const labels = this.#labels;
    return {
      callId: this.callId,
      target: this.bound.channel.target,
      method: labels.method,
      service: labels.service,
      methodName: labels.methodName,
      type: labels.type,
    };
  }
}

/** Why a call never reached the network, if it did not: an open circuit or the adaptive throttle. */
function refusalOf(error: unknown): CallRefusal | undefined {
  if (error instanceof CircuitOpenError) return 'circuit';
  if (error instanceof StatusError && error.throttled) return 'throttle';
  return undefined;
}
