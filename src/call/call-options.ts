import { Metadata, status, type CallCredentials, type Interceptor } from '@grpc/grpc-js';
import {
  checkAbsoluteDeadline,
  checkCallOptionKeys,
  type CallOptions,
  type MetadataInit,
  type ParentCall,
} from '../config/call-options.js';
import { checkCallCredentials, checkInterceptorOptions, interceptorsFor } from '../config/interceptor-options.js';
import { checkPolicy, mergePolicy, type ResolvedPolicy } from '../config/policy.js';
import { optionError } from '../core/option-error.js';
import type { MethodInfo } from '../core/service-methods.js';

/**
 * The longest timeout that survives the trip through the `grpc-timeout` header. grpc-js writes
 * 2147483647 ms as "2147484S" (rounded up to whole seconds), and a grpc-js server reads that back
 * as (2147484 * 1000) | 0, a negative number, and fails the call at once with DEADLINE_EXCEEDED.
 * 2147483000 ms is written "2147483S" and read back exactly. Deadlines further out (the
 * validated maximum is 2147483647 ms) are sent as this.
 */
export const MAX_WIRE_TIMEOUT_MS = 2_147_483_000;

/** A call's options once validated and combined with its method's policy. */
export interface PreparedCall {
  /** Absolute deadline of the whole call, epoch ms; always finite. */
  deadline: number;
  /** When the call was admitted, epoch ms: the clock read its deadline is relative to. */
  admittedAt: number;
  metadata: Metadata;
  /** `metadata` is the caller's own object, never to be written to. */
  callerMetadata: boolean;
  signal: AbortSignal | undefined;
  parent: ParentCall | undefined;
  policy: ResolvedPolicy;
  /** The caller's `onHeader` / `onTrailer` hooks, when either is given. */
  hooks: CallHooks | undefined;
  /** The call's own grpc-js interceptors (they replace the client's), or undefined: the client's. */
  interceptors: readonly Interceptor[] | undefined;
  /** The call's grpc-js call credentials, when given. */
  credentials: CallCredentials | undefined;
}

/** The caller's header and trailer hooks (call options `onHeader`, `onTrailer`). */
export interface CallHooks {
  onHeader: ((metadata: Metadata) => void) | undefined;
  onTrailer: ((metadata: Metadata) => void) | undefined;
}

/**
 * Validates one call's options and resolves its deadline: the call's `deadline` (absolute) or
 * `deadlineMs`, else the method's policy, then the parent's deadline if that is earlier.
 * Throws a TypeError or RangeError naming the option; nothing has touched the network yet.
 */
export function prepareCall(
  policy: ResolvedPolicy,
  options: CallOptions | undefined,
  now: number,
  /** The method called: what `interceptor_providers` are given. */
  method?: MethodInfo,
): PreparedCall {
  if (options === undefined) {
    return {
      deadline: now + Math.min(policy.deadlineMs, MAX_WIRE_TIMEOUT_MS),
      admittedAt: now,
      metadata: new Metadata(),
      callerMetadata: false,
      signal: undefined,
      parent: undefined,
      policy,
      hooks: undefined,
      interceptors: undefined,
      credentials: undefined,
    };
  }
  checkCallOptionKeys(options);
  const own = checkPolicy('', options);
  const resolved: ResolvedPolicy =
    own.deadlineMs === undefined && own.idempotent === undefined && own.retry === undefined ? policy : mergePolicy(policy, own);

  let deadline: number;
  if (options.deadline !== undefined) {
    if (options.deadlineMs !== undefined) {
      throw optionError('type', 'deadline', 'passed alone: deadline (absolute) and deadlineMs (relative) were both set', options.deadline);
    }
    deadline = checkAbsoluteDeadline('deadline', options.deadline, now);
  } else {
    // Every level's deadlineMs was validated when it was given.
    deadline = now + resolved.deadlineMs;
  }

  for (const hook of ['onHeader', 'onTrailer'] as const) {
    if (options[hook] !== undefined && typeof options[hook] !== 'function') throw optionError('type', hook, 'a function', options[hook]);
  }
  const parent = checkParent(options.parent);
  if (parent !== undefined) {
    const parentDeadline = deadlineToEpochMs(parent.getDeadline());
    // The earlier deadline wins; a parent without one (Infinity) leaves ours in place.
    if (parentDeadline < deadline) deadline = parentDeadline;
  }
  deadline = Math.min(deadline, now + MAX_WIRE_TIMEOUT_MS);

  let metadata = toMetadata(options.metadata);
  let callerMetadata = options.metadata instanceof Metadata;
  const { waitForReady, credentials } = options;
  if (waitForReady !== undefined) {
    if (typeof waitForReady !== 'boolean') throw optionError('type', 'waitForReady', 'a boolean', waitForReady);
    // grpc-js reads it from the metadata's options; the caller's own Metadata is never written to.
    if (callerMetadata) metadata = metadata.clone();
    callerMetadata = false;
    metadata.setOptions({ ...metadata.getOptions(), waitForReady });
  }
  checkCallCredentials('credentials', credentials);

  return {
    deadline,
    admittedAt: now,
    metadata,
    callerMetadata,
    signal: checkSignal(options.signal),
    parent,
    policy: resolved,
    hooks:
      options.onHeader === undefined && options.onTrailer === undefined
        ? undefined
        : { onHeader: options.onHeader, onTrailer: options.onTrailer },
    interceptors:
      options.interceptors === undefined && options.interceptor_providers === undefined ? undefined : callInterceptors(options, method),
    credentials,
  };
}

