import type { BoundMethod } from './bound-method.js';
import type { Breaker } from '../channel/circuit-breaker.js';
import { targetOutcome, type AttemptOutcome, type AttemptReach } from '../core/status-meaning.js';

/** What a breaker's `begin()` handed out: `true` in the closed state, or the half-open probe's report. */
type Ticket = true | ((outcome: AttemptOutcome) => void);

/**
 * The circuits one call passes: its method's (or, with `scope: 'channel'`, its channel's) and
 * the target's. Every attempt is admitted by both, so an open circuit refuses retries too; but
 * each circuit counts the CALL once, when its outcome is known (a success, a stream's first
 * message, or the call's last failure). Counting attempts would let one sick endpoint of two
 * open the circuit for both while retries on the healthy one make every call succeed.
 */
export class CallCircuits {
  readonly #method: Breaker;
  readonly #target: Breaker | undefined;
  #methodTicket: Ticket | undefined;
  #targetTicket: Ticket | undefined;
  #settled = false;
  /** How the last failed attempt counts, and how far it got: the call's outcome if it ends so. */
  #failure: AttemptOutcome = 'ignored';
  #reach: AttemptReach = 'answered';
  /** Its status code, when it had one: a deadline that expired locally never counts for the target. */
  #code: number | undefined;

  constructor(method: Breaker, target: Breaker | undefined) {
    this.#method = method;
    this.#target = target;
  }

  /** The circuits of a bound method, or undefined when it has no breaker. */
  static of(bound: BoundMethod): CallCircuits | undefined {
    const method = bound.breaker();
    return method === undefined ? undefined : new CallCircuits(method, bound.targetBreaker());
  }

  /** Admits an attempt; returns the breaker that refuses it, if one does. */
  admit(): Breaker | undefined {
    // Both are asked before either hands out a ticket: a half-open probe is never spent on an
    // attempt the other circuit refuses. (begin() on a refusing breaker counts the refusal.)
    if (typeof this.#methodTicket !== 'function' && !this.#method.admits) return refused(this.#method);
    if (this.#target !== undefined && typeof this.#targetTicket !== 'function' && !this.#target.admits) return refused(this.#target);
    const method = admitted(this.#method, this.#methodTicket);
    if (method === false) return this.#method;
    this.#methodTicket = method;
    if (this.#target !== undefined) {
      const target = admitted(this.#target, this.#targetTicket);
      if (target === false) return this.#target;
      this.#targetTicket = target;
    }
    return undefined;
  }

  /** Whether every circuit of the call is closed: a hedge goes out only then (never beside a half-open probe). */
  get allClosed(): boolean {
    return this.#method.state === 'closed' && (this.#target === undefined || this.#target.state === 'closed');
  }

  /** An attempt failed (with status `code`, if it had one): if the call ends now, this is how it counts. */
  attemptFailed(outcome: AttemptOutcome, reach: AttemptReach, code?: number): void {
    this.#failure = outcome;
    this.#reach = reach;
    this.#code = code;
  }

  /** The call's outcome is known: a success, or (`ok` false) its last failed attempt's. Once per call. */
  settle(ok: boolean): void {
    if (this.#settled) return;
    this.#settled = true;
    const outcome = ok ? 'success' : this.#failure;
    // No latency: the breakers keep no percentiles (see Breaker.record).
    report(this.#method, this.#methodTicket, outcome, 0);
    if (this.#target !== undefined) report(this.#target, this.#targetTicket, targetOutcome(outcome, this.#reach, this.#code), 0);
  }
}

/** A breaker's admission of one more attempt; a call that holds the half-open probe keeps it. */
function admitted(breaker: Breaker, held: Ticket | undefined): Ticket | false {
  if (typeof held === 'function') return held;
  return breaker.begin();
}

function refused(breaker: Breaker): Breaker {
  breaker.begin();
  return breaker;
}

function report(breaker: Breaker, ticket: Ticket | undefined, outcome: AttemptOutcome, latencyMs: number): void {
  if (ticket === undefined) return;
  if (ticket === true) breaker.record(outcome, latencyMs);
  else ticket(outcome);
}
