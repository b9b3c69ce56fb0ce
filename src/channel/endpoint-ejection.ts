import type { AttemptOutcome } from '../core/status-meaning.js';

// The books of one channel's endpoints: what the picker (endpoint-lb.ts, endpoint-picker.ts)
// reads to choose and to skip, and what every signal the client has writes to. Failures are the
// package's own idea of one: the classification the breaker uses (a healthy answer such as
// NOT_FOUND is a success; attempts we ended ourselves count neither way).
//
// - Outstanding attempts per endpoint (gRFC A48 least-request): +1 at a complete pick, -1 when
//   the attempt ends (its status), not when it is judged: a stream judged at its first message
//   is still outstanding.
// - Ejection, four ways (EjectionReason): `consecutiveFailures` failures in a row eject at once
//   (Envoy's consecutive_5xx, Finagle's failure accrual); a failure rate over an interval (gRFC
//   A50 failure-percentage); an attempt that ran out its deadline while its endpoint said
//   nothing at all and another endpoint answered ('silent': a hung process); the endpoint's own
//   health report ('not-serving', fed by `setServing`). At most `maxEjectionPercent` of the
//   endpoints are ejected by the first three (one always allowed, and never the last endpoint
//   in rotation); not-serving is the server's own word and is not capped.
// - A probe back: when an ejection's time is up the endpoint gets exactly one attempt (no other
//   picks until it settles); success returns it, failure ejects it again for longer (A50's
//   multiplier, which shrinks again by one per clean interval).
// Nothing here runs on a timer: the picker calls `refresh()` once per pick (one clock read),
// which does the interval's work when one is due.
//
// Just over 300 lines on purpose: the four ejection rules, the cap and the probe share one
// endpoint's book and one rule of who may be ejected; split, each part would read the others'
// private state.

/** Why an endpoint is out of rotation. */
export type EjectionReason = 'consecutive-failures' | 'failure-percentage' | 'not-serving' | 'silent';

/**
 * Where an ejected endpoint is on its way back: 'none' (in rotation, or out only for not
 * serving), 'waiting' (its ejection time runs), 'due' (time is up: the next pick that can take
 * it makes its probe), 'in-flight' (its one probe attempt is out).
 */
export type EndpointProbeState = 'none' | 'waiting' | 'due' | 'in-flight';

/** Per-channel endpoint ejection settings, once the defaults are applied. */
export interface EjectionSettings {
  intervalMs: number;
  failurePercentage: number;
  requestVolume: number;
  baseEjectionTimeMs: number;
  maxEjectionTimeMs: number;
  maxEjectionPercent: number;
  /** Failures in a row that eject an endpoint; 0: off. */
  consecutiveFailures: number;
}

/** One endpoint of a channel in `stats()`. */
export interface EndpointStats {
  /** `host:port` as grpc-js connects to it. */
  address: string;
  /** Whether the endpoint is out of rotation now (ejected, waiting for its probe, or not serving). */
  ejected: boolean;
  /** Why it is out of rotation; undefined while it is in. */
  ejectionReason: EjectionReason | undefined;
  /** While ejected by its failures: when its ejection time is (or was) up, epoch ms. */
  ejectedUntil: number | undefined;
  /** Its way back after an ejection (see `EndpointProbeState`). */
  probe: EndpointProbeState;
  /** Attempts picked for it that have not ended yet. */
  outstanding: number;
  /** When the endpoint was last heard from (response headers, a status it sent), epoch ms; undefined: never. */
  lastHeardAt: number | undefined;
  /** false while its health check reports it NOT_SERVING. */
  serving: boolean;
  /** Attempts that went to this endpoint, since the channel was made. */
  attempts: number;
  /** Of those, attempts that failed (by the same rule as the breaker). */
  failures: number;
  /** Its failures since its last success. */
  consecutiveFailures: number;
  /** Times the endpoint was ejected (a failed probe counts again; not serving does not). */
  ejections: number;
}

/** Reported by `pool.onEndpointEjection` when an endpoint leaves or rejoins the rotation. */
export interface EndpointEjection {
  /** The channel's target, as given to `pool.client()`. */
  target: string;
  /** The endpoint's address, `host:port`. */
  address: string;
  /** true: taken out of rotation; false: back in it. */
  ejected: boolean;
  /** Why it was taken out (on its return: why it had been). */
  reason: EjectionReason;
  /** The endpoint's failure rate in its last judged interval, in percent. */
  failurePercentage: number;
  /** How long it stays out, in ms; 0 when it returns, and for 'not-serving' (out until it reports SERVING). */
  ejectedForMs: number;
}

type BookState = 'in' | 'waiting' | 'due' | 'probing';