/**
 * A call's own interceptors: its `interceptors`, or what its `interceptor_providers` give for
 * the method (asked once per call); undefined when it has none, and then the client's apply. An
 * empty list is none, as in grpc-js: the client's apply.
 */
function callInterceptors(options: CallOptions, method: MethodInfo | undefined): readonly Interceptor[] | undefined {
  checkInterceptorOptions('', options);
  if (method === undefined)
    return options.interceptors !== undefined && options.interceptors.length > 0 ? options.interceptors.slice() : undefined;
  return interceptorsFor(options, method, (error, i) => {
    // A bug in the caller's provider: the call rejects with a gRPC code, as every call does.
    const message = error instanceof Error ? error.message : String(error);
    return Object.assign(new Error(`resilient-grpc: interceptor_providers[${i}] threw for ${method.path}: ${message}`, { cause: error }), {
      code: status.INTERNAL,
    });
  });
}

function checkSignal(signal: unknown): AbortSignal | undefined {
  if (signal === undefined) return undefined;
  const s = signal as Partial<AbortSignal> | null;
  if (typeof s !== 'object' || s === null || typeof s.aborted !== 'boolean' || typeof s.addEventListener !== 'function') {
    throw optionError('type', 'signal', 'an AbortSignal', signal);
  }
  return signal as AbortSignal;
}

function checkParent(parent: unknown): ParentCall | undefined {
  if (parent === undefined) return undefined;
  const p = parent as Partial<ParentCall> | null;
  if (typeof p !== 'object' || p === null || typeof p.getDeadline !== 'function' || typeof p.once !== 'function') {
    throw optionError('type', 'parent', 'a grpc-js server call (the call argument of a server handler)', parent);
  }
  return parent as ParentCall;
}

/** Builds request metadata from a `Metadata` (used as is) or a plain object. */
export function toMetadata(init: MetadataInit | undefined): Metadata {
  if (init === undefined) return new Metadata();
  if (init instanceof Metadata) return init;
  if (typeof init !== 'object' || init === null || !isPlainObject(init)) {
    const got = typeof init === 'string' ? 'a string (value hidden)' : undefined;
    throw optionError('type', 'metadata', 'a grpc-js Metadata or a plain object of keys to string or Buffer values', init, got);
  }
  const metadata = new Metadata();
  for (const [key, raw] of Object.entries(init)) {
    if (!/^[0-9a-z_.-]+$/.test(key)) {
      throw optionError('type', 'metadata key', 'a valid header name (lower-case letters, digits, "-", "_", ".")', key);
    }
    const binaryKey = key.endsWith('-bin');
    for (const value of Array.isArray(raw) ? raw : [raw]) {
      // Values are never echoed in errors, nor kept as a cause: metadata often carries tokens.
      const valid = binaryKey ? Buffer.isBuffer(value) : typeof value === 'string' && /^[\x20-\x7e]*$/.test(value);
      if (!valid) {
        const expected = binaryKey ? 'a Buffer (the key ends in -bin)' : 'a string of printable ASCII characters';
        throw optionError(
          'type',
          `metadata["${key}"]`,
          expected,
          undefined,
          `a ${Buffer.isBuffer(value) ? 'Buffer' : typeof value} (value hidden)`,
        );
      }
      metadata.add(key, value);
    }
  }
  return metadata;
}

/** A grpc-js deadline (`Date | number`, possibly `Infinity`) as epoch ms. */
export function deadlineToEpochMs(deadline: Date | number): number {
  return deadline instanceof Date ? deadline.getTime() : deadline;
}

/** A plain object: `{}`, `Object.create(null)`; not a Map, an array or a class instance. */
function isPlainObject(value: object): boolean {
  const proto = Object.getPrototypeOf(value) as unknown;
  return proto === Object.prototype || proto === null;
}

/** Request metadata for a retry: grpc's `grpc-previous-rpc-attempts` header added to a copy. */
export function retryMetadata(metadata: Metadata, previousAttempts: number): Metadata {
  const copy = metadata.clone();
  copy.set('grpc-previous-rpc-attempts', String(previousAttempts));
  return copy;
}
