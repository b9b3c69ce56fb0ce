import { constants } from 'node:os';
import { experimental, status } from '@grpc/grpc-js';
import { THROTTLE_DEFAULTS, CLOSE_DEFAULTS } from './defaults.js';
import { statusName } from '../core/errors.js';
import { describeValue, optionError } from '../core/option-error.js';
import type {
  BreakerOptions,
  ChannelPoolOptions,
  ClientOptions,
  CloseOptions,
  EndpointEjectionOptions,
  PolicyOptions,
  RetryOptions,
  RetryThrottlingOptions,
} from './options.js';
import { RETRYABLE_CANDIDATES } from '../core/status-meaning.js';
import type { Resolved } from './with-defined.js';

// Every option check of the package, and the toolkit they share. A bad option gets a TypeError
// (wrong type) or a RangeError (out of range) that names the option's path, says what it must
// be and what it got, and carries `code` INVALID_ARGUMENT and `option`; it is thrown before
// anything touches the network. Values are described, never echoed when they may be secret.
// (Over 300 lines on purpose: one home for every check, so no copy can drift from another.)

/**
 * The longest delay a Node timer accepts (about 24.8 days); longer ones fire at once. grpc-js
 * clamps its own timers to it, and so do we: every duration option is capped here.
 */
export const MAX_TIMER_MS = 2_147_483_647;

/** Most attempts a `retry` policy may make, the first included. */
export const MAX_ATTEMPTS_LIMIT = 10;

/**
 * Absolute deadlines below this (2001-09-09, epoch ms 1e12) are taken for a relative duration
 * passed by mistake: grpc-js reads `deadline: 5000` as 5 s after 1970, which expires at once.
 */
const PLAUSIBLE_EPOCH_MS = 1e12;

/** The known keys of each options object: an unknown key is an error, not silently ignored. */
export const POLICY_KEYS = ['deadlineMs', 'idempotent', 'retry'] as const;
const POOL_KEYS: readonly string[] = [...POLICY_KEYS, 'channelOptions', 'retryThrottling', 'breaker', 'connectTimeoutMs', 'endpointEjection', 'stallTimeoutMs', 'dnsRefreshMs'];
const CLIENT_KEYS: readonly string[] = [...POLICY_KEYS, 'credentials', 'channelOptions', 'methods', 'breaker', 'endpointEjection'];
const EJECTION_KEYS: readonly string[] = ['intervalMs', 'failurePercentage', 'requestVolume', 'baseEjectionTimeMs', 'maxEjectionTimeMs', 'maxEjectionPercent'];
const CALL_KEYS: ReadonlySet<string> = new Set([...POLICY_KEYS, 'deadline', 'signal', 'metadata', 'parent', 'onHeader', 'onTrailer']);
const CLOSE_KEYS: readonly string[] = ['graceMs'];
const RETRY_KEYS: readonly string[] = ['maxAttempts', 'initialDelayMs', 'maxDelayMs', 'retryableCodes', 'perAttemptTimeoutMs'];
export const BREAKER_KEYS: readonly string[] = ['errorThresholdPercentage', 'volumeThreshold', 'windowMs', 'resetTimeoutMs', 'scope'];
const THROTTLE_KEYS: readonly string[] = ['maxTokens', 'tokenRatio'];
const UNCATCHABLE_SIGNALS: ReadonlySet<string> = new Set(['SIGKILL', 'SIGSTOP']);

// ---- the toolkit ----

/** Throws unless `value` is a plain options object (or undefined); rejects unknown keys. */
export function checkOptionsObject(
  option: string,
  value: unknown,
  known: ReadonlySet<string> | readonly string[],
  expected = 'an options object',
): asserts value is Record<string, unknown> | undefined {
  if (value === undefined) return;
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw optionError('type', option, expected, value);
  }
  const has = Array.isArray(known) ? (key: string) => known.includes(key) : (key: string) => (known as ReadonlySet<string>).has(key);
  for (const key of Object.keys(value)) {
    if (!has(key)) {
      const list = [...known].join(', ');
      throw optionError('type', `${option}.${key}`, `one of the known options (${list})`, undefined, 'an unknown option');
    }
  }
}

/**
 * The one millisecond check: a number, finite, at most {@link MAX_TIMER_MS}, and > 0 (a
 * duration that must pass, the default) or >= 0 (`allowZero`: a delay or a grace period).
 */
