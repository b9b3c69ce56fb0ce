import { defineConfig } from 'tsup';

export default defineConfig({
  // The adapters are entries of their own: the main entry never imports prom-client or
  // @opentelemetry/api (optional peer dependencies), and the adapters import only types from it.
  entry: { index: 'src/index.ts', prometheus: 'src/adapters/prometheus.ts', opentelemetry: 'src/adapters/opentelemetry.ts' },
  format: ['esm', 'cjs'],
  dts: true,
  target: 'node20',
  platform: 'node',
  sourcemap: true,
  clean: true,
  // p-retry is ESM-only. tsup's CJS output of `import pRetry from 'p-retry'` becomes
  // `__toESM(require('p-retry'), 1).default`, which under Node's require(esm) is the module
  // namespace rather than the function, so the CJS build would break on the first retry.
  // Bundling p-retry (and its one dependency) into both outputs removes the question.
  noExternal: ['p-retry', 'is-network-error'],
});