/** One endpoint's books. A class of fixed shape: the picker reads it on every pick. */
export class EndpointBook {
  /** Attempts picked for it that have not ended. */
  outstanding = 0;
  state: BookState = 'in';
  reason: EjectionReason | undefined = undefined;
  ejectedUntil = 0;
  serving = true;
  lastHeardAt = -1;
  consecutive = 0;
  /** Attempts and failures in the current interval. */
  calls = 0;
  failed = 0;
  attempts = 0;
  failures = 0;
  ejections = 0;
  /** The ejection-time multiplier: grows per ejection, shrinks per clean interval (A50). */
  multiplier = 0;
  lastRate = 0;

  constructor(readonly address: string) {}
}

/**
 * Whether the picker may send an attempt to `book`: in rotation and serving, or due for its
 * probe when the attempt can be a probe (its outcome will be heard: it has a link).
 */
export function admits(book: EndpointBook, canProbe: boolean): boolean {
  return book.serving && (book.state === 'in' || (canProbe && book.state === 'due'));
}

/** The books of one channel's endpoints. */
export class EndpointTracker {
  readonly #books = new Map<string, EndpointBook>();
  #intervalStart: number;
  /** When `refresh()` next has work: an interval's end or an ejection's. */
  #nextCheck: number;
  /** The latest time any endpoint was heard from. */
  #lastHeardAny = -1;

  constructor(
    readonly target: string,
    readonly settings: EjectionSettings,
    readonly onChange: (change: EndpointEjection) => void,
    readonly now: () => number = Date.now,
    /** The picker's source of randomness, in [0, 1). */
    readonly random: () => number = Math.random,
  ) {
    this.#intervalStart = now();
    this.#nextCheck = this.#intervalStart + settings.intervalMs;
  }

