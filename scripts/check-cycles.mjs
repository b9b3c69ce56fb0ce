#!/usr/bin/env node
// Fails on an import cycle among the TypeScript files of a directory (default: src/).
// Usage: node scripts/check-cycles.mjs [dir]   (npm run check:cycles)
//
// Every relative import counts, `import type` included: a type-only cycle still means two files
// that cannot be read, changed or tested one without the other. Counted forms: `import ... from`,
// `import type ... from`, `export ... from`, `import './x.js'`, and `import('./x.js')` (also in
// type positions). Specifiers resolve as TypeScript's Bundler resolution does for this repo:
// './x.js' and './x' are x.ts, './d' or './d/index.js' is d/index.ts. Imports of packages and
// of files outside the directory are ignored. No dependencies: a small scanner blanks comments
// first, so an import written in a comment is not counted.
// Exit status: 0 without a cycle, 1 with one (each printed as a path), 2 on a usage error.
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { pathToFileURL } from 'node:url';

/** `source` with every comment replaced by spaces (newlines kept); strings and regexes kept. */
export function blankComments(source) {
  let out = '';
  let i = 0;
  // Whether a `/` here starts a regex literal rather than a division, judged by the last token.
  let regexAllowed = true;
  // Open `${` of template literals, so that `}` knows when it resumes a template.
  const braces = [];
  const n = source.length;
  const readQuoted = (quote) => {
    let j = i + 1;
    while (j < n && source[j] !== quote && source[j] !== '\n') j += source[j] === '\\' ? 2 : 1;
    out += source.slice(i, j + 1);
    i = j + 1;
  };
  const readTemplate = () => {
    // From just after a backtick or a template's `}`: up to the closing backtick or a `${`.
    let j = i;
    while (j < n && source[j] !== '`' && !(source[j] === '$' && source[j + 1] === '{')) j += source[j] === '\\' ? 2 : 1;
    if (source[j] === '`') {
      out += source.slice(i, j + 1);
      i = j + 1;
    } else {
      out += source.slice(i, j + 2);
      i = j + 2;
      braces.push('template');
    }
  };
  while (i < n) {
    const c = source[i];
    const next = source[i + 1];
    if (c === '/' && next === '/') {
      const end = source.indexOf('\n', i);
      const stop = end === -1 ? n : end;
      out += ' '.repeat(stop - i);
      i = stop;
    } else if (c === '/' && next === '*') {
      const end = source.indexOf('*/', i + 2);
      const stop = end === -1 ? n : end + 2;
      out += source.slice(i, stop).replace(/[^\n]/g, ' ');
      i = stop;
    } else if (c === "'" || c === '"') {
      readQuoted(c);
      regexAllowed = false;
    } else if (c === '`') {
      out += c;
      i++;
      readTemplate();
      regexAllowed = false;
    } else if (c === '/' && regexAllowed) {
      let j = i + 1;
      let inClass = false;
      while (j < n && source[j] !== '\n' && (inClass || source[j] !== '/')) {
        if (source[j] === '\\') j++;
        else if (source[j] === '[') inClass = true;
        else if (source[j] === ']') inClass = false;
        j++;
      }
      out += source.slice(i, j + 1);
      i = j + 1;
      regexAllowed = false;
    } else if (c === '{') {
      braces.push('block');
      out += c;
      i++;
      regexAllowed = true;
    } else if (c === '}') {
      out += c;
      i++;
      if (braces.pop() === 'template') readTemplate();
      regexAllowed = true;
    } else if (/[A-Za-z0-9_$]/.test(c)) {
      let j = i;
      while (j < n && /[A-Za-z0-9_$]/.test(source[j])) j++;
      const word = source.slice(i, j);
      out += word;
      i = j;
      regexAllowed = /^(return|typeof|instanceof|in|of|new|delete|void|throw|case|do|else|yield|await)$/.test(word);
    } else {
      out += c;
      i++;
      if (!/\s/.test(c)) regexAllowed = !/[)\]]/.test(c);
    }
  }
  return out;
}

