import { afterEach, beforeEach, describe, expect, test, vi } from 'vitest';
import type { CloseOptions } from '../../src/config/close-options.js';
import type { CloseResult } from '../../src/pool/pool-stats.js';
import { installSignalHandlers, type ClosablePool } from '../../src/pool/shutdown-signals.js';

// Signals nobody else in a vitest worker listens to; emitted with process.emit, so no real
// signal is ever sent, and process.kill is a spy.
const SIGNAL = 'SIGUSR2';
const OTHER = 'SIGWINCH';
const SIGNALS = [SIGNAL, OTHER] as const;

const RESULT: CloseResult = { drained: 0, cancelled: 0, durationMs: 0 };

/** Pools whose close() is still under way: finished after each test, so the shared drains registry is empty again. */
const unfinished = new Set<{ finish(): void }>();

/** A pool whose close() completes when the test says so, running its close hooks first as PoolEngine does. */
function fakePool(outcome: 'resolve' | 'reject' = 'resolve') {
  const hooks = new Set<() => void>();
  let complete: (() => void) | undefined;
  let closing: Promise<CloseResult> | undefined;
  const pool = {
    hooks,
    close: vi.fn((_options: CloseOptions) => {
      closing ??= new Promise<CloseResult>((resolve, reject) => {
        complete = () => (outcome === 'resolve' ? resolve(RESULT) : reject(new Error('close failed')));
      });
      unfinished.add(pool);
      return closing;
    }),
    onClosed: vi.fn((hook: () => void) => {
      hooks.add(hook);
      return () => hooks.delete(hook);
    }),
    /** Finishes closing: the close hooks run, then close() settles. */
    finish(): void {
      for (const hook of [...hooks]) hook();
      hooks.clear();
      if (complete === undefined) throw new Error('close() was not called');
      unfinished.delete(pool);
      complete();
    },
  } satisfies ClosablePool & Record<string, unknown>;
  return pool;
}

let kill: ReturnType<typeof vi.spyOn>;

function emit(signal: NodeJS.Signals): void {
  process.emit(signal as never, signal as never);
}

/** Lets the close promise's continuations and the setImmediate before the re-raise run. */
async function afterClose(): Promise<void> {
  await vi.advanceTimersByTimeAsync(0);
  await vi.advanceTimersByTimeAsync(0);
}

beforeEach(() => {
  vi.useFakeTimers();
  for (const signal of SIGNALS) expect(process.listenerCount(signal)).toBe(0);
  kill = vi.spyOn(process, 'kill').mockImplementation(() => true);
});

afterEach(async () => {
  for (const pool of [...unfinished]) pool.finish();
  await afterClose();
  for (const signal of SIGNALS) process.removeAllListeners(signal);
  vi.restoreAllMocks();
  vi.useRealTimers();
});

describe('one pool', () => {
  test('the signal closes the pool with the validated options, then is raised again once it has closed', async () => {
    const pool = fakePool();
    installSignalHandlers(pool, [SIGNAL], { graceMs: 250 });
    expect(process.listenerCount(SIGNAL)).toBe(1);
    emit(SIGNAL);
    expect(pool.close).toHaveBeenCalledExactlyOnceWith({ graceMs: 250 });
    // One-shot: the handler is gone at once.
    expect(process.listenerCount(SIGNAL)).toBe(0);
    await afterClose();
    expect(kill).not.toHaveBeenCalled();
    pool.finish();
    await afterClose();
    expect(kill).toHaveBeenCalledExactlyOnceWith(process.pid, SIGNAL);
  });

  test('the default grace period is applied', () => {
    const pool = fakePool();
    installSignalHandlers(pool, [SIGNAL], undefined);
    emit(SIGNAL);
    expect(pool.close).toHaveBeenCalledWith({ graceMs: 10_000 });
  });

  test('the re-raise waits one macrotask after close() settles', async () => {
    const pool = fakePool();
    installSignalHandlers(pool, [SIGNAL], { graceMs: 0 });
    emit(SIGNAL);
    pool.finish();
    for (let i = 0; i < 20; i++) await Promise.resolve();
    expect(kill).not.toHaveBeenCalled();
    await afterClose();
    expect(kill).toHaveBeenCalledTimes(1);
  });

  test('the first of several signals closes the pool and removes the handlers of all of them; the re-raise is of that signal', async () => {
    const pool = fakePool();
    installSignalHandlers(pool, [SIGNAL, OTHER], { graceMs: 0 });
    expect(process.listenerCount(OTHER)).toBe(1);
    emit(OTHER);
    expect(process.listenerCount(SIGNAL)).toBe(0);
    expect(process.listenerCount(OTHER)).toBe(0);
    emit(SIGNAL);
    expect(pool.close).toHaveBeenCalledTimes(1);
    pool.finish();
    await afterClose();
    expect(kill).toHaveBeenCalledExactlyOnceWith(process.pid, OTHER);
  });

  test('a close() that rejects still lets the signal be raised again', async () => {
    const pool = fakePool('reject');
    installSignalHandlers(pool, [SIGNAL], { graceMs: 0 });
    emit(SIGNAL);
    pool.finish();
    await afterClose();
    expect(kill).toHaveBeenCalledExactlyOnceWith(process.pid, SIGNAL);
  });

  test('another listener for the signal: it is not raised again (its owner decides)', async () => {
    const theirs = vi.fn();
    process.on(SIGNAL, theirs);
    const pool = fakePool();
    installSignalHandlers(pool, [SIGNAL], { graceMs: 0 });
    emit(SIGNAL);
    expect(theirs).toHaveBeenCalledTimes(1);
    pool.finish();
    await afterClose();
    expect(kill).not.toHaveBeenCalled();
  });
});

