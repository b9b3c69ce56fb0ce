// The connect watchdog of one channel: grpc-js 1.14 has no connect timeout (grpc-node #2785),
// so a peer that accepts TCP but never completes the HTTP/2 handshake leaves a channel
// CONNECTING for ever, failing every call with DEADLINE_EXCEEDED "Waiting for LB pick". The
// watchdog only keeps time; what to do about a stuck channel is its owner's decision.
//
// Each replacement of a stuck channel used to leave its TCP socket open at the peer
// (releasing-credentials.ts releases it). Where that cannot be done, the watchdog bounds the
// damage instead: with `backoff`, each report doubles the limit (up to 10 minutes) until the
// channel gets READY, so a half-open peer costs about 10 sockets in the first hour and 6 an hour
// after that, instead of 180 an hour at 20 s.

/** The longest limit a backing-off watchdog reaches, in ms. */
export const MAX_BACKOFF_LIMIT_MS = 600_000;

/** Times how long a channel stays CONNECTING and reports it once it passes `limitMs`. */
export class ConnectWatchdog {
  #timer: NodeJS.Timeout | undefined;
  #connectingSince = 0;
  #currentLimitMs: number;

  /**
   * @param limitMs how long a channel may stay CONNECTING.
   * @param onStuck called once per CONNECTING spell that lasts `limitMs`, with how long it lasted.
   * @param now the clock (injectable for tests), in ms.
   * @param backoff double the limit after each report, until `connected()` (see above).
   */
  constructor(
    readonly limitMs: number,
    readonly onStuck: (connectingMs: number) => void,
    readonly now: () => number = () => performance.now(),
    readonly backoff = false,
  ) {
    this.#currentLimitMs = limitMs;
  }

  /** The limit of the next CONNECTING spell, in ms: `limitMs`, or more while backing off. */
  get currentLimitMs(): number {
    return this.#currentLimitMs;
  }

  /** The channel got READY: a backing-off watchdog starts again from `limitMs`. */
  connected(): void {
    this.#currentLimitMs = this.limitMs;
  }

  /** The channel's connectivity changed: start timing on CONNECTING, stop on anything else. */
  onState(connecting: boolean): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    if (!connecting) return;
    this.#connectingSince = this.now();
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      if (this.backoff) this.#currentLimitMs = Math.min(this.#currentLimitMs * 2, Math.max(this.limitMs, MAX_BACKOFF_LIMIT_MS));
      this.onStuck(this.now() - this.#connectingSince);
    }, this.#currentLimitMs);
    // A watchdog only matters while calls wait on the channel; those keep the process alive.
    this.#timer.unref();
  }

  /** Whether a CONNECTING spell is being timed. */
  get isTiming(): boolean {
    return this.#timer !== undefined;
  }

  stop(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
  }
}
