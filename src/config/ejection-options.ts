import { checkMs, checkNumber, checkOptionsObject, keysOf, switchableExpected, withDefined, type Resolved } from './check-helpers.js';

// The `endpointEjection` option: its type, its defaults, its check and the defaults applied. The
// ejection itself is in channel/endpoint-ejection.ts and channel/endpoint-lb.ts.

/**
 * Endpoint ejection for targets that can resolve to several endpoints (`dns:` names and bare
 * host names, `ipv4:`/`ipv6:` lists of two or more): the pool gives such a channel its own
 * load-balancing policy, which sends each attempt to the less loaded of two random endpoints
 * (gRFC A48 least-request: fewest attempts outstanding), takes an endpoint out of rotation at once
 * after `consecutiveFailures` failures in a row or while its attempts fail at `failurePercentage`
 * (gRFC A50, counted by the breaker's rule: a NOT_FOUND is a success, an aborted call is not
 * counted), lets it back through a single probe attempt when its time is up, and sends a retry to
 * another endpoint than the one its last attempt failed on when it can. A `loadBalancingConfig`
 * of the user's own (in the channel's `grpc.service_config`) is kept as the policy that spreads
 * the calls, under ejection (with `pick_first`, ejection cannot act: it sticks to one endpoint).
 * Not used for single-address targets.
 */
export interface EndpointEjectionOptions {
  /** How often failure rates are judged, in ms. Default: 1000. */
  intervalMs?: number | undefined;
  /** An endpoint whose attempts failed at this rate or more in an interval is ejected, in percent (0, 100]. Default: 50. */
  failurePercentage?: number | undefined;
  /** Attempts an endpoint needs in an interval to be judged; at least two endpoints must have them. Integer >= 1. Default: 5. */
  requestVolume?: number | undefined;
  /** How long a first ejection lasts, in ms; each further one lasts one more time this (A50). Default: 3000. */
  baseEjectionTimeMs?: number | undefined;
  /** The longest an ejection lasts, in ms. Default: 30000. */
  maxEjectionTimeMs?: number | undefined;
  /** At most this share of the endpoints is ejected at once, in percent; one ejection is always allowed. Default: 50. */
  maxEjectionPercent?: number | undefined;
  /**
   * An endpoint whose attempts failed this many times in a row is ejected at once (Envoy's
   * `consecutive_5xx`, Finagle's failure accrual). Integer >= 1, or 0 to turn this rule off.
   * Default: 5.
   */
  consecutiveFailures?: number | undefined;
}

/** Defaults of `endpointEjection`: from two endpoints up, a sick one is out after 5 failures in a row, or within about 2 s at a lower failure rate. */
export const EJECTION_DEFAULTS = {
  intervalMs: 1_000,
  failurePercentage: 50,
  requestVolume: 5,
  baseEjectionTimeMs: 3_000,
  maxEjectionTimeMs: 30_000,
  maxEjectionPercent: 50,
  consecutiveFailures: 5,
} as const satisfies Resolved<EndpointEjectionOptions>;

/** The known keys of `endpointEjection`. */
export const EJECTION_KEYS = keysOf(EJECTION_DEFAULTS);

/** Validates an `endpointEjection` option; returns it unchanged (an object or `false`). */
export function checkEjectionOptions(option: string, value: unknown): EndpointEjectionOptions | false | undefined {
  if (value === undefined || value === false) return value;
  checkOptionsObject(option, value, EJECTION_KEYS, switchableExpected(EJECTION_KEYS));
  const e = value as EndpointEjectionOptions;
  for (const key of ['intervalMs', 'baseEjectionTimeMs', 'maxEjectionTimeMs'] as const)
    if (e[key] !== undefined) checkMs(`${option}.${key}`, e[key]);
  checkNumber(`${option}.failurePercentage`, e.failurePercentage, (v) => v > 0 && v <= 100, 'a percentage > 0 and <= 100');
  checkNumber(`${option}.maxEjectionPercent`, e.maxEjectionPercent, (v) => v >= 0 && v <= 100, 'a percentage from 0 to 100');
  checkNumber(
    `${option}.requestVolume`,
    e.requestVolume,
    (v) => Number.isInteger(v) && v >= 1 && v <= 1_000_000,
    'an integer >= 1 (attempts an endpoint needs in an interval to be judged)',
  );
  checkNumber(
    `${option}.consecutiveFailures`,
    e.consecutiveFailures,
    (v) => Number.isInteger(v) && v >= 0 && v <= 1_000_000,
    'an integer >= 1 (failures in a row that eject an endpoint), or 0 to turn the rule off',
  );
  return e;
}

/** Endpoint ejection options with the defaults applied, or `false`. */
export function resolveEjection(options: EndpointEjectionOptions | false): Resolved<EndpointEjectionOptions> | false {
  return options === false
    ? false
    : (withDefined<EndpointEjectionOptions>(EJECTION_DEFAULTS, options) as Resolved<EndpointEjectionOptions>);
}
