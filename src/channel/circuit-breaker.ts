import { EventEmitter } from 'node:events';
import CircuitBreaker from 'opossum';
import type { BreakerOptions } from '../config/options.js';
import type { AttemptOutcome } from '../core/status-meaning.js';
import { withDefined, type Resolved } from '../config/with-defined.js';
import { BREAKER_DEFAULTS } from '../config/defaults.js';

// Circuit breaking on opossum, and the only file that knows opossum. When too many attempts in
// the window fail, the circuit opens: calls are refused at once with `CircuitOpenError` and
// never touch the network. After `resetTimeoutMs` one probe goes out; its outcome closes the
// circuit or opens it again. What counts as a failure is decided in status-meaning.ts; this
// file only receives outcomes.

/** State of a circuit. */
export type BreakerState = 'closed' | 'open' | 'half-open';

/** Why a circuit changed state. */
export type BreakerReason = 'error-threshold' | 'reset-timeout' | 'probe-succeeded' | 'probe-failed' | 'probe-inconclusive' | 'pool-closed';

const BUCKETS = 10;
const NO_ARGS: unknown[] = [];

/** What a failed or an ignored half-open probe rejects with inside opossum. */
const FAILED = Object.freeze({ outcome: 'failure' });
const IGNORED = Object.freeze({ outcome: 'ignored' });

/** The breaker options with the defaults applied, or `false`. */
export function resolveBreaker(options: BreakerOptions | false): Resolved<BreakerOptions> | false {
  return options === false ? false : (withDefined<BreakerOptions>(BREAKER_DEFAULTS, options) as Resolved<BreakerOptions>);
}

/**
 * opossum, with one change: it reports a rejection that its `errorFilter` accepts as a
 * success, which would let an ignored probe (an aborted call) close a half-open circuit. The
 * filter accepts only IGNORED, whose 'success' is dropped here so it counts neither way.
 */
class GrpcCircuitBreaker extends CircuitBreaker<[() => Promise<unknown>], unknown> {
  onIgnored: () => void = () => {};

  override emit(event: string | symbol, ...args: unknown[]): boolean {
    if (event === 'success' && args[0] === IGNORED) {
      this.onIgnored();
      return false;
    }
    return super.emit(event, ...args);
  }
}

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
  target: string;
  method: string | undefined;
  state: BreakerState;
  previous: BreakerState;
  reason: BreakerReason;
}

/** One circuit breaker: admission before an attempt, outcome after it. */
export class Breaker {
  readonly #cb: GrpcCircuitBreaker;
  #state: BreakerState = 'closed';
  #nextProbeAt: number | undefined;
  #rejected = 0;
  #opened = 0;
  readonly #createdAt = Date.now();

