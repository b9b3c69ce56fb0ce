/**
 * A call's backoff sleep, which the call can cut short. Its timer is cleared the moment the
 * call is aborted, its parent cancelled or the pool closed; until then it keeps the process
 * alive, as a grpc-js call in flight does: an unref()ed backoff would let a process whose only
 * work is this call exit in mid-call.
 */
export class BackoffSleep {
  #wake: (() => void) | undefined;

  /** Whether a sleep is under way. */
  get isSleeping(): boolean {
    return this.#wake !== undefined;
  }

  /** Resolves after `ms`, or as soon as `wake()` is called. */
  sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const wake = (): void => {
        clearTimeout(timer);
        this.#wake = undefined;
        resolve();
      };
      const timer = setTimeout(wake, ms);
      this.#wake = wake;
    });
  }

  /** Ends the current sleep now (nothing happens when none is under way). */
  wake(): void {
    this.#wake?.();
  }
}