export function checkMs(option: string, value: unknown, allowZero = false): number {
  if (typeof value !== 'number' || Number.isNaN(value)) throw optionError('type', option, 'a number of milliseconds', value);
  if (!(allowZero ? value >= 0 : value > 0) || value > MAX_TIMER_MS) {
    throw optionError('range', option, `a finite number of milliseconds ${allowZero ? '>=' : '>'} 0 and <= ${MAX_TIMER_MS}`, value);
  }
  return value;
}

/** Validates a relative duration option in milliseconds: finite, > 0, at most {@link MAX_TIMER_MS}. */
export function checkDurationMs(option: string, value: unknown): number {
  return checkMs(option, value);
}

/** Throws unless `value` is a number for which `ok` holds (a TypeError for a non-number). */
function checkNumber(option: string, value: unknown, ok: (v: number) => boolean, expected: string): void {
  if (value === undefined) return;
  if (typeof value !== 'number' || Number.isNaN(value)) throw optionError('type', option, 'a number', value);
  if (!ok(value)) throw optionError('range', option, expected, value);
}

/**
 * Validates an absolute deadline (`Date`, or a number of epoch milliseconds as in grpc-js) and
 * returns it as epoch ms. Rejects invalid dates, non-finite numbers, numbers that look like a
 * relative duration, and deadlines that are already in the past.
 */
export function checkAbsoluteDeadline(option: string, value: unknown, now: number): number {
  let epochMs: number;
  if (value instanceof Date) {
    epochMs = value.getTime();
    if (Number.isNaN(epochMs)) throw optionError('type', option, 'a valid Date', value);
  } else if (typeof value === 'number' && !Number.isNaN(value)) {
    if (!Number.isFinite(value)) {
      throw optionError('range', option, 'a finite epoch-milliseconds timestamp (a call must not wait for ever)', value);
    }
    if (value < PLAUSIBLE_EPOCH_MS) {
      throw optionError('range', option, `an absolute epoch-milliseconds timestamp, as in grpc-js (for a relative timeout pass deadlineMs: ${value})`, value);
    }
    epochMs = value;
  } else {
    throw optionError('type', option, 'a Date or a number of epoch milliseconds', value);
  }
  if (epochMs <= now) throw optionError('range', option, `in the future (it is ${now - epochMs} ms in the past)`, value);
  if (epochMs - now > MAX_TIMER_MS) throw optionError('range', option, `at most ${MAX_TIMER_MS} ms from now`, value);
  return epochMs;
}

// ---- the options types ----

/** Validates the cascading fields of one level and returns only those that are set. */
export function checkPolicy(prefix: string, options: PolicyOptions | undefined): PolicyOptions {
  const out: PolicyOptions = {};
  if (options === undefined) return out;
  if (options.deadlineMs !== undefined) out.deadlineMs = checkMs(`${prefix}deadlineMs`, options.deadlineMs);
  if (options.idempotent !== undefined) {
    if (typeof options.idempotent !== 'boolean') throw optionError('type', `${prefix}idempotent`, 'a boolean', options.idempotent);
    out.idempotent = options.idempotent;
  }
  const retry = checkRetryOptions(`${prefix}retry`, options.retry);
  if (retry !== undefined) out.retry = retry;
  return out;
}

/** Validates one level's `retry` option; returns it unchanged (an object or `false`). */
export function checkRetryOptions(option: string, value: unknown): RetryOptions | false | undefined {
  if (value === undefined || value === false) return value;
  checkOptionsObject(option, value, RETRY_KEYS, `false or an object { ${RETRY_KEYS.join(', ')} }`);
  const retry = value as RetryOptions;
  if (retry.maxAttempts !== undefined) {
    const n = retry.maxAttempts;
    if (typeof n !== 'number' || !Number.isInteger(n) || n < 1 || n > MAX_ATTEMPTS_LIMIT) {
      throw optionError(typeof n === 'number' ? 'range' : 'type', `${option}.maxAttempts`, `an integer from 1 to ${MAX_ATTEMPTS_LIMIT} (attempts in all, the first included)`, n);
    }
  }
  for (const key of ['initialDelayMs', 'maxDelayMs'] as const) {
    if (retry[key] !== undefined) checkMs(`${option}.${key}`, retry[key], true);
  }
  if (retry.perAttemptTimeoutMs !== undefined) checkMs(`${option}.perAttemptTimeoutMs`, retry.perAttemptTimeoutMs);
  if (retry.retryableCodes !== undefined) {
    if (!Array.isArray(retry.retryableCodes)) {
      throw optionError('type', `${option}.retryableCodes`, 'an array of numeric gRPC status codes', retry.retryableCodes);
    }
    for (const code of retry.retryableCodes) {
      if (!RETRYABLE_CANDIDATES.has(code as number)) {
        const allowed = [...RETRYABLE_CANDIDATES].map((c) => `${statusName(c)} (${c})`).join(', ');
        throw optionError('range', `${option}.retryableCodes`, `made of codes a server sends for transient failures: ${allowed}`, code, typeof code === 'number' ? `${statusName(code)} (${code})` : describeValue(code));
      }
    }
  }
  return retry;
}

