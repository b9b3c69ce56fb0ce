import { defineConfig } from 'tsup';

export default defineConfig({
  // The adapters are entries of their own: the main entry never imports prom-client or
  // @opentelemetry/api (optional peer dependencies), and the adapters import only types from it.
  entry: { index: 'src/index.ts', prometheus: 'src/adapters/prometheus.ts', opentelemetry: 'src/adapters/opentelemetry.ts' },
  format: ['esm', 'cjs'],
  dts: true,
  target: 'node20',
  platform: 'node',
  // Maps without sourcesContent: stack traces under --enable-source-maps still name src/ files
  // and lines, and the tarball does not carry a second copy of every source (about 60% of its
  // unpacked size with it). test/pack/check-package.mjs checks both.
  sourcemap: true,
  esbuildOptions(options) {
    options.sourcesContent = false;
  },
  // esbuild renames a class whose static members refer to it (StatusError's brand) to
  // `_StatusError`; keepNames restores `constructor.name`, which util.inspect and loggers print.
  keepNames: true,
  // keepNames adds a two-line helper; without this, the ESM build would put it in a shared chunk
  // file of its own. Each entry keeps its own copy instead: the file list stays one file per entry.
  splitting: false,
  clean: true,
  // p-retry is ESM-only. tsup's CJS output of `import pRetry from 'p-retry'` becomes
  // `__toESM(require('p-retry'), 1).default`, which under Node's require(esm) is the module
  // namespace rather than the function, so the CJS build would break on the first retry.
  // Bundling p-retry (and its one dependency) into both outputs removes the question.
  noExternal: ['p-retry', 'is-network-error'],
});
