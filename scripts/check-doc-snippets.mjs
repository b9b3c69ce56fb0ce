// Type-checks every ```ts block of README.md and docs/*.md against the source (src/), so a code
// sample cannot drift from the API. Part of `npm test`'s first step. Run: node scripts/check-doc-snippets.mjs [root]
//
// Each block becomes a module of its own under <root>/.tmp/doc-snippets/, named after its file and
// line, and all of them are checked by one tsc run in strict mode (the repo's strictness, minus
// verbatimModuleSyntax, which applications rarely use). `resilient-grpc` and its subpaths resolve
// to src/. A marker on the line just above a block changes how it is checked:
//   <!-- snippet: prelude=NAME[,NAME] -->  prepends docs/snippets/NAME.ts (declarations that a
//                                           partial block assumes: `pool`, a generated client ...)
//   <!-- snippet: skip (REASON) -->         not compiled; the reason is required (a dependency the
//                                           repo does not install, pseudo-code)
// docs/snippets/gen/ is copied beside the blocks, so `./gen/...` imports of generated code resolve
// (to the type-test fixtures of test/types/fixtures).
import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const repo = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const root = resolve(process.argv[2] ?? process.cwd());
const out = join(root, '.tmp', 'doc-snippets');
const snippetsDir = join(root, 'docs', 'snippets');

const MARKER = /^<!--\s*snippet:\s*(.*?)\s*-->$/;

/** The markdown files whose blocks are checked: README.md and docs/*.md (not docs/api, docs/research). */
function markdownFiles() {
  const files = [];
  if (existsSync(join(root, 'README.md'))) files.push('README.md');
  const docs = join(root, 'docs');
  if (existsSync(docs)) {
    for (const name of readdirSync(docs).sort()) if (name.endsWith('.md')) files.push(`docs/${name}`);
  }
  return files;
}

/** The ```ts blocks of one file, with their first line's number and the marker above them. */
function blocksOf(file) {
  const lines = readFileSync(join(root, file), 'utf8').split('\n');
  const blocks = [];
  for (let i = 0; i < lines.length; i++) {
    if (!/^```(ts|typescript)\s*$/.test(lines[i])) continue;
    // The marker is the line above the block, or the one above a blank line above it.
    const above = lines[i - 1]?.trim() === '' ? lines[i - 2] : lines[i - 1];
    const marker = MARKER.exec(above?.trim() ?? '')?.[1];
    const start = i + 1;
    let end = start;
    while (end < lines.length && !/^```\s*$/.test(lines[end])) end++;
    if (end === lines.length) throw new Error(`${file}:${i + 1}: a \`\`\`ts block that never closes`);
    blocks.push({ file, line: i + 1, code: lines.slice(start, end).join('\n'), marker });
    i = end;
  }
  return blocks;
}

const problems = [];
const checked = [];
let skipped = 0;
rmSync(out, { recursive: true, force: true });
mkdirSync(out, { recursive: true });
if (existsSync(join(snippetsDir, 'gen'))) cpSync(join(snippetsDir, 'gen'), join(out, 'gen'), { recursive: true });

for (const file of markdownFiles()) {
  for (const block of blocksOf(file)) {
    let prelude = '';
    if (block.marker !== undefined) {
      const skip = /^skip\s*\((.+)\)$/.exec(block.marker);
      const preludes = /^prelude=([\w,-]+)$/.exec(block.marker);
      if (skip) {
        skipped++;
        continue;
      }
      if (!preludes) {
        problems.push(`${file}:${block.line}: unknown snippet marker "${block.marker}" (prelude=NAME or skip (reason))`);
        continue;
      }
      for (const name of preludes[1].split(',')) {
        const path = join(snippetsDir, `${name}.ts`);
        if (!existsSync(path)) {
          problems.push(`${file}:${block.line}: no prelude docs/snippets/${name}.ts`);
          continue;
        }
        prelude += `${readFileSync(path, 'utf8')}\n`;
      }
    }
    const name = `${block.file.replace(/[/.]/g, '_')}_L${block.line}.ts`;
    // The prelude is kept on the lines above the block's own, so a line number in an error
    // can be mapped back to the markdown file.
    const preludeLines = prelude === '' ? 0 : prelude.split('\n').length - 1;
    writeFileSync(join(out, name), `${prelude}${block.code}\nexport {};\n`);
    checked.push({ ...block, name, preludeLines });
  }
}

const src = (path) => join(root, 'src', path);
const tsconfig = {
  compilerOptions: {
    target: 'ES2022',
    lib: ['ES2022', 'ESNext.Disposable'],
    module: 'ESNext',
    moduleResolution: 'Bundler',
    types: ['node'],
    typeRoots: [join(repo, 'node_modules', '@types')],
    strict: true,
    exactOptionalPropertyTypes: true,
    noUncheckedIndexedAccess: true,
    esModuleInterop: true,
    skipLibCheck: true,
    noEmit: true,
    paths: {
      'resilient-grpc': [src('index.ts')],
      'resilient-grpc/prometheus': [src('adapters/prometheus.ts')],
      'resilient-grpc/opentelemetry': [src('adapters/opentelemetry.ts')],
    },
  },
  include: ['*.ts'],
};
writeFileSync(join(out, 'tsconfig.json'), JSON.stringify(tsconfig, null, 2));

if (checked.length > 0) {
  const tsc = join(repo, 'node_modules', 'typescript', 'bin', 'tsc');
  const run = spawnSync(process.execPath, [tsc, '-p', 'tsconfig.json', '--pretty', 'false'], { cwd: out, encoding: 'utf8' });
  const byName = new Map(checked.map((block) => [block.name, block]));
  for (const line of `${run.stdout}${run.stderr}`.split('\n')) {
    if (line.trim() === '') continue;
    const match = /^(.*?)\((\d+),(\d+)\): (.*)$/.exec(line);
    const block = match ? byName.get(relative(out, resolve(out, match[1]))) : undefined;
    if (match && block) {
      const at = Number(match[2]) - block.preludeLines;
      problems.push(
        at >= 1
          ? `${block.file}:${block.line + at}: ${match[4]}`
          : `${block.file}:${block.line}: (in its prelude, line ${match[2]}) ${match[4]}`,
      );
    } else if (!line.startsWith(' ')) {
      problems.push(line);
    } else {
      problems[problems.length - 1] += `\n${line}`;
    }
  }
  if (run.status !== 0 && problems.length === 0) problems.push(`tsc failed (exit ${run.status}):\n${run.stdout}${run.stderr}`);
}

if (problems.length > 0) {
  process.stderr.write(`Code blocks that do not type-check (${problems.length}):\n${problems.join('\n')}\n`);
  process.exit(1);
}
process.stdout.write(`${checked.length} code blocks type-check (${skipped} marked skip)\n`);