  /** The resolver's current endpoint list: new ones get a book, gone ones lose theirs. */
  setAddresses(addresses: readonly string[]): void {
    const keep = new Set(addresses);
    for (const address of this.#books.keys()) if (!keep.has(address)) this.#books.delete(address);
    for (const address of addresses) if (!this.#books.has(address)) this.#books.set(address, new EndpointBook(address));
  }

  /** The book of `address`, if the resolver listed it. */
  bookOf(address: string): EndpointBook | undefined {
    return this.#books.get(address);
  }

  /** Does what is due (an interval's judgement, ejections whose time is up); returns the time. */
  refresh(): number {
    const now = this.now();
    if (now >= this.#nextCheck) this.#check(now);
    return now;
  }

  /** Whether `address` is out of rotation by its books (ejected, or waiting for its probe to settle). */
  isEjected(address: string): boolean {
    this.refresh();
    const book = this.#books.get(address);
    return book !== undefined && book.state !== 'in';
  }

  /** An attempt was picked for `book` (with a link: its outcome will be reported); returns whether it is the probe. */
  picked(book: EndpointBook, linked: boolean): boolean {
    book.outstanding++;
    if (!linked || book.state !== 'due') return false;
    book.state = 'probing';
    return true;
  }

  /**
   * An attempt picked for `book` ended (its status arrived). `silentTimeout`: it failed by its
   * deadline with nothing heard from the endpoint, since `pickedAt`. If the endpoint has said
   * nothing since then while another endpoint has, it is ejected as 'silent'.
   */
  released(book: EndpointBook, pickedAt: number, silentTimeout: boolean): void {
    if (book.outstanding > 0) book.outstanding--;
    if (!silentTimeout || book.state !== 'in' || book.lastHeardAt >= pickedAt || this.#lastHeardAny < pickedAt) return;
    if (this.#books.get(book.address) === book) this.#eject(book, 'silent', this.now());
  }

  /** A probe's attempt ended without an outcome (aborted, or sent elsewhere): the endpoint waits for another. */
  probeLost(book: EndpointBook): void {
    if (book.state === 'probing') book.state = 'due';
  }

  /** An attempt that went to `address` was judged with this outcome; `probe`: it was the endpoint's probe. */
  record(address: string, outcome: AttemptOutcome, probe = false): void {
    // An endpoint the resolver has dropped since the attempt was picked is no longer booked.
    const book = this.#books.get(address);
    if (book === undefined) return;
    if (outcome === 'ignored') {
      if (probe) this.probeLost(book);
      return;
    }
    book.calls++;
    book.attempts++;
    const failed = outcome === 'failure';
    if (failed) {
      book.failed++;
      book.failures++;
      book.consecutive++;
    } else {
      book.consecutive = 0;
    }
    // Counted first: the attempt reported when an interval is up is counted in it.
    const now = this.refresh();
    if (probe && book.state === 'probing') {
      if (failed) this.#eject(book, book.reason ?? 'consecutive-failures', now);
      else this.#return(book);
    } else if (failed && book.state === 'in') {
      const limit = this.settings.consecutiveFailures;
      if (limit > 0 && book.consecutive >= limit) this.#eject(book, 'consecutive-failures', now);
    }
  }

  /** Something arrived from the endpoint at `address` at `atMs` (epoch ms): headers, a status, a frame. */
  heard(address: string, atMs: number): void {
    const book = this.#books.get(address);
    if (book === undefined) return;
    if (atMs > book.lastHeardAt) book.lastHeardAt = atMs;
    if (atMs > this.#lastHeardAny) this.#lastHeardAny = atMs;
  }

  /**
   * The endpoint's health report (gRFC A17): a not-serving endpoint gets no picks, and shows as
   * ejected with reason 'not-serving'. It does not count against `maxEjectionPercent`.
   */
  setServing(address: string, serving: boolean): void {
    const book = this.#books.get(address);
    if (book === undefined || book.serving === serving) return;
    book.serving = serving;
    this.#emit(book, !serving, 'not-serving', 0);
  }

  stats(): EndpointStats[] {
    return [...this.#books.values()]
      .map((b) => ({
        address: b.address,
        ejected: b.state !== 'in' || !b.serving,
        ejectionReason: b.state !== 'in' ? b.reason : b.serving ? undefined : ('not-serving' as const),
        ejectedUntil: b.state === 'in' ? undefined : b.ejectedUntil,
        probe: PROBE_STATE[b.state],
        outstanding: b.outstanding,
        lastHeardAt: b.lastHeardAt < 0 ? undefined : b.lastHeardAt,
        serving: b.serving,
        attempts: b.attempts,
        failures: b.failures,
        consecutiveFailures: b.consecutive,
        ejections: b.ejections,
      }))
      .sort((a, b) => (a.address < b.address ? -1 : a.address > b.address ? 1 : 0));
  }

  /** Takes `book` out (or, when it is probing, out again for longer), if the cap allows. */
  #eject(book: EndpointBook, reason: EjectionReason, now: number): void {
    if (book.state === 'in' && !this.#mayEject(book)) return;
    const { baseEjectionTimeMs, maxEjectionTimeMs } = this.settings;
    book.multiplier++;
    const forMs = Math.min(baseEjectionTimeMs * book.multiplier, Math.max(baseEjectionTimeMs, maxEjectionTimeMs));
    book.state = 'waiting';
    book.reason = reason;
    book.ejectedUntil = now + forMs;
    book.ejections++;
    book.consecutive = 0;
    if (book.ejectedUntil < this.#nextCheck) this.#nextCheck = book.ejectedUntil;
    this.#emit(book, true, reason, forMs);
  }

  /** Its probe succeeded: back in rotation. */
  #return(book: EndpointBook): void {
    const reason = book.reason ?? 'consecutive-failures';
    book.state = 'in';
    book.reason = undefined;
    book.consecutive = 0;
    this.#emit(book, false, reason, 0);
  }

  /**
   * At most `maxEjectionPercent` of the endpoints out by their books (one always allowed, as in
   * A50, so 1 of 2 can go), and another endpoint left in rotation: with none, there is nowhere
   * else to go.
   */
  #mayEject(book: EndpointBook): boolean {
    let out = 0;
    let available = 0;
    for (const b of this.#books.values()) {
      if (b.state !== 'in') out++;
      else if (b.serving && b !== book) available++;
    }
    const allowed = Math.max(1, Math.floor((this.#books.size * this.settings.maxEjectionPercent) / 100));
    return out < allowed && available > 0;
  }

  #emit(book: EndpointBook, ejected: boolean, reason: EjectionReason, forMs: number): void {
    this.onChange({ target: this.target, address: book.address, ejected, reason, failurePercentage: book.lastRate, ejectedForMs: forMs });
  }

  #check(now: number): void {
    if (now - this.#intervalStart >= this.settings.intervalMs) {
      this.#intervalStart = now;
      this.#evaluate(now);
    }
    let next = this.#intervalStart + this.settings.intervalMs;
    for (const book of this.#books.values()) {
      if (book.state !== 'waiting') continue;
      if (now >= book.ejectedUntil) book.state = 'due';
      else if (book.ejectedUntil < next) next = book.ejectedUntil;
    }
    this.#nextCheck = next;
  }

  /** An interval is over: failure-percentage ejection (A50), judged on the interval's attempts. */
  #evaluate(now: number): void {
    const { failurePercentage, requestVolume } = this.settings;
    const books = [...this.#books.values()];
    // A clean interval in rotation shrinks the multiplier (A50).
    for (const book of books) if (book.state === 'in' && book.multiplier > 0 && book.failed === 0) book.multiplier--;
    // Judge only with enough traffic on at least two endpoints: with one, there is nowhere else to go.
    const judged = books.filter((b) => b.calls >= requestVolume);
    if (judged.length >= 2) {
      for (const book of judged) {
        book.lastRate = (book.failed / book.calls) * 100;
        if (book.state === 'in' && book.lastRate >= failurePercentage) this.#eject(book, 'failure-percentage', now);
      }
    }
    for (const book of books) {
      book.calls = 0;
      book.failed = 0;
    }
  }
}

const PROBE_STATE: Record<BookState, EndpointProbeState> = { in: 'none', waiting: 'waiting', due: 'due', probing: 'in-flight' };
