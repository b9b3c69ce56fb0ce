import type { AttemptOutcome } from '../core/status-meaning.js';

// Endpoint ejection, after gRPC's outlier detection (gRFC A50, failure-percentage ejection), with
// the package's own idea of a failure: the same classification the breaker uses (a healthy
// answer such as NOT_FOUND is a success; attempts we ended ourselves count neither way). The
// picker in endpoint-lb.ts skips ejected endpoints; this file only keeps the books. Nothing here
// runs on a timer: the books are evaluated when attempts are picked or reported.

/** Per-channel endpoint ejection settings, once the defaults are applied. */
export interface EjectionSettings {
  intervalMs: number;
  failurePercentage: number;
  requestVolume: number;
  baseEjectionTimeMs: number;
  maxEjectionTimeMs: number;
  maxEjectionPercent: number;
}

/** One endpoint of a channel in `stats()`. */
export interface EndpointStats {
  /** `host:port` as grpc-js connects to it. */
  address: string;
  /** Whether the endpoint is out of rotation now. */
  ejected: boolean;
  /** While ejected: when it gets traffic again, epoch ms. */
  ejectedUntil: number | undefined;
  /** Attempts that went to this endpoint, since the channel was made. */
  attempts: number;
  /** Of those, attempts that failed (by the same rule as the breaker). */
  failures: number;
  /** Times the endpoint was ejected. */
  ejections: number;
  /**
   * What the endpoint's health check says (client-side health checking, the `healthCheck` client
   * option): false after NOT_SERVING, SERVICE_UNKNOWN or a failed Watch; true otherwise, and
   * always true without health checking.
   */
  serving: boolean;
}

/** Reported by `pool.onEndpointEjection` when an endpoint leaves or rejoins the rotation. */
export interface EndpointEjection {
  /** The channel's target, as given to `pool.client()`. */
  target: string;
  /** The endpoint's address, `host:port`. */
  address: string;
  /** true: taken out of rotation; false: back in it. */
  ejected: boolean;
  /** The failure rate that got it ejected, in percent (the last interval's, when it returns). */
  failurePercentage: number;
  /** How long it stays out, in ms (0 when it returns). */
  ejectedForMs: number;
}

interface Book {
  address: string;
  /** Attempts and failures in the current interval. */
  calls: number;
  failed: number;
  attempts: number;
  failures: number;
  ejections: number;
  /** The ejection-time multiplier: grows per ejection, shrinks per clean interval (A50). */
  multiplier: number;
  ejectedUntil: number | undefined;
  lastRate: number;
  serving: boolean;
}

/** The ejection books of one channel's endpoints. */
export class EndpointTracker {
  readonly #books = new Map<string, Book>();
  #intervalStart: number;

  constructor(
    readonly target: string,
    readonly settings: EjectionSettings,
    readonly onChange: (change: EndpointEjection) => void,
    readonly now: () => number = Date.now,
  ) {
    this.#intervalStart = now();
  }

  /** The resolver's current endpoint list: new ones get a book, gone ones lose theirs. */
  setAddresses(addresses: readonly string[]): void {
    const keep = new Set(addresses);
    for (const address of this.#books.keys()) if (!keep.has(address)) this.#books.delete(address);
    for (const address of addresses) this.#book(address);
  }

  /** Whether `address` is out of rotation (after evaluating the books if an interval has passed). */
  isEjected(address: string): boolean {
    this.#maybeEvaluate();
    const until = this.#books.get(address)?.ejectedUntil;
    return until !== undefined;
  }

  /** What the endpoint's health check says (health-check.ts); an address without a book is ignored. */
  setServing(address: string, serving: boolean): void {
    const book = this.#books.get(address);
    if (book !== undefined) book.serving = serving;
  }

  /** An attempt that went to `address` ended with this outcome. */
  record(address: string, outcome: AttemptOutcome): void {
    // An endpoint the resolver has dropped since the attempt was picked is no longer booked.
    const book = this.#books.get(address);
    if (outcome === 'ignored' || book === undefined) return;
    book.calls++;
    book.attempts++;
    if (outcome === 'failure') {
      book.failed++;
      book.failures++;
    }
    this.#maybeEvaluate();
  }

  stats(): EndpointStats[] {
    return [...this.#books.values()]
      .map((b) => ({
        address: b.address,
        ejected: b.ejectedUntil !== undefined,
        ejectedUntil: b.ejectedUntil,
        attempts: b.attempts,
        failures: b.failures,
        ejections: b.ejections,
        serving: b.serving,
      }))
      .sort((a, b) => (a.address < b.address ? -1 : a.address > b.address ? 1 : 0));
  }

  #book(address: string): Book {
    let book = this.#books.get(address);
    if (book === undefined) {
      book = {
        address,
        calls: 0,
        failed: 0,
        attempts: 0,
        failures: 0,
        ejections: 0,
        multiplier: 0,
        ejectedUntil: undefined,
        lastRate: 0,
        serving: true,
      };
      this.#books.set(address, book);
    }
    return book;
  }

  #maybeEvaluate(): void {
    const now = this.now();
    if (now - this.#intervalStart < this.settings.intervalMs) return;
    this.#intervalStart = now;
    const { failurePercentage, requestVolume, baseEjectionTimeMs, maxEjectionTimeMs, maxEjectionPercent } = this.settings;
    const books = [...this.#books.values()];
    // Return the endpoints whose time is up; a clean interval shrinks the multiplier (A50).
    for (const book of books) {
      if (book.ejectedUntil !== undefined && now >= book.ejectedUntil) {
        book.ejectedUntil = undefined;
        this.onChange({ target: this.target, address: book.address, ejected: false, failurePercentage: book.lastRate, ejectedForMs: 0 });
      } else if (book.ejectedUntil === undefined && book.multiplier > 0 && book.failed === 0) {
        book.multiplier--;
      }
    }
    // Judge only with enough traffic on at least two endpoints: with one, there is nowhere else to go.
    const judged = books.filter((b) => b.calls >= requestVolume);
    if (judged.length >= 2) {
      // At least one ejection is always allowed, as in A50, so 1 of 2 can be taken out.
      const allowed = Math.max(1, Math.floor((books.length * maxEjectionPercent) / 100));
      let ejected = books.filter((b) => b.ejectedUntil !== undefined).length;
      for (const book of judged) {
        const rate = (book.failed / book.calls) * 100;
        book.lastRate = rate;
        if (book.ejectedUntil !== undefined || rate < failurePercentage || ejected >= allowed) continue;
        book.multiplier++;
        const forMs = Math.min(baseEjectionTimeMs * book.multiplier, Math.max(baseEjectionTimeMs, maxEjectionTimeMs));
        book.ejectedUntil = now + forMs;
        book.ejections++;
        ejected++;
        this.onChange({ target: this.target, address: book.address, ejected: true, failurePercentage: rate, ejectedForMs: forMs });
      }
    }
    for (const book of books) {
      book.calls = 0;
      book.failed = 0;
    }
  }
}