describe('two pools on one signal', () => {
  test('the signal is raised again only once both have closed', async () => {
    const first = fakePool();
    const second = fakePool();
    installSignalHandlers(first, [SIGNAL], { graceMs: 0 });
    installSignalHandlers(second, [SIGNAL], { graceMs: 5_000 });
    expect(process.listenerCount(SIGNAL)).toBe(2);
    emit(SIGNAL);
    expect(first.close).toHaveBeenCalledWith({ graceMs: 0 });
    expect(second.close).toHaveBeenCalledWith({ graceMs: 5_000 });
    first.finish();
    await afterClose();
    expect(kill).not.toHaveBeenCalled();
    second.finish();
    await afterClose();
    expect(kill).toHaveBeenCalledExactlyOnceWith(process.pid, SIGNAL);
  });

  test('whichever finishes last raises it, once', async () => {
    const first = fakePool();
    const second = fakePool();
    installSignalHandlers(first, [SIGNAL], { graceMs: 0 });
    installSignalHandlers(second, [SIGNAL], { graceMs: 0 });
    emit(SIGNAL);
    second.finish();
    await afterClose();
    expect(kill).not.toHaveBeenCalled();
    first.finish();
    await afterClose();
    expect(kill).toHaveBeenCalledTimes(1);
  });

  test('a drain on another signal does not hold this one back', async () => {
    const first = fakePool();
    const second = fakePool();
    installSignalHandlers(first, [SIGNAL], { graceMs: 0 });
    installSignalHandlers(second, [OTHER], { graceMs: 0 });
    emit(SIGNAL);
    emit(OTHER);
    first.finish();
    await afterClose();
    expect(kill).toHaveBeenCalledExactlyOnceWith(process.pid, SIGNAL);
    second.finish();
    await afterClose();
    expect(kill).toHaveBeenLastCalledWith(process.pid, OTHER);
  });
});

describe('removing the handlers', () => {
  test('remove() takes every handler and the close hook away; idempotent', () => {
    const pool = fakePool();
    const handlers = installSignalHandlers(pool, [SIGNAL, OTHER], { graceMs: 0 });
    expect(pool.hooks.size).toBe(1);
    handlers.remove();
    handlers.remove();
    expect(process.listenerCount(SIGNAL)).toBe(0);
    expect(process.listenerCount(OTHER)).toBe(0);
    expect(pool.hooks.size).toBe(0);
    emit(SIGNAL);
    expect(pool.close).not.toHaveBeenCalled();
  });

  test('Symbol.dispose removes them too (using)', () => {
    const pool = fakePool();
    {
      using _handlers = installSignalHandlers(pool, [SIGNAL], { graceMs: 0 });
      expect(process.listenerCount(SIGNAL)).toBe(1);
    }
    expect(process.listenerCount(SIGNAL)).toBe(0);
  });

  test('closing the pool by other means removes them (the close hook)', async () => {
    const pool = fakePool();
    installSignalHandlers(pool, [SIGNAL, OTHER], { graceMs: 0 });
    void pool.close({ graceMs: 0 });
    pool.finish();
    expect(process.listenerCount(SIGNAL)).toBe(0);
    expect(process.listenerCount(OTHER)).toBe(0);
    await afterClose();
    expect(kill).not.toHaveBeenCalled();
  });

  test("the handlers of one pool are removed without touching another pool's", () => {
    const first = fakePool();
    const second = fakePool();
    const handlers = installSignalHandlers(first, [SIGNAL], { graceMs: 0 });
    installSignalHandlers(second, [SIGNAL], { graceMs: 0 });
    handlers.remove();
    expect(process.listenerCount(SIGNAL)).toBe(1);
    emit(SIGNAL);
    expect(first.close).not.toHaveBeenCalled();
    expect(second.close).toHaveBeenCalledTimes(1);
  });
});

describe('validation, before anything is installed', () => {
  test.each([
    ['no array', SIGNAL, TypeError],
    ['an empty array', [], TypeError],
    ['an unknown name', ['SIGNOPE'], TypeError],
    ['a number', [15], TypeError],
    ['SIGKILL', ['SIGKILL'], RangeError],
    ['SIGSTOP', [SIGNAL, 'SIGSTOP'], RangeError],
  ])('bad signals (%s) throw', (_what, signals, kind) => {
    const pool = fakePool();
    expect(() => installSignalHandlers(pool, signals, undefined)).toThrow(kind);
    expect(process.listenerCount(SIGNAL)).toBe(0);
    expect(pool.onClosed).not.toHaveBeenCalled();
  });

  test.each([
    ['a negative graceMs', { graceMs: -1 }, RangeError],
    ['a graceMs over 2147483647', { graceMs: 2 ** 31 }, RangeError],
    ['NaN', { graceMs: Number.NaN }, TypeError],
    ['a string', { graceMs: '10s' }, TypeError],
    ['an unknown key', { grace: 100 }, TypeError],
    ['not an object', 100, TypeError],
  ])('bad close options (%s) throw', (_what, options, kind) => {
    const pool = fakePool();
    expect(() => installSignalHandlers(pool, [SIGNAL], options as CloseOptions)).toThrow(kind);
    expect(process.listenerCount(SIGNAL)).toBe(0);
    expect(pool.onClosed).not.toHaveBeenCalled();
  });
});