/** Validates a `breaker` option; returns it unchanged (an object or `false`). */
export function checkBreakerOptions(option: string, value: unknown): BreakerOptions | false | undefined {
  if (value === undefined || value === false) return value;
  checkOptionsObject(option, value, BREAKER_KEYS, `false or an object { ${BREAKER_KEYS.join(', ')} }`);
  const b = value as BreakerOptions;
  checkNumber(`${option}.errorThresholdPercentage`, b.errorThresholdPercentage, (v) => v > 0 && v <= 100, 'a percentage > 0 and <= 100');
  checkNumber(`${option}.volumeThreshold`, b.volumeThreshold, (v) => Number.isInteger(v) && v >= 1 && v <= 1_000_000, 'an integer >= 1 (calls in the window before the circuit may open)');
  checkNumber(`${option}.windowMs`, b.windowMs, (v) => v >= 100 && v <= 3_600_000, 'a number of milliseconds from 100 to 3600000');
  if (b.resetTimeoutMs !== undefined) checkMs(`${option}.resetTimeoutMs`, b.resetTimeoutMs);
  if (b.scope !== undefined && b.scope !== 'channel' && b.scope !== 'method') {
    throw optionError('type', `${option}.scope`, '"channel" or "method"', b.scope);
  }
  return b;
}

/** Validates an `endpointEjection` option; returns it unchanged (an object or `false`). */
export function checkEjectionOptions(option: string, value: unknown): EndpointEjectionOptions | false | undefined {
  if (value === undefined || value === false) return value;
  checkOptionsObject(option, value, EJECTION_KEYS, `false or an object { ${EJECTION_KEYS.join(', ')} }`);
  const e = value as EndpointEjectionOptions;
  for (const key of ['intervalMs', 'baseEjectionTimeMs', 'maxEjectionTimeMs'] as const) if (e[key] !== undefined) checkMs(`${option}.${key}`, e[key]);
  checkNumber(`${option}.failurePercentage`, e.failurePercentage, (v) => v > 0 && v <= 100, 'a percentage > 0 and <= 100');
  checkNumber(`${option}.maxEjectionPercent`, e.maxEjectionPercent, (v) => v >= 0 && v <= 100, 'a percentage from 0 to 100');
  checkNumber(`${option}.requestVolume`, e.requestVolume, (v) => Number.isInteger(v) && v >= 1 && v <= 1_000_000, 'an integer >= 1 (attempts an endpoint needs in an interval to be judged)');
  return e;
}

/** Validates `retryThrottling` and applies its defaults; `false` turns throttling off. */
export function checkThrottlingOptions(option: string, value: unknown): Resolved<RetryThrottlingOptions> | false {
  if (value === false) return false;
  if (value === undefined) return THROTTLE_DEFAULTS;
  checkOptionsObject(option, value, THROTTLE_KEYS, 'false or an object { maxTokens, tokenRatio }');
  const { maxTokens = THROTTLE_DEFAULTS.maxTokens, tokenRatio = THROTTLE_DEFAULTS.tokenRatio } = value as RetryThrottlingOptions;
  if (typeof maxTokens !== 'number' || !(maxTokens > 0 && maxTokens <= 1000)) {
    throw optionError(typeof maxTokens === 'number' ? 'range' : 'type', `${option}.maxTokens`, 'a number > 0 and <= 1000', maxTokens);
  }
  if (typeof tokenRatio !== 'number' || !(tokenRatio > 0 && tokenRatio <= 1)) {
    throw optionError(typeof tokenRatio === 'number' ? 'range' : 'type', `${option}.tokenRatio`, 'a number > 0 and <= 1', tokenRatio);
  }
  return { maxTokens, tokenRatio };
}

