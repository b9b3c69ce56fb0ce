import { expect, test } from 'vitest';
import * as api from '../../src/index.js';

// The package's runtime surface. A new, renamed or removed export changes this snapshot, so it
// shows up in review; types (export type) are erased and do not appear here.
test('runtime exports of the package entry point', () => {
  expect(Object.keys(api).sort()).toMatchInlineSnapshot(`
    [
      "ChannelPool",
      "CircuitOpenError",
      "PoolClosedError",
      "StatusError",
      "statusName",
    ]
  `);
});

test('each runtime export is what its name says', () => {
  expect(typeof api.ChannelPool).toBe('function');
  expect(new api.StatusError({ code: 14, details: 'd', method: '/s/M', target: 't:1' })).toBeInstanceOf(Error);
  expect(new api.PoolClosedError().code).toBe(1);
  expect(api.statusName(4)).toBe('DEADLINE_EXCEEDED');
});
