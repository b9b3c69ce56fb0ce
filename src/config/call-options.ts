import type { Metadata, MetadataValue } from '@grpc/grpc-js';
import { optionError } from '../core/option-error.js';
import { checkOptionsObject, keysOf, MAX_TIMER_MS, type KeysOf } from './check-helpers.js';
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

/** Options of one call, the last argument of every client method. */
export interface CallOptions extends PolicyOptions {
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
  } as const satisfies KeysOf<Omit<CallOptions, keyof PolicyOptions>>),
]);

/** Throws unless a call's options object holds only known keys. */
export function checkCallOptionKeys(options: object): void {
  checkOptionsObject('CallOptions', options, CALL_KEYS);
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
