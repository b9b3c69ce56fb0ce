// Vitest globalSetup of the process project: the process tests load the built package (dist/),
// so a dist/ older than src/ would test yesterday's code and pass or fail for the wrong reason.
// `npm test` builds first; running these files by hand after editing src/ needs a build too.
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const BUILT = [
  'dist/index.js',
  'dist/index.cjs',
  'dist/prometheus.js',
  'dist/prometheus.cjs',
  'dist/opentelemetry.js',
  'dist/opentelemetry.cjs',
];

/** The newest file under `dir` whose name ends in `.ts`, with its mtime in ms. */
function newestSource(dir: string): { path: string; mtimeMs: number } | undefined {
  let newest: { path: string; mtimeMs: number } | undefined;
  for (const entry of readdirSync(dir, { withFileTypes: true, recursive: true })) {
    if (!entry.isFile() || !entry.name.endsWith('.ts')) continue;
    const path = join(entry.parentPath, entry.name);
    const { mtimeMs } = statSync(path);
    if (!newest || mtimeMs > newest.mtimeMs) newest = { path, mtimeMs };
  }
  return newest;
}

/** Why dist/ under `root` cannot be tested (missing, or older than a file of src/), or undefined. */
export function distProblem(root: string = ROOT): string | undefined {
  const source = newestSource(join(root, 'src'));
  for (const built of BUILT) {
    let builtMs: number;
    try {
      builtMs = statSync(join(root, built)).mtimeMs;
    } catch {
      return `${built} does not exist: run \`npm run build\` before the process tests`;
    }
    if (source && source.mtimeMs > builtMs) {
      const relative = source.path.slice(join(root, '/').length);
      return `${built} is older than ${relative}: run \`npm run build\` before the process tests (they load dist/)`;
    }
  }
  return undefined;
}

export function setup(): void {
  const problem = distProblem();
  if (problem) throw new Error(problem);
}