  constructor(
    readonly options: Resolved<BreakerOptions>,
    readonly method: string | undefined,
    rotation: BucketRotation,
    readonly onChange: (change: Omit<BreakerStateChange, 'target'>) => void,
  ) {
    // Every opossum default that is wrong for gRPC is set on purpose.
    this.#cb = new GrpcCircuitBreaker((attempt: () => Promise<unknown>) => attempt(), {
      // No opossum timeout: it would reject without cancelling. The gRPC deadline cancels for real.
      timeout: false,
      errorThresholdPercentage: options.errorThresholdPercentage,
      // opossum's 0 opens on the very first failure.
      volumeThreshold: options.volumeThreshold,
      resetTimeout: options.resetTimeoutMs,
      rollingCountTimeout: options.windowMs,
      rollingCountBuckets: BUCKETS,
      rotateBucketController: rotation.controller(options.windowMs / BUCKETS),
      // The probe's outcome reaches fire() as a resolution (success), FAILED or IGNORED; only
      // IGNORED passes the filter (and its 'success' is dropped, see GrpcCircuitBreaker).
      errorFilter: (error: unknown) => error === IGNORED,
      rollingPercentilesEnabled: false,
      enableSnapshots: false,
    });
    this.#cb.onIgnored = () => {
      // A half-open probe that ended without an answer leaves no probe out: open again, and
      // probe after another resetTimeoutMs.
      if (this.#cb.halfOpen && !this.#cb.pendingClose) {
        this.#transitionReason = 'probe-inconclusive';
        this.#cb.open();
      }
    };
    this.#cb.on('open', () => this.#moved('open'));
    this.#cb.on('halfOpen', () => this.#moved('half-open'));
    this.#cb.on('close', () => this.#moved('closed'));
  }

  #transitionReason: BreakerReason | undefined;

  #moved(state: BreakerState): void {
    const previous = this.#state;
    if (state === previous) return;
    this.#state = state;
    let reason: BreakerReason;
    if (state === 'open') {
      this.#opened++;
      this.#nextProbeAt = Date.now() + this.options.resetTimeoutMs;
      reason = this.#transitionReason ?? (previous === 'half-open' ? 'probe-failed' : 'error-threshold');
    } else {
      this.#nextProbeAt = undefined;
      reason = state === 'half-open' ? 'reset-timeout' : 'probe-succeeded';
      // A circuit closed by its probe starts from an empty window: opossum keeps the counts that
      // opened it, so with resetTimeoutMs < windowMs one more failure would reopen it at once.
      // (`status.rotateBucket` is opossum 9.0's own bucket rotation, pinned with `~9.0.0`.)
      if (state === 'closed') for (let i = 0; i < BUCKETS; i++) (this.#cb.status as unknown as { rotateBucket(): void }).rotateBucket();
    }
    this.#transitionReason = undefined;
    this.onChange({ method: this.method, state, previous, reason });
  }

  /**
   * Admits an attempt, or refuses it (counting the refusal) when the circuit is open or its
   * half-open probe is already out. Returns `false` for a refusal; `true` for an attempt in the
   * closed state, whose outcome goes to `record()`; or, for the half-open probe, the function
   * that reports its outcome.
   *
   * In the closed state, which is nearly every call, the attempt is recorded with the events
   * opossum's own `fire()` emits ('fire', then 'success' or 'failure', and the same threshold
   * check), without the three promises `fire()` allocates per call: on a healthy call that was
   * the larger part of the breaker's cost. opossum still keeps the window, the state machine,
   * the reset timer and the events. These are opossum 9.0's internals (package.json pins
   * `~9.0.0`; test/unit/circuit-breaker.test.ts covers every transition with fake timers). The
   * half-open probe goes through `fire()` itself, so that opossum lets exactly one through.
   */
  begin(): boolean | ((outcome: AttemptOutcome) => void) {
    const cb = this.#cb;
    if (cb.closed) return true;
    if (!cb.pendingClose) {
      this.#rejected++;
      return false;
    }
    let report: (outcome: AttemptOutcome) => void = () => {};
    cb.fire(
      () =>
        new Promise<void>((resolve, reject) => {
          report = (outcome) => (outcome === 'success' ? resolve() : reject(outcome === 'failure' ? FAILED : IGNORED));
        }),
    ).catch(() => {});
    return (outcome) => report(outcome);
  }

  /**
   * Records the outcome of an attempt admitted in the closed state, as opossum's fire() would.
   * An ignored attempt is not counted at all, not even as volume. `latencyMs` is what opossum's
   * events carry; nothing reads it (rolling percentiles are off), so callers may pass 0.
   */
  record(outcome: AttemptOutcome, latencyMs: number): void {
    if (outcome === 'ignored') return;
    const cb = this.#cb;
    cb.emit('fire', NO_ARGS);
    if (outcome === 'success') {
      cb.emit('success', undefined, latencyMs);
      return;
    }
    cb.emit('failure', FAILED, latencyMs, NO_ARGS);
    // opossum's threshold check after a failure (its fail()).
    if (cb.warmUp) return;
    const { fires, failures } = cb.stats;
    if (fires < cb.volumeThreshold && !cb.halfOpen) return;
    if ((failures / fires) * 100 > this.options.errorThresholdPercentage || cb.halfOpen) cb.open();
  }

  /** Whether `begin()` would admit an attempt now (closed, or half-open with its probe not yet out). */
  get admits(): boolean {
    return this.#cb.closed || this.#cb.pendingClose;
  }

  /**
   * Closed, older than a window, and with no call counted in its window: the same as a fresh
   * breaker. (A call still in flight on a released breaker is harmless: its outcome goes to the
   * released one, and its retries and the next calls get a fresh one.)
   */
  get isIdle(): boolean {
    return this.#cb.closed && Date.now() - this.#createdAt > this.options.windowMs && this.#cb.stats.fires === 0;
  }

  get nextProbeAt(): number {
    return this.#nextProbeAt ?? Date.now();
  }

  stats(): BreakerStats {
    return { method: this.method, state: this.#state, rejected: this.#rejected, opened: this.#opened, nextProbeAt: this.#nextProbeAt };
  }

  shutdown(): void {
    this.#cb.shutdown();
  }
}
