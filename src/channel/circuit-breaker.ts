import { EventEmitter } from 'node:events';
import CircuitBreaker from 'opossum';
import type { BreakerOptions } from '../config/breaker-options.js';
import type { AttemptOutcome } from '../core/status-meaning.js';
import type { Resolved } from '../config/check-helpers.js';

// Circuit breaking on opossum, and the only file that knows opossum. When too many calls in the
// window fail, the circuit opens: calls are refused at once with `CircuitOpenError` and never
// touch the network. After `resetTimeoutMs` one probe goes out; its outcome closes the circuit or
// opens it again. What counts as a failure is decided in core/status-meaning.ts; this file only
// receives outcomes.
//
// opossum owns the circuit's state through its documented API: `open()`, `close()`, its reset
// timer that moves an open circuit to half-open, its 'open' / 'halfOpen' / 'close' events and
// `shutdown()`. Two gRPC rules are kept here, beside it, because its documented API cannot
// express them:
// - Counting. opossum counts only what goes through `fire()`, which allocates three promises and
//   emits two events per call: on a healthy call that was most of the breaker's cost. A call
//   records its outcome here instead, as an increment in a window of ten buckets rotated by the
//   pool's shared timer; a failure runs opossum's own threshold rule (volume, then percentage)
//   and calls `open()`.
// - The probe. A half-open circuit lets one call through, judged when its outcome is known (a
//   stream at its first message, not at its end), and an outcome that says nothing about the
//   backend (an aborted probe) must neither close nor keep the circuit half-open: `fire()` would
//   count it as a success. The probe is handed out here and ends in `close()` or `open()`.
// - The early probe. When the stall detector replaced the channel's connection because nothing
//   was heard on it, the failures that opened the circuit were that silence's: `probeNow()` moves
//   an open circuit to half-open at once (reason 'connection-replaced'), so its probe goes to the
//   new connection instead of waiting out `resetTimeoutMs`. opossum stays open underneath with
//   its reset timer; a failed early probe re-opens it (a fresh reset timeout) without an event
//   for the internal close.

/** State of a circuit. */
export type BreakerState = 'closed' | 'open' | 'half-open';

/** Why a circuit changed state. */
export type BreakerReason =
  | 'error-threshold'
  | 'reset-timeout'
  | 'connection-replaced'
  | 'probe-succeeded'
  | 'probe-failed'
  | 'probe-inconclusive'
  | 'pool-closed';

const BUCKETS = 10;

/** Rotates the buckets of every breaker with the same bucket interval from one timer per pool. */
export class BucketRotation {
  readonly #timers = new Map<number, { emitter: EventEmitter; timer: NodeJS.Timeout }>();

  controller(intervalMs: number): EventEmitter {
    let entry = this.#timers.get(intervalMs);
    if (entry === undefined) {
      const emitter = new EventEmitter();
      // One listener per breaker: thousands are expected.
      emitter.setMaxListeners(0);
      const timer = setInterval(() => emitter.emit('rotate'), intervalMs);
      // Stats rotation is bookkeeping: it must never keep the process alive.
      timer.unref();
      entry = { emitter, timer };
      this.#timers.set(intervalMs, entry);
    }
    return entry.emitter;
  }

  close(): void {
    for (const { timer, emitter } of this.#timers.values()) {
      clearInterval(timer);
      emitter.removeAllListeners();
    }
    this.#timers.clear();
  }
}

/** Figures of one breaker in `stats()`. */
export interface BreakerStats {
  /** The method path for a `'method'`-scoped breaker; undefined for a channel's breaker. */
  method: string | undefined;
  /** `'closed'` (calls go through), `'open'` (calls refused) or `'half-open'` (one probe allowed). */
  state: BreakerState;
  /** Calls refused because the circuit was open (or its probe already out). */
  rejected: number;
  /** Times the circuit opened. */
  opened: number;
  /** When the next probe is allowed, epoch ms, while the circuit is open. */
  nextProbeAt: number | undefined;
}

