/** A subscription to one of the pool's events; `dispose()` (or `using`) ends it. */
export interface Subscription extends Disposable {
  /** Removes the listener (idempotent). `[Symbol.dispose]` does the same, for `using`. */
  dispose(): void;
}

/** Subscribes a listener to a typed event, e.g. `pool.onRetry((event) => log(event))`. */
export type Event<T> = (listener: (event: T) => void) => Subscription;

/**
 * One typed event. Listeners run synchronously, in subscription order; one that throws never
 * breaks the call that emitted the event, nor the other listeners: its error is reported once as
 * a process warning.
 */
export class EventSource<T> {
  readonly #listeners = new Set<(event: T) => void>();
  #warned = false;

  constructor(readonly name: string) {}

  readonly subscribe: Event<T> = (listener) => {
    if (typeof listener !== 'function') throw new TypeError(`resilient-grpc: ${this.name} takes a listener function`);
    // A wrapper per subscription, so one function subscribed twice is two subscriptions.
    const entry = (event: T): void => listener(event);
    this.#listeners.add(entry);
    const dispose = (): void => {
      this.#listeners.delete(entry);
    };
    return { dispose, [Symbol.dispose]: dispose };
  };

  get hasListeners(): boolean {
    return this.#listeners.size > 0;
  }

  emit(event: T): void {
    for (const listener of this.#listeners) {
      try {
        listener(event);
      } catch (error) {
        if (!this.#warned) {
          this.#warned = true;
          process.emitWarning(`a ${this.name} listener threw (reported once per pool): ${String(error)}`, {
            code: 'RESILIENT_GRPC_LISTENER_ERROR',
            type: 'ResilientGrpcWarning',
          });
        }
      }
    }
  }

  clear(): void {
    this.#listeners.clear();
  }
}
