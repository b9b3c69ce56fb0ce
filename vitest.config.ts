import { defineConfig } from 'vitest/config';

// The suite in tiers, as vitest projects. `npm test` (the README's command, what CI runs first,
// and what test:matrix runs on Node 22 and 24) runs every project but `chaos`: unit,
// integration, process and type tests. `npm run test:chaos` runs the long chaos and scale
// scenarios of test/chaos and test/scale, once, on CI's Node 20. A single file runs in the
// project that holds it: `npx vitest run test/chaos/flapping.test.ts`.
const SLOW = ['test/chaos/**/*.test.ts', 'test/scale/**/*.test.ts'];

const shared = {
  testTimeout: 30_000,
  hookTimeout: 30_000,
  pool: 'forks',
} as const;

export default defineConfig({
  test: {
    // Integration tests open real sockets; two workers match the two cores of CI's machine.
    // The limit is global: every project shares these two workers.
    maxWorkers: 2,
    projects: [
      {
        test: {
          ...shared,
          name: 'unit',
          include: ['test/unit/**/*.test.ts'],
          typecheck: { enabled: true, include: ['test/types/**/*.test-d.ts'], tsconfig: './tsconfig.json' },
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
