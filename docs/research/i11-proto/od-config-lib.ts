import type {} from "node:os";
export function odConfig(over: Record<string, unknown> = {}) {
  return {
    outlier_detection: {
      interval: { seconds: 1, nanos: 0 },
      base_ejection_time: { seconds: 3, nanos: 0 },
      max_ejection_time: { seconds: 30, nanos: 0 },
      max_ejection_percent: 50,
      failure_percentage_ejection: { threshold: 50, enforcement_percentage: 100, minimum_hosts: 2, request_volume: 5 },
      child_policy: [{ round_robin: {} }],
      ...over,
    },
  };
}
