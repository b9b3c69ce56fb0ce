import { defineConfig } from 'vitest/config';

// The suite in tiers, as vitest projects. `npm test` (the README's command, what CI runs first,
// and what test:matrix runs on Node 22 and 24) runs every project but `chaos`: unit,
// integration, process and type tests. `npm run test:chaos` runs the long chaos and scale
// scenarios of test/chaos and test/scale, once, on CI's Node 20. A single file runs in the
// project that holds it: `npx vitest run test/chaos/flapping.test.ts`.
const SLOW = ['test/chaos/**/*.test.ts', 'test/scale/**/*.test.ts'];

// Limits for a loaded 2-core runner (other jobs on both cores): no test asserts a timing margin
// through them, they only bound how long a test may wait before it is reported. The slowest
// integration test took 22 s with two other `npm test` runs beside it (load average 25), and an
// event the server sees "at once" (a cancellation, a received call) can take over a second to
// arrive there: expect.poll waits up to 10 s by default instead of vitest's 1 s.
const shared = {
  testTimeout: 60_000,
  hookTimeout: 60_000,
  pool: 'forks',
  expect: { poll: { timeout: 10_000 } },
} as const;

export default defineConfig({
  test: {
    // Three workers on CI's two cores: most integration tests wait on timers and sockets, so a
    // third worker fills the gaps (measured: vitest 30 s instead of 40 s). The limit is global:
    // every project shares these workers. The slow tier runs with two (`npm run test:chaos`):
    // its long scenarios measure what they do, and need the cores. Its `*.solo.test.ts` files
    // assert a latency percentile (tens of ms): `test:chaos` runs them after the others, one at a
    // time, so that no other scenario shares the cores with them.
    maxWorkers: 3,
    projects: [
      {
        test: {
          ...shared,
          name: 'unit',
          include: ['test/unit/**/*.test.ts'],
          // The type tests (test/types/*.test-d.ts) are checked by `npm test`'s first step, the
          // project's tsc run, which fails on any expectTypeOf mismatch: vitest's typecheck mode
          // would run tsc over the whole project a second time. Run them as vitest tests with
          // `npx vitest run --typecheck.enabled --project unit`.
          typecheck: { enabled: false, include: ['test/types/**/*.test-d.ts'], tsconfig: './tsconfig.json' },
        },
      },
      { test: { ...shared, name: 'integration', include: ['test/integration/**/*.test.ts'] } },
      {
        test: {
          ...shared,
          name: 'process',
          include: ['test/process/**/*.test.ts'],
          // These tests load dist/: refuse to run them against a build older than src/.
          globalSetup: ['test/process/dist-fresh.ts'],
        },
      },
      { test: { ...shared, name: 'chaos', include: SLOW } },
    ],
  },
});
