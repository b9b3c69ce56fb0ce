import { optionError } from '../core/option-error.js';
import { checkOptionsObject } from './check-helpers.js';

// The `healthCheck` client option (gRFC A17 client-side health checking): its type, its check,
// and which setting a channel ends up with, from the option and the service config's
// `healthCheckConfig`. The health checking itself is in channel/health-check.ts.

/**
 * Client-side health checking (gRFC A17) for a client's channel: each endpoint's own
 * `grpc.health.v1.Health/Watch` stream says whether it takes new calls. An endpoint that reports
 * NOT_SERVING or SERVICE_UNKNOWN gets no new picks until it reports SERVING again; a server
 * without the health service (the Watch call ends UNIMPLEMENTED) counts as serving.
 */
export interface HealthCheckOptions {
  /**
   * The service name sent in each Watch request. `''` asks for the health of the whole server,
   * as gRFC A17 does by default. Default: `''`.
   */
  serviceName?: string | undefined;
}

/** The health check settings of one channel, once resolved: on, with a service name. */
export interface HealthCheckSettings {
  serviceName: string;
}

const HEALTH_CHECK_KEYS = ['serviceName'] as const satisfies ReadonlyArray<keyof HealthCheckOptions>;

/** Validates a `healthCheck` option: `undefined`, `false`, or `{ serviceName?: string }`. */
export function checkHealthCheckOptions(option: string, value: unknown): HealthCheckOptions | false | undefined {
  if (value === undefined || value === false) return value;
  const expected = 'false or an object { serviceName: string } ("" for the whole server)';
  checkOptionsObject(option, value, HEALTH_CHECK_KEYS, expected);
  const { serviceName } = value as HealthCheckOptions;
  if (serviceName !== undefined && typeof serviceName !== 'string') {
    throw optionError('type', `${option}.serviceName`, 'a string (the service name to watch, "" for the whole server)', serviceName);
  }
  return value as HealthCheckOptions;
}

/** Where a service config's `healthCheckConfig` is named in errors. */
const SERVICE_CONFIG_OPTION = 'channelOptions["grpc.service_config"].healthCheckConfig';

/**
 * The `healthCheckConfig` of a `grpc.service_config` channel option (gRFC A17: `{ serviceName }`),
 * or undefined when it has none. grpc-js itself ignores the field; the package reads it.
 * @throws TypeError naming the option when it is there but not `{ serviceName?: string }`.
 */
export function serviceConfigHealthCheck(serviceConfig: unknown): HealthCheckSettings | undefined {
  if (typeof serviceConfig !== 'string') return undefined;
  let parsed: unknown;
  try {
    parsed = JSON.parse(serviceConfig);
  } catch {
    // grpc-js refuses a malformed service config itself, with its own error, when it makes the channel.
    return undefined;
  }
  if (typeof parsed !== 'object' || parsed === null || !('healthCheckConfig' in parsed)) return undefined;
  const config = (parsed as { healthCheckConfig: unknown }).healthCheckConfig;
  if (typeof config !== 'object' || config === null || Array.isArray(config)) {
    throw optionError('type', SERVICE_CONFIG_OPTION, 'an object { serviceName: string }', config);
  }
  const { serviceName } = config as { serviceName?: unknown };
  if (serviceName !== undefined && typeof serviceName !== 'string') {
    throw optionError('type', `${SERVICE_CONFIG_OPTION}.serviceName`, 'a string ("" for the whole server)', serviceName);
  }
  return { serviceName: serviceName ?? '' };
}

/**
 * A channel's health checking: the client's `healthCheck` when it sets one (`false` turns it off
 * even when the service config asks for it, as A17's channel argument does), else the service
 * config's `healthCheckConfig`, else off.
 */
export function resolveHealthCheck(option: HealthCheckOptions | false | undefined, serviceConfig: unknown): HealthCheckSettings | false {
  const fromConfig = serviceConfigHealthCheck(serviceConfig);
  if (option === false) return false;
  if (option !== undefined) return { serviceName: option.serviceName ?? '' };
  return fromConfig ?? false;
}
