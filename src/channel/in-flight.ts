// The calls in flight on one channel, and their drain, written once: close() first wakes the
// calls waiting to retry (they settle at once with their last error), then gives the others
// `graceMs` to settle, then cancels what is left and waits for grpc-js to answer each cancel().
// (grpc-js has no drain signal and no force close: channel.close() lets running calls continue.)
//
// The calls are kept in an array, each call holding its own index (a swap with the last one
// removes it), not in a Set: a Set that takes and drops an entry per call keeps every call alive
// past the scavenges until the next full GC. V8 rehashes a Set's table every few dozen adds and
// deletes, and the table it leaves behind keeps its entries and a link to the new table; once
// one such table is in the old generation (as the live one is after any full GC), the chain of
// tables after it, and every call in them, with everything a call references, survives each
// scavenge and is promoted (bench/gc-survival.ts measures what survives).
//
// While no call is in flight, the channel keeps its last call (its response let go: see
// `InFlight.keptIdle`), so that a full GC in an idle moment does not throw away the pool's
// optimized code. V8's optimized code depends weakly on the hidden classes (maps) it was
// specialised for; a class instance's map is reachable only from its instances and, weakly, from
// the map it was made from. A full GC while not one call, attempt or circuit ticket is alive
// frees those maps and deoptimizes every function that used them, and the next calls run slower
// until the compiler has made them again on its background threads. V8's memory reducer runs
// exactly such GCs when a process goes idle. Measured (`--trace-opt`, a full GC before each round
// of 2,500 calls at c=32): 126-170 functions re-optimized per round without the kept call, 56-92
// with it (raw grpc-js, for its own objects: 80-122). bench/unary-overhead.ts (a full GC before
// each round) read 1.107x / 1.130x / 1.100x raw grpc-js at c = 1 / 32 / 256 in the full run
// before, 1.055x / 1.029x / 0.909x in the full run after.

/** Something in flight on a channel that closing it may have to cancel. */
export interface InFlight {
  /** Ends the call at once; its promise settles with a CANCELLED status soon after. */
  cancelForClose(graceMs: number): void;
  /** The pool began closing: a call waiting to retry gives up now, and says so (true). */
  poolClosing(): boolean;
  /** Its index in the in-flight list while it is tracked; written only by `InFlightCalls`. */
  inFlightSlot?: number | undefined;
  /**
   * It settled last and is kept while the channel is idle (see above): it lets go of what would
   * keep its outcome alive (the promise it settled, its errors, the grpc-js call that received
   * its response).
   */
  keptIdle?(): void;
}

/** The in-flight set of one channel, with the counts `stats()` reports. */
export class InFlightCalls {
  readonly #calls: InFlight[] = [];
  #onIdle: (() => void) | undefined;
  /** The last call, kept while none is in flight (see above). */
  // biome-ignore lint/correctness/noUnusedPrivateClassMembers: written, never read: holding it is its purpose.
  #kept: InFlight | undefined;
  started = 0;
  succeeded = 0;
  failed = 0;

  get size(): number {
    return this.#calls.length;
  }

  /** A call started: counted, and tracked so that closing drains or cancels it. Once per call. */
  track(call: InFlight): void {
    this.started++;
    this.#kept = undefined;
    call.inFlightSlot = this.#calls.length;
    this.#calls.push(call);
  }

  /** A tracked call settled, with a response (`ok`) or not. Once per call; later calls are ignored. */
  settle(call: InFlight, ok: boolean): void {
    const calls = this.#calls;
    const slot = call.inFlightSlot;
    if (slot === undefined || calls[slot] !== call) return;
    call.inFlightSlot = undefined;
    const last = calls.pop()!;
    if (last !== call) {
      calls[slot] = last;
      last.inFlightSlot = slot;
    }
    if (ok) this.succeeded++;
    else this.failed++;
    if (calls.length === 0) {
      this.#kept = call;
      call.keptIdle?.();
      this.#onIdle?.();
    }
  }

  /**
   * Drains the calls: a call waiting to retry gives up at once; the others get `graceMs` to
   * settle, then are cancelled. Resolves once none is left.
   */
  async drain(graceMs: number): Promise<{ drained: number; cancelled: number }> {
    const atStart = this.#calls.length;
    // A call woken from its backoff settles at once, ended by close(): it counts as cancelled.
    const woken = new Set<InFlight>();
    for (const call of [...this.#calls]) if (call.poolClosing()) woken.add(call);
    if (this.#calls.length > 0 && graceMs > 0) await this.#idle(graceMs);
    let cancelled = woken.size;
    if (this.#calls.length > 0) {
      for (const call of [...this.#calls]) {
        if (woken.has(call)) continue;
        cancelled++;
        call.cancelForClose(graceMs);
      }
      // grpc-js answers every cancel() with a CANCELLED status, so this settles promptly.
      await this.#idle(undefined);
    }
    this.#kept = undefined;
    return { drained: atStart - cancelled, cancelled };
  }

  /** Resolves when no call is in flight, or after `timeoutMs` when given. */
  #idle(timeoutMs: number | undefined): Promise<void> {
    if (this.#calls.length === 0) return Promise.resolve();
    return new Promise((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        this.#onIdle = undefined;
        resolve();
      };
      // Not unref()ed: a process that awaits close() should stay up for the grace period.
      const timer = timeoutMs === undefined ? undefined : setTimeout(done, timeoutMs);
      this.#onIdle = done;
    });
  }
}
