// `npm test`'s first step: the type check, the build and the check of the docs' code blocks
// (scripts/check-doc-snippets.mjs), side by side (about 5 s sooner than one after the other on
// two cores). Fails, with the failing step's output, if any fails. Run: node scripts/typecheck-and-build.mjs
import { spawn } from 'node:child_process';
import { join } from 'node:path';

const bin = (name) => join(process.cwd(), 'node_modules', '.bin', name);
const steps = [
  ['typecheck', bin('tsc'), ['-p', 'tsconfig.json', '--noEmit']],
  ['build', bin('tsup'), []],
  ['doc code blocks', process.execPath, [join(process.cwd(), 'scripts', 'check-doc-snippets.mjs')]],
];

function run([name, command, args]) {
  return new Promise((resolve) => {
    const started = performance.now();
    const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (chunk) => (output += chunk));
    child.stderr.on('data', (chunk) => (output += chunk));
    child.on('error', (error) => resolve({ name, code: 1, output: String(error), ms: performance.now() - started }));
    child.on('close', (code) => resolve({ name, code: code ?? 1, output, ms: performance.now() - started }));
  });
}

const results = await Promise.all(steps.map(run));
let failed = false;
for (const { name, code, output, ms } of results) {
  if (code !== 0) {
    failed = true;
    process.stderr.write(`\n[${name}] failed (exit ${code}):\n${output}\n`);
  } else {
    process.stdout.write(`[${name}] ok in ${(ms / 1000).toFixed(1)} s\n`);
  }
}
process.exit(failed ? 1 : 0);
