import { BREAKER_KEYS, type BreakerOptions } from '../config/breaker-options.js';
import type { Resolved } from '../config/check-helpers.js';
import { Breaker, type BreakerStateChange, type BreakerStats, type BucketRotation } from './circuit-breaker.js';

// The circuit breakers of one channel: one per scope and options (the channel's own, or with
// `scope: 'method'` one per method), made on first use and shared by every client with equal
// options. One that is closed and has seen no call for a whole window is the same as a fresh
// one and is released, so clients made with ever-new options leave nothing behind.

/** The key of a breaker in its channel: its scope and every option (equal options share one). */
export function breakerKey(method: string, options: Resolved<BreakerOptions>): string {
  return `${options.scope === 'method' ? method : ''}\n${BREAKER_KEYS.map((k) => options[k as keyof BreakerOptions]).join('\n')}`;
}

export class ChannelBreakers {
  readonly #breakers = new Map<string, Breaker>();
  #sweptAt = 0;

  constructor(
    readonly rotation: BucketRotation,
    readonly onChange: (change: Omit<BreakerStateChange, 'target'>) => void,
  ) {}

  /** The breaker under `key` (see `breakerKey`), made on first use. */
  get(key: string, method: string, options: Resolved<BreakerOptions>): Breaker {
    let breaker = this.#breakers.get(key);
    if (breaker === undefined) {
      this.#sweep();
      breaker = new Breaker(options, options.scope === 'method' ? method : undefined, this.rotation, this.onChange);
      this.#breakers.set(key, breaker);
    }
    return breaker;
  }

  /** Each breaker's figures, for stats() (idle ones released first). */
  stats(): BreakerStats[] {
    this.#sweep();
    return [...this.#breakers.values()].map((b) => b.stats());
  }

  /** The channel's connection was replaced for silence: every open circuit probes at once (see `Breaker.probeNow`). */
  probeNow(): void {
    for (const breaker of this.#breakers.values()) breaker.probeNow();
  }

  close(): void {
    for (const breaker of this.#breakers.values()) breaker.shutdown();
    this.#breakers.clear();
  }

  /** Releases idle breakers, at most once per second (each check reads a breaker's window). */
  #sweep(): void {
    const now = Date.now();
    if (now - this.#sweptAt < 1_000) return;
    this.#sweptAt = now;
    for (const [key, breaker] of this.#breakers) {
      if (!breaker.isIdle) continue;
      breaker.shutdown();
      this.#breakers.delete(key);
    }
  }
}
