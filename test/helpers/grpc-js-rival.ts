import * as grpc from '@grpc/grpc-js';

// The grpc-js configuration the pool is measured against when endpoints fail (bench/partial-outage.ts,
// test/chaos/cpu-starved.test.ts): outlier_detection over round_robin, and a retry policy, both in
// the channel's service config. One copy, so that the benchmark and the test compare against the
// same rival.

/** outlier_detection (gRFC A50) over round_robin: interval 1 s, failure percentage 50 % over >= 5 calls, at most 50 % ejected. */
export const OUTLIER_DETECTION = {
  outlier_detection: {
    interval: { seconds: 1, nanos: 0 },
    base_ejection_time: { seconds: 5, nanos: 0 },
    max_ejection_time: { seconds: 30, nanos: 0 },
    max_ejection_percent: 50,
    failure_percentage_ejection: { threshold: 50, enforcement_percentage: 100, minimum_hosts: 2, request_volume: 5 },
    child_policy: [{ round_robin: {} }],
  },
};

/** The service config: OUTLIER_DETECTION and a retry policy (3 attempts on UNAVAILABLE) for the test service. */
export const OD_RETRY_SERVICE_CONFIG = {
  loadBalancingConfig: [OUTLIER_DETECTION],
  methodConfig: [
    {
      name: [{ service: 'resilient.test.v1.TestService' }],
      retryPolicy: {
        maxAttempts: 3,
        initialBackoff: '0.01s',
        maxBackoff: '0.1s',
        backoffMultiplier: 2,
        retryableStatusCodes: ['UNAVAILABLE'],
      },
    },
  ],
};

// An invalid LB config falls back to pick_first silently in grpc-js: throw here instead.
grpc.experimental.parseLoadBalancingConfig(OUTLIER_DETECTION);
