// Shared bookkeeping of the chaos scenarios: time every call from the moment it is made until
// it settles, classify how it settled, and catch unhandled rejections. What these helpers
// check is what a user of the pool would notice: a promise that never settles, an error
// without a numeric gRPC code, a call that outlives its deadline, a rejection nobody handled.
import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach } from 'vitest';
import { CircuitOpenError, PoolClosedError, StatusError, statusName, type ChannelPool } from '../../src/index.js';
import type { FaultProxy } from '../helpers/fault-proxy.js';
import type { TestServer } from '../helpers/test-server.js';

export { sleep };

/** Margin allowed past a call's deadline before it counts as late: the machine is shared and noisy. */
export const DEADLINE_MARGIN_MS = 1_000;

/** What a scenario sets up; {@link useScene} tears it down after each test. */
export interface Scene {
  server: TestServer | undefined;
  proxy: FaultProxy | undefined;
  pool: ChannelPool | undefined;
  /** Run first, after each test (e.g. an unhandled-rejection collector's dispose). */
  cleanups: Array<() => void>;
}

/**
 * Call once at the top of a test file. After each test: runs the cleanups, closes the pool at
 * once (graceMs 0), closes the proxy, kills the server, and empties the scene for the next test.
 */
export function useScene(): Scene {
  const scene: Scene = { server: undefined, proxy: undefined, pool: undefined, cleanups: [] };
  afterEach(async () => {
    for (const cleanup of scene.cleanups.splice(0)) cleanup();
    await scene.pool?.close({ graceMs: 0 });
    await scene.proxy?.close();
    await scene.server?.kill();
    scene.pool = scene.proxy = scene.server = undefined;
  });
  return scene;
}

/** How one call settled, timed from the moment the method was called. */
export interface Outcome<T = unknown> {
  ok: boolean;
  value?: T;
  error?: unknown;
  /** Milliseconds from the call to its settlement. */
  ms: number;
  /** The deadline the call was given, in ms. */
  deadlineMs: number;
  /** performance.now() when the call was made and when it settled. */
  startedAt: number;
  settledAt: number;
}

/** Makes one call and records how and when it settled. Never rejects. */
export async function timed<T>(deadlineMs: number, call: () => Promise<T>): Promise<Outcome<T>> {
  const startedAt = performance.now();
  try {
    const value = await call();
    const settledAt = performance.now();
    return { ok: true, value, ms: settledAt - startedAt, deadlineMs, startedAt, settledAt };
  } catch (error) {
    const settledAt = performance.now();
    return { ok: false, error, ms: settledAt - startedAt, deadlineMs, startedAt, settledAt };
  }
}

/** One of the package's typed errors, carrying a numeric gRPC code. */
export function isTypedError(error: unknown): boolean {
  return (
    (error instanceof StatusError || error instanceof CircuitOpenError || error instanceof PoolClosedError) &&
    typeof (error as { code: unknown }).code === 'number'
  );
}

/** 'ok', 'StatusError DEADLINE_EXCEEDED', 'CircuitOpenError', 'PoolClosedError', or 'UNTYPED ...'. */
export function classify(outcome: Outcome): string {
  if (outcome.ok) return 'ok';
  const error = outcome.error;
  if (error instanceof CircuitOpenError) return 'CircuitOpenError';
  if (error instanceof PoolClosedError) return 'PoolClosedError';
  if (error instanceof StatusError) return `StatusError ${statusName(error.code)}`;
  const name = error instanceof Error ? error.name : typeof error;
  return `UNTYPED ${name}: ${String((error as { message?: unknown })?.message ?? error)}`;
}

/** Counts outcomes by {@link classify}, most frequent first. */
export function histogram(outcomes: readonly Outcome[]): Record<string, number> {
  const counts = new Map<string, number>();
  for (const outcome of outcomes) {
    const key = classify(outcome);
    counts.set(key, (counts.get(key) ?? 0) + 1);
  }
  return Object.fromEntries([...counts].sort((a, b) => b[1] - a[1]));
}

/** Failures that are not one of the typed errors (should be none). */
export function untyped(outcomes: readonly Outcome[]): Outcome[] {
  return outcomes.filter((o) => !o.ok && !isTypedError(o.error));
}

/** Calls that settled later than their deadline plus `marginMs`. */
export function late(outcomes: readonly Outcome[], marginMs = DEADLINE_MARGIN_MS): Outcome[] {
  return outcomes.filter((o) => o.ms > o.deadlineMs + marginMs);
}

/** Largest settle time, in ms (0 for none). */
export function maxMs(outcomes: readonly Outcome[]): number {
  let max = 0;
  for (const o of outcomes) if (o.ms > max) max = o.ms;
  return max;
}

/** The p-th percentile (0-100) of the settle times, in ms. */
export function percentileMs(outcomes: readonly Outcome[], p: number): number {
  if (outcomes.length === 0) return 0;
  const sorted = outcomes.map((o) => o.ms).sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

/**
 * Collects every unhandled rejection of the process while the scenario runs; `dispose()`
 * removes the listener. (vitest has its own listener too: ours only records.)
 */
export function collectUnhandledRejections(): { reasons: unknown[]; dispose(): void } {
  const reasons: unknown[] = [];
  const listener = (reason: unknown): void => {
    reasons.push(reason);
  };
  process.on('unhandledRejection', listener);
  return { reasons, dispose: () => process.off('unhandledRejection', listener) };
}

/**
 * Runs `workers` loops that each make a call, then pause `pauseMs`, until `untilMs` (a
 * performance.now() instant) or `maxCalls` calls in all, whichever comes first. Bounded in
 * count and in time: a call never outlives its own deadline, so the loops end shortly after.
 */
export async function runWorkers(
  options: { workers: number; maxCalls: number; untilMs: number; pauseMs: number },
  call: (index: number) => Promise<unknown>,
): Promise<number> {
  let started = 0;
  const worker = async (): Promise<void> => {
    while (started < options.maxCalls && performance.now() < options.untilMs) {
      await call(started++);
      if (options.pauseMs > 0) await sleep(options.pauseMs);
    }
  };
  await Promise.all(Array.from({ length: options.workers }, worker));
  return started;
}

/** Polls `predicate` every `everyMs` until it holds or `timeoutMs` passed; returns whether it held. */
export async function waitUntil(predicate: () => boolean, timeoutMs: number, everyMs = 10): Promise<boolean> {
  const until = performance.now() + timeoutMs;
  while (!predicate()) {
    if (performance.now() >= until) return false;
    await sleep(everyMs);
  }
  return true;
}
