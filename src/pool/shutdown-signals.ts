import type { CloseResult } from './pool-stats.js';
import { checkCloseOptions, checkSignals, type CloseOptions } from '../config/close-options.js';

/** Handle returned by `pool.closeOnSignals()`. */
export interface SignalHandlers extends Disposable {
  /** Removes the handlers (idempotent). They are also removed when the pool closes. */
  remove(): void;
}

/** What the handlers need of a pool. */
export interface ClosablePool {
  close(options: CloseOptions): Promise<CloseResult>;
  onClosed(hook: () => void): () => void;
}

/**
 * The closes that a signal started and that have not finished, per signal, shared by every pool
 * in the process (and by both builds of the package, hence the global symbol): the signal is
 * raised again only once the last of them is done, so one idle pool cannot end the process
 * while another is still draining.
 */
const DRAINS_KEY = Symbol.for('resilient-grpc.signal-drains');
function drainsOf(signal: NodeJS.Signals): Set<Promise<unknown>> {
  const registry = ((globalThis as Record<symbol, unknown>)[DRAINS_KEY] ??= new Map<string, Set<Promise<unknown>>>()) as Map<
    string,
    Set<Promise<unknown>>
  >;
  let drains = registry.get(signal);
  if (drains === undefined) {
    drains = new Set();
    registry.set(signal, drains);
  }
  return drains;
}

/**
 * Installs one-shot handlers that close the pool on the first of `signals`. Once every pool
 * that the signal closed has closed, the signal is raised again if nobody else listens for it,
 * so the default action (exit with 128 + signal number) still happens: installing a listener
 * for SIGTERM or SIGINT otherwise suppresses it. Signal listeners do not keep the event loop
 * alive. `signals` and `options` are validated here, before any handler is installed.
 */
export function installSignalHandlers(pool: ClosablePool, signals: unknown, options: CloseOptions | undefined): SignalHandlers {
  const names = checkSignals(signals);
  const closeOptions = checkCloseOptions(options);
  let removed = false;
  const onSignal = (signal: NodeJS.Signals): void => {
    remove();
    const drains = drainsOf(signal);
    // close() cannot reject here: its options were validated above.
    const drain = pool.close(closeOptions).then(
      () => undefined,
      () => undefined,
    );
    drains.add(drain);
    void drain.then(() => {
      drains.delete(drain);
      // One macrotask later, so the continuations of the calls that just drained run first.
      setImmediate(() => {
        if (drains.size === 0 && process.listenerCount(signal) === 0) process.kill(process.pid, signal);
      });
    });
  };
  const remove = (): void => {
    if (removed) return;
    removed = true;
    for (const signal of names) process.removeListener(signal, onSignal);
    forgetHook();
  };
  for (const signal of names) process.on(signal, onSignal);
  const forgetHook = pool.onClosed(remove);
  return { remove, [Symbol.dispose]: remove };
}
