import { constants } from 'node:os';
import { optionError } from './errors.js';
import type { CloseOptions } from './options.js';
import type { PoolCore } from './pool-core.js';

const UNCATCHABLE: ReadonlySet<string> = new Set(['SIGKILL', 'SIGSTOP']);

/** Handle returned by `pool.closeOnSignals()`. */
export interface SignalHandlers extends Disposable {
  /** Removes the handlers (idempotent). They are also removed when the pool closes. */
  remove(): void;
}

/**
 * Installs one-shot handlers that close the pool on the first of `signals`. Once the pool has
 * closed, the signal is raised again if nobody else listens for it, so the default action
 * (exit with 128 + signal number) still happens: installing a listener for SIGTERM or SIGINT
 * otherwise suppresses it. Signal listeners do not keep the event loop alive.
 */
export function installSignalHandlers(
  core: PoolCore,
  signals: readonly NodeJS.Signals[],
  options: CloseOptions | undefined,
): SignalHandlers {
  if (!Array.isArray(signals) || signals.length === 0) {
    throw optionError('type', 'signals', 'a non-empty array of signal names such as ["SIGTERM", "SIGINT"]', signals);
  }
  for (const signal of signals) {
    if (typeof signal !== 'string' || !Object.hasOwn(constants.signals, signal)) {
      throw optionError('type', 'signals', 'signal names this platform knows, such as "SIGTERM" or "SIGINT"', signal);
    }
    if (UNCATCHABLE.has(signal)) {
      throw optionError('range', 'signals', 'signals a process can handle (SIGKILL and SIGSTOP cannot be caught)', signal);
    }
  }
  let removed = false;
  const onSignal = (signal: NodeJS.Signals): void => {
    remove();
    void core.close(options).then(() => {
      // One macrotask later, so the continuations of the calls that just drained run first.
      setImmediate(() => {
        if (process.listenerCount(signal) === 0) process.kill(process.pid, signal);
      });
    });
  };
  const remove = (): void => {
    if (removed) return;
    removed = true;
    for (const signal of signals) process.removeListener(signal, onSignal);
    forgetHook();
  };
  for (const signal of signals) process.on(signal, onSignal);
  const forgetHook = core.onClosed(remove);
  return { remove, [Symbol.dispose]: remove };
}
