import { expect, test } from 'vitest';
import * as opentelemetry from '../../src/adapters/opentelemetry.js';
import * as prometheus from '../../src/adapters/prometheus.js';

// The runtime surface of the adapters' subpaths (resilient-grpc/prometheus and
// resilient-grpc/opentelemetry), snapshotted like the main entry's in exports.test.ts.
test('runtime exports of resilient-grpc/prometheus', () => {
  expect(Object.keys(prometheus).sort()).toMatchInlineSnapshot(`
    [
      "goCodeName",
      "prometheusMetrics",
    ]
  `);
});

test('runtime exports of resilient-grpc/opentelemetry', () => {
  expect(Object.keys(opentelemetry).sort()).toMatchInlineSnapshot(`
    [
      "GRPC_LATENCY_BUCKETS",
      "GRPC_RETRY_BUCKETS",
      "RPC_DURATION_BUCKETS",
      "canonicalTarget",
      "openTelemetry",
      "serverAddress",
    ]
  `);
});
