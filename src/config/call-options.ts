import type { CallCredentials, Metadata, MetadataValue } from '@grpc/grpc-js';
import { optionError } from '../core/option-error.js';
import { checkOptionsObject, keysOf, MAX_TIMER_MS, type KeysOf } from './check-helpers.js';
import type { InterceptorFields } from './interceptor-options.js';
import { POLICY_KEYS, type PolicyOptions } from './policy.js';

// The options of one call, the last argument of every client method: their type and their
// checks. A call has no defaults of its own: what it leaves unset is its method's. The call's
// deadline, metadata and parent are prepared in call/call-options.ts.

/**
 * Absolute deadlines below this (2001-09-09, epoch ms 1e12) are taken for a relative duration
 * passed by mistake: grpc-js reads `deadline: 5000` as 5 s after 1970, which expires at once.
 */
const PLAUSIBLE_EPOCH_MS = 1e12;

/** Metadata for one call: a grpc-js `Metadata`, or a plain object of keys to values. */
export type MetadataInit = Metadata | Record<string, MetadataValue | MetadataValue[]>;

/**
 * Options of one call, the last argument of every client method. How each grpc-js call option
 * and metadata option maps to these: docs/call-options.md.
 */
export interface CallOptions extends PolicyOptions, InterceptorFields {
  /**
   * Absolute deadline: a `Date`, or epoch milliseconds as in grpc-js (`Date.now() + 500`, never
   * `500`). Must be in the future. Wins over every `deadlineMs`; do not pass both on one call.
   */
  deadline?: Date | number | undefined;
  /** Cancels the call; the promise then rejects with `signal.reason`. */
  signal?: AbortSignal | undefined;
  /** Request metadata (headers). */
  metadata?: MetadataInit | undefined;
  /**
   * A grpc-js server call this call is made on behalf of: the call's deadline becomes the
   * earlier of its own and the parent's, and the call is cancelled when the parent is.
   */
  parent?: ParentCall | undefined;
  /**
   * Called with the response headers of each attempt that receives them. For the rare caller
   * that needs them; a hook that throws is reported as a process warning, never breaks the call.
   */
  onHeader?: ((metadata: Metadata) => void) | undefined;
  /** Called with the trailers of each attempt that ends with a status (success or failure). */
  onTrailer?: ((metadata: Metadata) => void) | undefined;
  /**
   * Wait for the channel to be ready instead of failing at once while it cannot connect
   * (grpc-js's `waitForReady` metadata option): the call waits, within its deadline, for a
   * connection, and fails DEADLINE_EXCEEDED if none comes up in time. For start-up ordering
   * (a client that starts before its server). `false` overrides a `Metadata` passed with the
   * option set. Default: unset (grpc-js's default: fail fast with UNAVAILABLE).
   */
  waitForReady?: boolean | undefined;
  /**
   * grpc-js `CallCredentials` for this call (a token per request:
   * `grpc.credentials.createFromMetadataGenerator(...)`), composed with the channel's. Asked for
   * metadata on every attempt. Use a TLS channel: grpc-js also sends them over plaintext.
   * Default: none.
   */
  credentials?: CallCredentials | undefined;
}

/**
 * The part of a grpc-js server call (`ServerUnaryCall`, `ServerWritableStream`, ...) that `parent`
 * uses: its deadline and its cancellation.
 */
export interface ParentCall {
  /** Whether the parent call was already cancelled: the call is then refused CANCELLED at once. */
  readonly cancelled: boolean;
  /** The parent's deadline (`Date`, epoch ms, or `Infinity`); the call's is the earlier of both. */
  getDeadline(): Date | number;
  /** Subscribes to the parent's cancellation, which cancels the call. */
  once(event: 'cancelled', listener: () => void): unknown;
  /** Unsubscribes when the call has ended. */
  removeListener(event: 'cancelled', listener: () => void): unknown;
}

/** The known keys of a call's options: the policy's, then the call's own. */
const CALL_KEYS: ReadonlySet<string> = new Set<keyof CallOptions>([
  ...POLICY_KEYS,
  ...keysOf({
    deadline: true,
    signal: true,
    metadata: true,
    parent: true,
    onHeader: true,
    onTrailer: true,
    interceptors: true,
    interceptor_providers: true,
    waitForReady: true,
    credentials: true,
  } as const satisfies KeysOf<Omit<CallOptions, keyof PolicyOptions>>),
]);

/** grpc-js call options the package does not carry, each with why and what to use instead. */
const NOT_CARRIED: Readonly<Record<string, string>> = {
  host: 'not carried: a call\'s :authority is its channel\'s (for another one, set channelOptions["grpc.default_authority"] on pool.client(), which gives that authority a channel of its own)',
  propagate_flags:
    "not carried: with parent, a call always inherits the parent's deadline (the earlier one wins) and its cancellation, grpc-js's default flags; leave out parent for neither",
};

/** The error for a grpc-js call option the package does not carry, else undefined. */
function notCarried(key: string): Error | undefined {
  const why = Object.hasOwn(NOT_CARRIED, key) ? NOT_CARRIED[key] : undefined;
  return why === undefined
    ? undefined
    : optionError('type', `CallOptions.${key}`, 'left out', undefined, `a grpc-js call option that is ${why}`);
}

/** Throws unless a call's options object holds only known keys. */
export function checkCallOptionKeys(options: object): void {
  checkOptionsObject('CallOptions', options, CALL_KEYS, undefined, notCarried);
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
      throw optionError(
        'range',
        option,
        `an absolute epoch-milliseconds timestamp, as in grpc-js (for a relative timeout pass deadlineMs: ${value})`,
        value,
      );
    }
    epochMs = value;
  } else {
    throw optionError('type', option, 'a Date or a number of epoch milliseconds', value);
  }
  if (epochMs <= now) throw optionError('range', option, `in the future (it is ${now - epochMs} ms in the past)`, value);
  if (epochMs - now > MAX_TIMER_MS) throw optionError('range', option, `at most ${MAX_TIMER_MS} ms from now`, value);
  return epochMs;
}
