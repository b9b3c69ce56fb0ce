import pRetry from 'p-retry';

// The only file that knows p-retry. It counts and loops; the decision whether to retry, and the
// backoff sleep, are the call's own (attempts.ts, retry-decision.ts): p-retry's own defaults (10 retries, 1 s
// doubling delay without jitter, every error retried) are wrong for gRPC.

/**
 * Runs `attempt` until it resolves, `retries` retries are spent, or `shouldRetry` (which also
 * sleeps the backoff) says no; rejects with the last attempt's error.
 */
export function retryLoop<T>(retries: number, attempt: () => Promise<T>, shouldRetry: (error: unknown) => Promise<boolean>): Promise<T> {
  return pRetry(attempt, {
    retries,
    minTimeout: 0,
    factor: 1,
    randomize: false,
    shouldRetry: ({ error }) => shouldRetry(error),
  });
}
