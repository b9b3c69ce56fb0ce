import { EventEmitter } from 'node:events';
import { status } from '@grpc/grpc-js';
import CircuitBreaker from 'opossum';
import { checkOptionsObject, optionError } from './errors.js';
import { isLocalMessageFailure } from './local-failures.js';
import { withDefined, type Resolved } from './with-defined.js';

/**
 * Circuit breaking per channel (or per method of a channel), on opossum. When too many calls in
 * the window fail, the circuit opens: calls are refused at once with `CircuitOpenError` and
 * never touch the network. After `resetTimeoutMs` one probe goes out; its outcome closes the
 * circuit or opens it again.
 */
export interface BreakerOptions {
  /** Failure rate, in percent of the calls in the window, above which the circuit opens. (0, 100]. Default: 50. */
  errorThresholdPercentage?: number | undefined;
  /** Calls the window must hold before the circuit may open. Integer >= 1. Default: 20. */
  volumeThreshold?: number | undefined;
  /** The rolling window the rate is measured over, in ms (10 buckets). >= 100. Default: 10000. */
  windowMs?: number | undefined;
  /** How long the circuit stays open before a half-open probe, in ms. Default: 10000. */
  resetTimeoutMs?: number | undefined;
  /** One breaker per channel, or one per method of each channel. Default: `'channel'`. */
  scope?: 'channel' | 'method' | undefined;
}

export const BREAKER_DEFAULTS = {
  errorThresholdPercentage: 50,
  volumeThreshold: 20,
  windowMs: 10_000,
  resetTimeoutMs: 10_000,
  scope: 'channel',
} as const satisfies Resolved<BreakerOptions>;

/** State of a circuit. */
export type BreakerState = 'closed' | 'open' | 'half-open';

/** Why a circuit changed state. */
export type BreakerReason = 'error-threshold' | 'reset-timeout' | 'probe-succeeded' | 'probe-failed' | 'probe-inconclusive' | 'pool-closed';

const BUCKETS = 10;
export const BREAKER_KEYS: readonly string[] = ['errorThresholdPercentage', 'volumeThreshold', 'windowMs', 'resetTimeoutMs', 'scope'];

export function checkBreakerOptions(option: string, value: unknown): BreakerOptions | false | undefined {
  if (value === undefined || value === false) return value;
  checkOptionsObject(option, value, BREAKER_KEYS, `false or an object { ${BREAKER_KEYS.join(', ')} }`);
  const b = value as BreakerOptions;
  const check = (key: keyof BreakerOptions, ok: (v: number) => boolean, expected: string): void => {
    const v = b[key];
    if (v === undefined) return;
    if (typeof v !== 'number' || Number.isNaN(v)) throw optionError('type', `${option}.${key}`, 'a number', v);
    if (!ok(v)) throw optionError('range', `${option}.${key}`, expected, v);
  };
  check('errorThresholdPercentage', (v) => v > 0 && v <= 100, 'a percentage > 0 and <= 100');
  check('volumeThreshold', (v) => Number.isInteger(v) && v >= 1 && v <= 1_000_000, 'an integer >= 1 (calls in the window before the circuit may open)');
  check('windowMs', (v) => v >= 100 && v <= 3_600_000, 'a number of milliseconds from 100 to 3600000');
  check('resetTimeoutMs', (v) => v > 0 && v <= 2_147_483_647, 'a number of milliseconds > 0 and <= 2147483647');
  if (b.scope !== undefined && b.scope !== 'channel' && b.scope !== 'method') {
    throw optionError('type', `${option}.scope`, '"channel" or "method"', b.scope);
  }
  return b;
}

/** Applies a client's `breaker` over the pool's: `false` turns it off, fields merge one by one. */
export function mergeBreaker(base: BreakerOptions | false, over: BreakerOptions | false | undefined): BreakerOptions | false {
  if (over === undefined) return base;
  if (over === false) return false;
  return withDefined(base === false ? {} : base, over);
}

/** The breaker options with the defaults applied, or `false`. */
export function resolveBreaker(options: BreakerOptions | false): Resolved<BreakerOptions> | false {
  return options === false ? false : (withDefined<BreakerOptions>(BREAKER_DEFAULTS, options) as Resolved<BreakerOptions>);
}

