import { expect, test } from 'vitest';
import * as api from '../../src/index.js';

// The package's runtime surface. A new, renamed or removed export changes this snapshot, so it
// shows up in review; types (export type) are erased and do not appear here.
test('runtime exports of the package entry point', () => {
  expect(Object.keys(api).sort()).toMatchInlineSnapshot(`
    [
      "ChannelPool",
      "CircuitOpenError",
      "KEEPALIVE_PRESETS",
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
  expect(Object.isFrozen(api.KEEPALIVE_PRESETS.tunedServer)).toBe(true);
});

test('keepalive presets never ping idle connections (gRFC A8 servers answer that with GOAWAY)', () => {
  for (const preset of Object.values(api.KEEPALIVE_PRESETS)) {
    expect(preset['grpc.keepalive_permit_without_calls']).toBeUndefined();
    expect(preset['grpc.keepalive_time_ms']).toBeGreaterThanOrEqual(10_000);
  }
  // The preset for any server stays above the A8 default minimum of 5 minutes.
  expect(api.KEEPALIVE_PRESETS.anyServer['grpc.keepalive_time_ms']).toBeGreaterThan(300_000);
});
