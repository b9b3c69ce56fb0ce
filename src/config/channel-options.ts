import { experimental, type ChannelOptions } from '@grpc/grpc-js';
import { optionError } from '../core/option-error.js';

// The channel options (`channelOptions`, passed to grpc-js) and `credentials` of the pool and
// its clients: the pool's defaults, and their checks. Their types are grpc-js's own.

/**
 * The keepalive every channel gets unless the user sets these keys (key by key): one PING every
 * 6 minutes (360000 ms) while calls or streams are open on a connection, 20000 ms to answer it.
 * grpc-js pings only while calls are active (without `grpc.keepalive_permit_without_calls`), and
 * servers that follow gRFC A8 (grpc-go, grpc-java, C-core) allow one ping per 5 minutes by
 * default, so no A8 server answers these with GOAWAY too_many_pings. What it finds: a connection
 * that went silent under a stream (which the stall detector does not watch), within 6 min 20 s
 * of the silence (the next ping, then its 20 s). `'grpc.keepalive_time_ms': -1` turns it off.
 */
export const KEEPALIVE_DEFAULTS = Object.freeze({
  'grpc.keepalive_time_ms': 360_000,
  'grpc.keepalive_timeout_ms': 20_000,
} as const);

/** Channel options the pool sets on every channel unless the user sets them. */
export const POOL_CHANNEL_DEFAULTS: ChannelOptions = {
  // One retry owner: a DNS TXT record must not be able to switch grpc-js retries on underneath
  // ours. A service config passed explicitly in `grpc.service_config` still applies.
  'grpc.service_config_disable_resolution': 1,
  // Liveness under streams: see KEEPALIVE_DEFAULTS.
  ...KEEPALIVE_DEFAULTS,
};

/**
 * grpc-js `Client` constructor options that are not channel options: grpc-js takes them in the
 * same object, but a channel ignores them, so under `channelOptions` they would do nothing.
 */
const CLIENT_ONLY: Readonly<Record<string, string>> = {
  interceptors:
    'left out: interceptors are not channel options (a channel would ignore them); pass them as pool.client(service, target, { interceptors }) or per call',
  interceptor_providers:
    'left out: interceptor providers are not channel options (a channel would ignore them); pass them as pool.client(service, target, { interceptor_providers }) or per call',
  channelOverride: 'left out: the pool makes and owns the channel of each target',
  channelFactoryOverride: 'left out: the pool makes and owns the channel of each target',
  callInvocationTransformer:
    'left out: not carried (the pool makes each call itself); per call options and interceptors cover what it is used for',
};

/**
 * Validates `channelOptions`: grpc channel arguments are finite scalars; a service config is
 * checked; grpc-js client-only options (interceptors, ...) are refused with where they go.
 */
export function checkChannelOptions(option: string, value: unknown): void {
  if (value === undefined) return;
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw optionError('type', option, 'an object of grpc-js channel options', value);
  }
  for (const [key, v] of Object.entries(value)) {
    if (v === undefined) continue;
    if (Object.hasOwn(CLIENT_ONLY, key)) throw optionError('range', `${option}.${key}`, CLIENT_ONLY[key]!, v);
    const t = typeof v;
    if (key.startsWith('grpc.') && t !== 'number' && t !== 'string' && t !== 'boolean') {
      throw optionError('type', `${option}["${key}"]`, 'a number or a string (grpc channel arguments are scalars)', v);
    }
    if (t === 'number' && !Number.isFinite(v)) throw optionError('range', `${option}["${key}"]`, 'a finite number', v);
    if (key === 'grpc.service_config') checkServiceConfig(`${option}["${key}"]`, v);
    // grpc-js reads only the number 0 as "off" (retrying-call.ts): `false` would leave its
    // retries on while the pool took them for off, and both layers would retry.
    if (key === 'grpc.enable_retries' && v !== 0 && v !== 1) {
      throw optionError('range', `${option}["${key}"]`, '0 (grpc-js retries off: the pool owns retries) or 1', v);
    }
  }
}

/**
 * A `grpc.service_config` must be JSON, and its `loadBalancingConfig` must name at least one
 * policy grpc-js knows with a config it accepts: grpc-js would otherwise fall back to pick_first
 * and say so only in a debug log. (Register `@grpc/grpc-js-xds` before `pool.client()` for
 * xds policies.) The rest of the service config is checked by grpc-js when the channel is made.
 */
function checkServiceConfig(option: string, value: unknown): void {
  let config: unknown;
  try {
    config = JSON.parse(String(value));
  } catch (error) {
    throw Object.assign(optionError('type', option, 'a JSON service config', value), { cause: error });
  }
  const lb = (config as { loadBalancingConfig?: unknown } | null)?.loadBalancingConfig;
  if (lb === undefined) return;
  if (!Array.isArray(lb)) throw optionError('type', `${option}.loadBalancingConfig`, 'an array of { policy_name: config } objects', lb);
  if (lb.length === 0) return;
  const reasons: string[] = [];
  for (const entry of lb) {
    try {
      experimental.parseLoadBalancingConfig(entry);
      return;
    } catch (error) {
      reasons.push(error instanceof Error ? error.message : String(error));
    }
  }
  throw optionError(
    'range',
    `${option}.loadBalancingConfig`,
    `a list with at least one policy grpc-js accepts (${reasons.join('; ')})`,
    lb,
  );
}

/** Throws unless `value` is a grpc-js `ChannelCredentials` object. */
export function checkCredentials(value: unknown): void {
  if (value === undefined) return;
  const creds = value as Record<string, unknown> | null;
  // Duck-typed rather than instanceof, which a second copy of grpc-js would defeat. Server
  // credentials share _equals and _isSecure; only channel credentials can connect.
  if (
    typeof creds !== 'object' ||
    creds === null ||
    typeof creds._equals !== 'function' ||
    typeof creds._isSecure !== 'function' ||
    typeof creds._createSecureConnector !== 'function'
  ) {
    throw optionError(
      'type',
      'credentials',
      'grpc-js ChannelCredentials (e.g. grpc.credentials.createInsecure()); ' +
        'server or call credentials are not channel credentials (for call credentials on every call, ' +
        'grpc.credentials.combineChannelCredentials(channelCredentials, callCredentials); per call, the credentials call option), ' +
        'and a second copy of @grpc/grpc-js makes different classes',
      value,
    );
  }
}