/** A breaker's state change, reported by `pool.onBreakerStateChange`. */
export interface BreakerStateChange {
  /** The target of the breaker's channel, as given to `pool.client()`. */
  target: string;
  /** The method path for a `'method'`-scoped breaker; undefined for the target's circuit. */
  method: string | undefined;
  /** The state the breaker is in now. */
  state: BreakerState;
  /** The state it left. */
  previous: BreakerState;
  /** Why it changed: the failure rate, the reset timeout, or its probe's outcome. */
  reason: BreakerReason;
}

/** One circuit breaker: admission before a call's attempt, the call's outcome after it. */
export class Breaker {
  readonly #cb: CircuitBreaker;
  #state: BreakerState = 'closed';
  #nextProbeAt: number | undefined;
  #rejected = 0;
  #opened = 0;
  readonly #createdAt = Date.now();
  /** Calls counted (successes and failures) and failures, per bucket of the window. */
  readonly #counted = new Uint32Array(BUCKETS);
  readonly #failed = new Uint32Array(BUCKETS);
  #bucket = 0;
  readonly #rotation: EventEmitter;
  readonly #rotate = (): void => {
    this.#bucket = (this.#bucket + 1) % BUCKETS;
    this.#counted[this.#bucket] = 0;
    this.#failed[this.#bucket] = 0;
  };
  /** The half-open probe is out: further calls are refused until it reports. */
  #probeOut = false;
  /** Why the next state change happens, when the change itself does not say. */
  #transitionReason: BreakerReason | undefined;
  /** opossum's next state change is internal (a failed early probe re-opening it): no event. */
  #quiet = false;

  constructor(
    readonly options: Resolved<BreakerOptions>,
    readonly method: string | undefined,
    rotation: BucketRotation,
    readonly onChange: (change: Omit<BreakerStateChange, 'target'>) => void,
  ) {
    this.#rotation = rotation.controller(options.windowMs / BUCKETS);
    this.#rotation.on('rotate', this.#rotate);
    // Every opossum default that is wrong for gRPC is set on purpose. Its action is never fired
    // (see the top of this file), so its own window stays empty and its timeout unused.
    this.#cb = new CircuitBreaker(() => Promise.resolve(), {
      timeout: false,
      resetTimeout: options.resetTimeoutMs,
      errorThresholdPercentage: options.errorThresholdPercentage,
      volumeThreshold: options.volumeThreshold,
      rollingCountTimeout: options.windowMs,
      rollingCountBuckets: BUCKETS,
      // The pool's shared timer, so that opossum starts no interval of its own per breaker.
      rotateBucketController: this.#rotation,
      rollingPercentilesEnabled: false,
      enableSnapshots: false,
    });
    this.#cb.on('open', () => this.#moved('open'));
    this.#cb.on('halfOpen', () => this.#moved('half-open'));
    this.#cb.on('close', () => this.#moved('closed'));
  }

  #moved(state: BreakerState): void {
    const previous = this.#state;
    if (state === previous || this.#quiet) return;
    this.#state = state;
    this.#probeOut = false;
    let reason: BreakerReason;
    if (state === 'open') {
      this.#opened++;
      this.#nextProbeAt = Date.now() + this.options.resetTimeoutMs;
      reason = this.#transitionReason ?? (previous === 'half-open' ? 'probe-failed' : 'error-threshold');
    } else {
      this.#nextProbeAt = undefined;
      reason = state === 'half-open' ? 'reset-timeout' : 'probe-succeeded';
      // A circuit closed by its probe starts from an empty window: with the counts that opened
      // it, and resetTimeoutMs < windowMs, one more failure would reopen it at once.
      if (state === 'closed') {
        this.#counted.fill(0);
        this.#failed.fill(0);
      }
    }
    this.#transitionReason = undefined;
    this.onChange({ method: this.method, state, previous, reason });
  }

  /**
   * Admits a call's attempt, or refuses it (counting the refusal) when the circuit is open or
   * its half-open probe is already out. Returns `false` for a refusal; `true` in the closed
   * state, where the call's outcome goes to `record()`; or, for the half-open probe, the
   * function that reports its outcome.
   */
  begin(): boolean | ((outcome: AttemptOutcome) => void) {
    if (this.#state === 'closed') return true;
    if (this.#state === 'open' || this.#probeOut) {
      this.#rejected++;
      return false;
    }
    this.#probeOut = true;
    let reported = false;
    return (outcome) => {
      if (reported) return;
      reported = true;
      this.#probed(outcome);
    };
  }

  /** The half-open probe's outcome: closes the circuit, or opens it for another resetTimeoutMs. */
  #probed(outcome: AttemptOutcome): void {
    if (this.#state !== 'half-open' || this.#cb.isShutdown) return;
    if (outcome === 'success') {
      this.#cb.close();
      return;
    }
    // A probe that ended without an answer (aborted, cancelled by us) leaves no probe out.
    if (outcome === 'ignored') this.#transitionReason = 'probe-inconclusive';
    this.#reopen();
  }

  /** Opens a half-open circuit again, for a fresh `resetTimeoutMs`. */
  #reopen(): void {
    if (this.#cb.opened) {
      // Half-open early (probeNow) while opossum stayed open: close it quietly, so that open()
      // below is a state change for opossum and starts a fresh reset timer.
      this.#quiet = true;
      try {
        this.#cb.close();
      } finally {
        this.#quiet = false;
      }
    }
    this.#cb.open();
  }

  /**
   * The channel's connection was replaced because nothing was heard on it (the stall detector):
   * an open circuit goes half-open now, and its probe goes to the new connection.
   */
  probeNow(): void {
    if (this.#state !== 'open' || this.#cb.isShutdown) return;
    this.#state = 'half-open';
    this.#probeOut = false;
    this.#nextProbeAt = undefined;
    this.onChange({ method: this.method, state: 'half-open', previous: 'open', reason: 'connection-replaced' });
  }

  /**
   * Records the outcome of a call admitted in the closed state. An ignored call is not counted at
   * all, not even as volume. A failure opens the circuit as opossum's own rule would: once the
   * window holds `volumeThreshold` calls and more than `errorThresholdPercentage` of them failed.
   * `latencyMs` is kept for callers' symmetry; nothing reads it (no percentiles are kept).
   */
  record(outcome: AttemptOutcome, _latencyMs = 0): void {
    if (outcome === 'ignored') return;
    this.#counted[this.#bucket]!++;
    if (outcome === 'success') {
      // A call admitted while closed that succeeds while half-open closes the circuit, as in opossum.
      if (this.#state === 'half-open') this.#cb.close();
      return;
    }
    this.#failed[this.#bucket]!++;
    // One that fails while half-open opens it again (the probe's later answer is then lost).
    if (this.#state === 'half-open') this.#reopen();
    if (this.#state !== 'closed') return;
    const counted = sum(this.#counted);
    if (counted < this.options.volumeThreshold) return;
    if ((sum(this.#failed) / counted) * 100 > this.options.errorThresholdPercentage) this.#cb.open();
  }

  /** Whether `begin()` would admit an attempt now (closed, or half-open with its probe not yet out). */
  get admits(): boolean {
    return this.#state === 'closed' || (this.#state === 'half-open' && !this.#probeOut);
  }

  /**
   * Closed, older than a window, and with no call counted in its window: the same as a fresh
   * breaker. (A call still in flight on a released breaker is harmless: its outcome goes to the
   * released one, and its retries and the next calls get a fresh one.)
   */
  get isIdle(): boolean {
    return this.#state === 'closed' && Date.now() - this.#createdAt > this.options.windowMs && sum(this.#counted) === 0;
  }

  get nextProbeAt(): number {
    return this.#nextProbeAt ?? Date.now();
  }

  /** `'closed'`, `'open'` or `'half-open'`. */
  get state(): BreakerState {
    return this.#state;
  }

  stats(): BreakerStats {
    return { method: this.method, state: this.#state, rejected: this.#rejected, opened: this.#opened, nextProbeAt: this.#nextProbeAt };
  }

  shutdown(): void {
    this.#rotation.removeListener('rotate', this.#rotate);
    this.#cb.shutdown();
  }
}

function sum(buckets: Uint32Array): number {
  let total = 0;
  for (let i = 0; i < buckets.length; i++) total += buckets[i]!;
  return total;
}