/**
 * How a settled attempt counts. `failure`: the backend is unhealthy (UNAVAILABLE, our own
 * DEADLINE_EXCEEDED, INTERNAL, UNKNOWN, DATA_LOSS, a RESOURCE_EXHAUSTED the server sent). Any
 * other status is a healthy answer: the server decided. Our own errors and a caller's abort
 * are neither, and are never given to the breaker.
 */
export function isBreakerFailure(code: number, details: string): boolean {
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

const NO_ARGS: unknown[] = [];

/** Marks errors of attempts that count neither way (a caller's abort, a cancellation by close()). */
const inconclusive = new WeakSet<object>();
export function markInconclusive(error: object): void {
  inconclusive.add(error);
}

/**
 * opossum, with one change: it reports a rejection that its `errorFilter` accepts as a
 * success, which would let an aborted call close a half-open circuit. Our filter accepts two
 * kinds: healthy answers (a success indeed) and inconclusive attempts, whose 'success' is
 * dropped here so they count neither way.
 */
class GrpcCircuitBreaker extends CircuitBreaker<[() => Promise<unknown>], unknown> {
  onInconclusive: () => void = () => {};

  override emit(event: string | symbol, ...args: unknown[]): boolean {
    if (event === 'success' && typeof args[0] === 'object' && args[0] !== null && inconclusive.has(args[0])) {
      this.onInconclusive();
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
      // Only healthy answers and inconclusive attempts pass the filter; every other error counts.
      errorFilter: (error: unknown) => !isFailureError(error),
      rollingPercentilesEnabled: false,
      enableSnapshots: false,
    });
    this.#cb.onInconclusive = () => {
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
    }
    this.#transitionReason = undefined;
    this.onChange({ method: this.method, state, previous, reason });
  }

  /**
   * Admits an attempt, or refuses it (counting the refusal) when the circuit is open or its
   * half-open probe is already out. Returns `false` for a refusal; `true` for an attempt in the
   * closed state, whose outcome goes to `record()`; or, for the half-open probe, the function
   * that reports its outcome (`null` for a success, else the error).
   *
   * In the closed state, which is nearly every call, the attempt is recorded with the events
   * opossum's own `fire()` emits ('fire', then 'success' or 'failure', and the same threshold
   * check), without the three promises `fire()` allocates per call: on a healthy call that was
   * the larger part of the breaker's cost. opossum still keeps the window, the state machine,
   * the reset timer and the events. The half-open probe goes through `fire()` itself, so that
   * opossum lets exactly one through.
   */
  begin(): boolean | ((error: unknown) => void) {
    const cb = this.#cb;
    if (cb.closed) {
      cb.emit('fire', NO_ARGS);
      return true;
    }
    if (!cb.pendingClose) {
      this.#rejected++;
      return false;
    }
    let report: (error: unknown) => void = () => {};
    cb.fire(
      () =>
        new Promise<void>((resolve, reject) => {
          report = (error) => (error === null ? resolve() : reject(error));
        }),
    ).catch(() => {});
    return (error) => report(error);
  }

  /** Records the outcome of an attempt admitted in the closed state, as opossum's fire() would. */
  record(error: unknown, latencyMs: number): void {
    const cb = this.#cb;
    if (error !== null && typeof error === 'object' && inconclusive.has(error)) return;
    if (!isFailureError(error)) {
      // A success, or a healthy answer (opossum's errorFilter would pass it as one).
      cb.emit('success', undefined, latencyMs);
      return;
    }
    cb.emit('failure', error, latencyMs, NO_ARGS);
    // opossum's threshold check after a failure (its fail()).
    if (cb.warmUp) return;
    const { fires, failures } = cb.stats;
    if (fires < cb.volumeThreshold && !cb.halfOpen) return;
    if ((failures / fires) * 100 > this.options.errorThresholdPercentage || cb.halfOpen) cb.open();
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

function isFailureError(error: unknown): boolean {
  if (typeof error !== 'object' || error === null || inconclusive.has(error)) return false;
  const { code, details } = error as { code?: unknown; details?: unknown };
  return typeof code === 'number' && isBreakerFailure(code, typeof details === 'string' ? details : '');
}
