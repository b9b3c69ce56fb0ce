// scripts/check-layers.mjs (part of npm run check:cycles, run by CI before the tests) on tiny
// fixture trees: an import down the layers passes, one up the layers, an adapter reaching past
// the public surface, and a file outside every layer fail with the path named.
import { describe, expect, it } from 'vitest';
import { scriptOnFixtures } from '../helpers/script-on-fixtures.js';

/** Writes the files into a fresh directory and runs the checker on it. */
const check = scriptOnFixtures('check-layers');

describe('check-layers', () => {
  it('passes imports that go down the layers or stay in one folder', async () => {
    const result = await check({
      'index.ts': "export { pool } from './pool/pool.js';\n",
      'pool/pool.ts': "import { call } from '../call/call.js';\nimport { other } from './other.js';\nexport const pool = call + other;\n",
      'pool/other.ts': 'export const other = 1;\n',
      'call/call.ts': "import type { E } from '../core/errors.js';\nexport const call = 1 as unknown as E;\n",
      'core/errors.ts': 'export type E = number;\n',
      'adapters/metrics.ts': "import type { E } from '../index.js';\nexport type M = E;\n",
    });
    expect(result.code).toBe(0);
    expect(result.stdout).toContain('no layer violation');
  });

  it('fails an import up the layers, type-only too, naming both files', async () => {
    const result = await check({
      'channel/channel.ts': "import type { Call } from '../call/call.js';\nexport type C = Call;\n",
      'call/call.ts': 'export type Call = number;\n',
    });
    expect(result.code).toBe(1);
    expect(result.stderr).toContain('channel/channel.ts -> call/call.ts (channel is below call)');
  });

  it('fails an adapter that imports past the public surface, and a file outside every layer', async () => {
    const result = await check({
      'adapters/metrics.ts': "import type { E } from '../core/errors.js';\nexport type M = E;\n",
      'core/errors.ts': 'export type E = number;\n',
      'misc/thing.ts': "import type { E } from '../core/errors.js';\nexport type T = E;\n",
    });
    expect(result.code).toBe(1);
    expect(result.stderr).toContain('adapters/metrics.ts -> core/errors.ts (an adapter imports only the public surface, src/index.ts)');
    expect(result.stderr).toContain('misc/thing.ts is in no layer');
  });
});