const IMPORT_PATTERNS = [
  // import x from, import { x } from, import type { X } from, export { x } from, export * from,
  // export type { X } from: a statement that starts with import/export and reaches `from '...'`.
  /(?:^|[;}\n])\s*(import|export)\b(\s+type\b)?[^;'"`]*?\bfrom\s*(['"])([^'"\n]+)\3/g,
  // import './x.js'
  /(?:^|[;}\n])\s*(import)()\s*(['"])([^'"\n]+)\3/g,
  // import('./x.js'), await import(...), typeof import('./x.js')
  /\b(import)()\s*\(\s*(['"])([^'"\n]+)\3\s*\)/g,
];

/** The specifiers a TypeScript source imports, each with whether it is type-only. */
export function importsOf(source) {
  const text = blankComments(source);
  const found = [];
  for (const pattern of IMPORT_PATTERNS) {
    for (const match of text.matchAll(pattern)) {
      found.push({ specifier: match[4], typeOnly: Boolean(match[2]), index: match.index });
    }
  }
  return found.sort((a, b) => a.index - b.index).map(({ specifier, typeOnly }) => ({ specifier, typeOnly }));
}

/** Every `.ts` file under `dir` (not `.d.ts`), as absolute paths, sorted. */
function tsFiles(dir) {
  const files = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) files.push(...tsFiles(path));
    else if (entry.isFile() && entry.name.endsWith('.ts') && !entry.name.endsWith('.d.ts')) files.push(path);
  }
  return files.sort();
}

/** The file a relative specifier of `from` names, if it is one of `known`. */
function resolveSpecifier(from, specifier, known) {
  if (!specifier.startsWith('./') && !specifier.startsWith('../')) return undefined;
  const base = resolve(dirname(from), specifier);
  const stem = base.replace(/\.(js|ts|mjs|mts)$/, '');
  for (const candidate of [`${stem}.ts`, `${stem}.mts`, join(base, 'index.ts'), base]) {
    if (known.has(candidate)) return candidate;
  }
  return undefined;
}

/**
 * The import graph of the `.ts` files under `dir`: file (relative, `/`-separated) to the files it
 * imports, each edge marked type-only when every import along it is `import type` / `export type`.
 */
export function importGraph(dir) {
  const root = resolve(dir);
  const files = tsFiles(root);
  const known = new Set(files);
  const name = (path) => relative(root, path).split(sep).join('/');
  const graph = new Map();
  for (const file of files) {
    const edges = new Map();
    for (const { specifier, typeOnly } of importsOf(readFileSync(file, 'utf8'))) {
      const target = resolveSpecifier(file, specifier, known);
      if (target === undefined) continue;
      const key = name(target);
      edges.set(key, (edges.get(key) ?? true) && typeOnly);
    }
    graph.set(name(file), edges);
  }
  return graph;
}

/**
 * Cycles of the graph, one per back edge of a depth-first search in sorted order, each as a path
 * that starts and ends at the same file (rotated to start at its smallest name), deduplicated.
 * Every file on some cycle appears on at least one of them.
 */
export function findCycles(graph) {
  const state = new Map(); // undefined: unvisited, 1: on the stack, 2: done
  const stack = [];
  const seen = new Set();
  const cycles = [];
  const visit = (file) => {
    state.set(file, 1);
    stack.push(file);
    for (const next of [...(graph.get(file)?.keys() ?? [])].sort()) {
      if (state.get(next) === 1) {
        const loop = stack.slice(stack.indexOf(next));
        const start = loop.indexOf([...loop].sort()[0]);
        const rotated = [...loop.slice(start), ...loop.slice(0, start)];
        const key = rotated.join('\0');
        if (!seen.has(key)) {
          seen.add(key);
          cycles.push([...rotated, rotated[0]]);
        }
      } else if (state.get(next) === undefined && graph.has(next)) {
        visit(next);
      }
    }
    stack.pop();
    state.set(file, 2);
  };
  for (const file of [...graph.keys()].sort()) if (state.get(file) === undefined) visit(file);
  return cycles;
}

/** `a.ts -> b.ts (type) -> a.ts`: "(type)" marks an edge made only of type imports. */
export function formatCycle(graph, cycle) {
  let text = cycle[0];
  for (let k = 1; k < cycle.length; k++) {
    const typeOnly = graph.get(cycle[k - 1])?.get(cycle[k]);
    text += ` -> ${cycle[k]}${typeOnly ? ' (type)' : ''}`;
  }
  return text;
}

function main(argv) {
  const dir = argv[0] ?? 'src';
  if (argv.length > 1 || !existsSync(dir) || !statSync(dir).isDirectory()) {
    console.error('usage: node scripts/check-cycles.mjs [dir]   (dir: a directory of .ts files, default src)');
    return 2;
  }
  const graph = importGraph(dir);
  const cycles = findCycles(graph);
  if (cycles.length === 0) {
    console.log(`no import cycle among the ${graph.size} .ts files of ${dir}/`);
    return 0;
  }
  console.error(`${cycles.length} import cycle(s) among the .ts files of ${dir}/ ("(type)": import type only, which counts too):`);
  for (const cycle of cycles) console.error(`  ${formatCycle(graph, cycle)}`);
  return 1;
}

if (process.argv[1] && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) {
  process.exitCode = main(process.argv.slice(2));
}