export function checkPoolOptions(options: unknown): ChannelPoolOptions {
  checkOptionsObject('ChannelPoolOptions', options, POOL_KEYS);
  const opts = (options ?? {}) as ChannelPoolOptions;
  checkChannelOptions('channelOptions', opts.channelOptions);
  checkBreakerOptions('breaker', opts.breaker);
  checkEjectionOptions('endpointEjection', opts.endpointEjection);
  if (opts.connectTimeoutMs !== undefined && opts.connectTimeoutMs !== false) checkMs('connectTimeoutMs', opts.connectTimeoutMs);
  if (opts.stallTimeoutMs !== undefined && opts.stallTimeoutMs !== false) checkMs('stallTimeoutMs', opts.stallTimeoutMs);
  if (opts.dnsRefreshMs !== undefined && opts.dnsRefreshMs !== false) checkMs('dnsRefreshMs', opts.dnsRefreshMs);
  return opts;
}

export function checkClientOptions(options: unknown): ClientOptions {
  checkOptionsObject('ClientOptions', options, CLIENT_KEYS);
  const opts = (options ?? {}) as ClientOptions;
  checkChannelOptions('channelOptions', opts.channelOptions);
  checkBreakerOptions('breaker', opts.breaker);
  checkEjectionOptions('endpointEjection', opts.endpointEjection);
  checkCredentials(opts.credentials);
  if (opts.methods !== undefined && (typeof opts.methods !== 'object' || opts.methods === null || Array.isArray(opts.methods))) {
    throw optionError('type', 'methods', 'an object keyed by method name', opts.methods);
  }
  return opts;
}

/** Validates one `methods[name]` entry. */
export function checkMethodOptions(name: string, options: unknown): PolicyOptions {
  checkOptionsObject(`methods.${name}`, options, POLICY_KEYS);
  return checkPolicy(`methods.${name}.`, options as PolicyOptions | undefined);
}

export function checkCallOptionKeys(options: object): void {
  checkOptionsObject('CallOptions', options, CALL_KEYS);
}

/** Validates `close()` (and `closeOnSignals()`) options and applies their defaults. */
export function checkCloseOptions(options: unknown): Resolved<CloseOptions> {
  checkOptionsObject('CloseOptions', options, CLOSE_KEYS);
  const graceMs = (options as CloseOptions | undefined)?.graceMs ?? CLOSE_DEFAULTS.graceMs;
  return { graceMs: checkMs('graceMs', graceMs, true) };
}

/** Validates the signal names given to `closeOnSignals()`. */
export function checkSignals(signals: unknown): readonly NodeJS.Signals[] {
  if (!Array.isArray(signals) || signals.length === 0) {
    throw optionError('type', 'signals', 'a non-empty array of signal names such as ["SIGTERM", "SIGINT"]', signals);
  }
  for (const signal of signals) {
    if (typeof signal !== 'string' || !Object.hasOwn(constants.signals, signal)) {
      throw optionError('type', 'signals', 'signal names this platform knows, such as "SIGTERM" or "SIGINT"', signal);
    }
    if (UNCATCHABLE_SIGNALS.has(signal)) {
      throw optionError('range', 'signals', 'signals a process can handle (SIGKILL and SIGSTOP cannot be caught)', signal);
    }
  }
  return signals as NodeJS.Signals[];
}

function checkChannelOptions(option: string, value: unknown): void {
  if (value === undefined) return;
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw optionError('type', option, 'an object of grpc-js channel options', value);
  }
  for (const [key, v] of Object.entries(value)) {
    if (v === undefined) continue;
    const t = typeof v;
    if (key.startsWith('grpc.') && t !== 'number' && t !== 'string' && t !== 'boolean') {
      throw optionError('type', `${option}["${key}"]`, 'a number or a string (grpc channel arguments are scalars)', v);
    }
    if (t === 'number' && !Number.isFinite(v)) throw optionError('range', `${option}["${key}"]`, 'a finite number', v);
    if (key === 'grpc.service_config') checkServiceConfig(`${option}["${key}"]`, v);
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
  throw optionError('range', `${option}.loadBalancingConfig`, `a list with at least one policy grpc-js accepts (${reasons.join('; ')})`, lb);
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
        'server or call credentials are not channel credentials, and a second copy of @grpc/grpc-js makes different classes',
      value,
    );
  }
}
