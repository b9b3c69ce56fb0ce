#!/usr/bin/env node
// Fails when a file of src/ imports across the layers the wrong way (npm run check:layers, run by
// CI beside the cycle check). The folders of src/ are layers, from the top down:
//
//   index.ts   the public surface: may import every layer
//   adapters/  the observability adapters: import only the public surface (src/index.ts)
//   pool/      the pool: channels per target, clients, close() and the shutdown hooks
//   client/    the client methods, one file per call shape, and what a method is bound to
//   call/      one call: admission, lifecycle, attempts, the retry decision
//   channel/   one channel and its endpoints: breakers, ejection, LB policy, liveness, watchdog
//   events/    the typed event sources and the call events
//   config/    the options: types, defaults, checks, resolution
//   core/      errors, status meaning, service descriptions: what every layer speaks
//
// A file may import a file of its own folder or of a folder further down; never one further up,
// and nothing but index.ts imports adapters/. Every import counts, `import type` included.
// Usage: node scripts/check-layers.mjs [dir]  (default src). Exit 0 clean, 1 on a violation.
import { existsSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import { importGraph } from './check-cycles.mjs';

export const LAYERS = ['index.ts', 'adapters', 'pool', 'client', 'call', 'channel', 'events', 'config', 'core'];

/** The layer of a file (its first path segment), or undefined for a file outside every layer. */
export function layerOf(file) {
  const top = file.includes('/') ? file.slice(0, file.indexOf('/')) : file;
  const index = LAYERS.indexOf(top);
  return index === -1 ? undefined : index;
}

/** Every import that breaks the rule, as `from -> to (why)`. */
export function layerViolations(graph) {
  const found = [];
  for (const [from, edges] of graph) {
    const fromLayer = layerOf(from);
    for (const to of edges.keys()) {
      const toLayer = layerOf(to);
      let why;
      if (fromLayer === undefined) why = `${from} is in no layer (layers: ${LAYERS.join(', ')})`;
      else if (toLayer === undefined) why = `${to} is in no layer`;
      else if (LAYERS[fromLayer] === 'adapters' && to !== 'index.ts') why = 'an adapter imports only the public surface, src/index.ts';
      else if (LAYERS[toLayer] === 'adapters' && LAYERS[fromLayer] !== 'adapters') why = 'nothing imports an adapter';
      else if (to === 'index.ts' && LAYERS[fromLayer] !== 'adapters') why = 'only the adapters import the public surface';
      else if (toLayer < fromLayer && LAYERS[fromLayer] !== 'adapters') why = `${LAYERS[fromLayer]} is below ${LAYERS[toLayer]}`;
      if (why !== undefined) found.push(`${from} -> ${to} (${why})`);
    }
  }
  return found.sort();
}

function main(argv) {
  const dir = argv[0] ?? 'src';
  if (!existsSync(dir)) {
    console.error('usage: node scripts/check-layers.mjs [dir]');
    return 2;
  }
  const violations = layerViolations(importGraph(dir));
  if (violations.length === 0) {
    console.log(`no layer violation in ${dir}/ (${LAYERS.join(' > ')})`);
    return 0;
  }
  console.error(`${violations.length} import(s) across the layers the wrong way:`);
  for (const line of violations) console.error(`  ${line}`);
  return 1;
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) process.exitCode = main(process.argv.slice(2));
