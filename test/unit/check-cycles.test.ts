// scripts/check-cycles.mjs (npm run check:cycles, run by CI before the tests) on tiny fixture
// directories: the exit status and the cycles it prints, for value and type-only imports,
// re-exports, multi-line and dynamic imports, index files, and imports that must not count.
import { describe, expect, it } from 'vitest';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runScript, scriptOnFixtures } from '../helpers/script-on-fixtures.js';

/** Writes the files into a fresh directory and runs the checker on it. */
const check = scriptOnFixtures('check-cycles');

/** The printed cycles, one a line. */
const cyclesIn = (stderr: string): string[] =>
  stderr
    .split('\n')
    .slice(1)
    .map((line) => line.trim())
    .filter(Boolean);

describe('check-cycles', () => {
  it('passes a directory whose imports form no cycle, packages and node: modules ignored', async () => {
    const result = await check({
      'a.ts': "import * as grpc from '@grpc/grpc-js';\nimport { b } from './b.js';\nimport { c } from './c.js';\nexport const a = b + c;\n",
      'b.ts': "import { setTimeout } from 'node:timers/promises';\nimport { c } from './c.js';\nexport const b = c;\n",
      'c.ts': 'export const c = 1;\n',
    });
    expect(result).toMatchObject({ code: 0, stderr: '' });
    expect(result.stdout).toContain('no import cycle among the 3 .ts files');
  });

  it('fails on a two-file cycle of value imports and prints it as a path', async () => {
    const result = await check({
      'bound-method.ts': "import { CallRun } from './call-run.js';\nexport const breakerOf = () => CallRun;\n",
      'call-run.ts': "import { breakerOf } from './bound-method.js';\nexport class CallRun { b = breakerOf; }\n",
      'leaf.ts': "import { breakerOf } from './bound-method.js';\nexport const leaf = breakerOf;\n",
    });
    expect(result.code).toBe(1);
    expect(cyclesIn(result.stderr)).toEqual(['bound-method.ts -> call-run.ts -> bound-method.ts']);
  });

  it('counts import type and export type, and marks those edges', async () => {
    const result = await check({
      'a.ts': "import type { B } from './b.js';\nexport interface A { b: B }\n",
      'b.ts': "export type { A as B } from './a';\n",
    });
    expect(result.code).toBe(1);
    expect(cyclesIn(result.stderr)).toEqual(['a.ts -> b.ts (type) -> a.ts (type)']);
  });

  it('follows multi-line imports, export * from, side-effect and dynamic imports, and index files', async () => {
    const result = await check({
      'a.ts': "import {\n  one,\n  type Two,\n} from './b.js';\nexport const a = one;\nexport type A = Two;\n",
      'b.ts': "export * from './d';\nexport const one = 1;\nexport type Two = 2;\n",
      'd/index.ts': "import '../e.js';\nexport const d = 4;\n",
      'e.ts': "export const load = () => import('./a.js');\n",
      'f.ts': "export { one } from './b.js';\nexport const g = async () => (await import('./f.js')).one;\n",
    });
    expect(result.code).toBe(1);
    expect(cyclesIn(result.stderr)).toEqual(['a.ts -> b.ts -> d/index.ts -> e.ts -> a.ts', 'f.ts -> f.ts']);
  });

  it('does not count imports inside comments, and keeps its place past regex literals and strings', async () => {
    const result = await check({
      'a.ts': [
        "// import { b } from './b.js';",
        "/* import './b.js';",
        "   export * from './b.js'; */",
        '/**',
        " * @example import { a } from './b.js'",
        ' */',
        "const slashes = /'\\/\\//g;",
        'const quote = "it\'s // not a comment";',
        // biome-ignore lint/suspicious/noTemplateCurlyInString: the fixture is source text with a template literal in it
        "const template = `${quote} /* ${slashes.source} */ '`;",
        "import { c } from './c.js';",
        'export const a = [slashes, quote, template, c];',
        '',
      ].join('\n'),
      'b.ts': "import { a } from './a.js';\nexport const b = a;\n",
      'c.ts': "import { b } from './b.js';\nexport const c = b;\n",
    });
    // a -> c -> b -> a is real (a's import of c follows the regex and the strings); no a -> b.
    expect(result.code).toBe(1);
    expect(cyclesIn(result.stderr)).toEqual(['a.ts -> c.ts -> b.ts -> a.ts']);
  });

  it('prints every cycle of a tangle, each once', async () => {
    const result = await check({
      'a.ts': "import { b } from './b.js';\nimport { c } from './c.js';\nexport const a = b + c;\n",
      'b.ts': "import { a } from './a.js';\nexport const b = a;\n",
      'c.ts': "import { a } from './a.js';\nexport const c = a;\n",
    });
    expect(result.code).toBe(1);
    expect(cyclesIn(result.stderr)).toEqual(['a.ts -> b.ts -> a.ts', 'a.ts -> c.ts -> a.ts']);
    expect(result.stderr).toMatch(/^2 import cycle\(s\)/);
  });

  it('exits 2 with a usage line when the directory does not exist', async () => {
    const missing = await runScript('check-cycles', join(tmpdir(), 'check-cycles-no-such-dir'));
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain('usage: node scripts/check-cycles.mjs');
  });
});
