// A bounded load driver for tests: `concurrency` workers call `call()` back to back until
// `durationMs` has passed or `maxCalls` calls have started, whichever comes first, and tally
// the outcomes by gRPC code (0 = success).
export interface LoadOptions {
  durationMs: number;
  maxCalls: number;
  concurrency?: number;
  /** Stops early once this returns true (checked before each call). */
  until?: () => boolean;
}

export interface LoadResult {
  calls: number;
  ok: number;
  /** Outcomes by numeric gRPC code (rejections without a numeric `code` count as -1). */
  codes: Record<number, number>;
  /** Rejections by error name (StatusError, CircuitOpenError, ...). */
  names: Record<string, number>;
  /** Per call, ms from start to settle. */
  latenciesMs: number[];
  successPercent: number;
}

export async function drive(call: (index: number) => Promise<unknown>, options: LoadOptions): Promise<LoadResult> {
  const { durationMs, maxCalls, concurrency = 4 } = options;
  const stopAt = Date.now() + durationMs;
  const result: LoadResult = { calls: 0, ok: 0, codes: {}, names: {}, latenciesMs: [], successPercent: 0 };
  const worker = async (): Promise<void> => {
    while (result.calls < maxCalls && Date.now() < stopAt && options.until?.() !== true) {
      const index = result.calls++;
      const started = performance.now();
      try {
        await call(index);
        result.ok++;
        result.codes[0] = (result.codes[0] ?? 0) + 1;
      } catch (error) {
        const { code, name } = error as { code?: unknown; name?: unknown };
        const key = typeof code === 'number' ? code : -1;
        result.codes[key] = (result.codes[key] ?? 0) + 1;
        const label = typeof name === 'string' ? name : 'unknown';
        result.names[label] = (result.names[label] ?? 0) + 1;
      }
      result.latenciesMs.push(performance.now() - started);
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  result.successPercent = result.calls === 0 ? 0 : (result.ok * 100) / result.calls;
  return result;
}

/** "97.5 % of 200 (codes {0:195,14:5})": for assertion messages. */
export function describeLoad(result: LoadResult): string {
  return `${result.successPercent.toFixed(1)} % of ${result.calls} succeeded (codes ${JSON.stringify(result.codes)}, errors ${JSON.stringify(result.names)})`;
}
