// scripts/check-doc-snippets.mjs (part of `npm test`'s first step) on tiny fixture repositories:
// a block that type-checks passes, one that does not fails with its markdown file and line, a
// prelude is prepended, a block marked skip is not compiled, an unknown marker is an error.
// Each run is one tsc process: generous limits for a busy machine.
import { describe, expect, it } from 'vitest';
import { scriptOnFixtures } from '../helpers/script-on-fixtures.js';

const check = scriptOnFixtures('check-doc-snippets');
const TSC_LIMIT_MS = 120_000;

describe('check-doc-snippets', () => {
  it(
    'passes blocks that type-check, with their prelude, and skips a block marked skip',
    async () => {
      const result = await check({
        'README.md': [
          '# A',
          '',
          '```ts',
          'const n: number = 1;',
          'console.log(n);',
          '```',
          '',
          '<!-- snippet: prelude=counter -->',
          '```ts',
          'counter.increment();',
          '```',
          '',
          '<!-- snippet: skip (needs a package this repository does not install) -->',
          '```ts',
          "import Fastify from 'fastify';",
          '```',
          '',
          '```sh',
          'not typescript',
          '```',
        ].join('\n'),
        'docs/guide.md': '```ts\nexport const x: string = "x";\n```\n',
        'docs/snippets/counter.ts': 'declare const counter: { increment(): void };\n',
      });
      expect(result.stderr).toBe('');
      expect(result.code).toBe(0);
      expect(result.stdout).toContain('3 code blocks type-check (1 marked skip)');
    },
    TSC_LIMIT_MS,
  );

  it(
    'fails a block that does not type-check, naming the file and line, and an unknown marker',
    async () => {
      const result = await check({
        'README.md': [
          '# A', // line 1
          '',
          '<!-- snippet: prelude=counter -->',
          '```ts', // line 4
          'counter.increment();',
          'const request = undefined;',
          'console.log(request.signal);', // line 7: an error in the block's own line
          '```',
          '',
          '<!-- snippet: compile-later -->',
          '```ts', // line 11
          'const y = 1;',
          '```',
        ].join('\n'),
        'docs/guide.md': '\n```ts\nconst s: string = 42;\n```\n',
        'docs/snippets/counter.ts': 'declare const counter: { increment(): void };\n',
      });
      expect(result.code).toBe(1);
      expect(result.stderr).toMatch(/README\.md:7: error TS\d+: .*'request'/);
      expect(result.stderr).toMatch(/docs\/guide\.md:3: error TS2322: Type 'number' is not assignable to type 'string'/);
      expect(result.stderr).toContain('README.md:11: unknown snippet marker "compile-later"');
    },
    TSC_LIMIT_MS,
  );
});
