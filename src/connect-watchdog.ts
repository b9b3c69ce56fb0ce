// The connect watchdog of one channel: grpc-js 1.14 has no connect timeout (grpc-node #2785),
// so a peer that accepts TCP but never completes the HTTP/2 handshake leaves a channel
// CONNECTING for ever, failing every call with DEADLINE_EXCEEDED "Waiting for LB pick". The
// watchdog only keeps time; what to do about a stuck channel is its owner's decision.

/** Times how long a channel stays CONNECTING and reports it once it passes `limitMs`. */
export class ConnectWatchdog {
  #timer: NodeJS.Timeout | undefined;
  #connectingSince = 0;

  /**
   * @param limitMs how long a channel may stay CONNECTING.
   * @param onStuck called once per CONNECTING spell that lasts `limitMs`, with how long it lasted.
   * @param now the clock (injectable for tests), in ms.
   */
  constructor(
    readonly limitMs: number,
    readonly onStuck: (connectingMs: number) => void,
    readonly now: () => number = () => performance.now(),
  ) {}

  /** The channel's connectivity changed: start timing on CONNECTING, stop on anything else. */
  onState(connecting: boolean): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    if (!connecting) return;
    this.#connectingSince = this.now();
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      this.onStuck(this.now() - this.#connectingSince);
    }, this.limitMs);
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
