import { Metadata, status } from '@grpc/grpc-js';

// The package's error classes, one per origin. Each carries a `Symbol.for` brand and checks it
// in `Symbol.hasInstance`, so `err instanceof StatusError` holds even when the ESM and the CJS
// builds of this package are both loaded in one process (each would otherwise have its own
// class object). Validation errors (a TypeError or RangeError naming the option) are made by
// optionError (option-error.ts), in the checks of config/.

/**
 * The base of the branded classes: `static brand` is the class's `Symbol.for` key, set on every
 * instance, and `instanceof` checks it rather than the prototype chain.
 */
abstract class BrandedError extends Error {
  /** @internal The class's `Symbol.for` key, set on every instance. */
  static readonly brand: symbol;

  /** @internal `instanceof` checks the brand, so it holds across the ESM and CJS builds. */
  static override [Symbol.hasInstance](value: unknown): boolean {
    return typeof value === 'object' && value !== null && (value as Record<symbol, unknown>)[this.brand] === true;
  }

  constructor(message: string, options: { cause?: unknown } | undefined, brand: symbol) {
    super(message, options);
    Object.defineProperty(this, brand, { value: true });
  }
}

const STATUS_NAMES: Readonly<Record<number, string>> = Object.fromEntries(
  Object.entries(status)
    .filter((entry): entry is [string, number] => typeof entry[1] === 'number')
    .map(([name, code]) => [code, name]),
);

/** The name of a numeric gRPC status code (`14` → `'UNAVAILABLE'`); `'UNKNOWN_CODE_<n>'` otherwise. */
export function statusName(code: number): string {
  return STATUS_NAMES[code] ?? `UNKNOWN_CODE_${code}`;
}

/** What a {@link StatusError} is built from. */
export interface StatusErrorInit {
  /** Numeric gRPC status code. */
  code: number;
  /** The status message. */
  details: string;
  /** Trailing metadata of the call. Default: empty. */
  metadata?: Metadata | undefined;
  /** Full method path, e.g. `/users.v1.UserService/QueryBasicInfoByID`. */
  method: string;
  /** The channel's target. */
  target: string;
  /** How many attempts were made, the first one included. */
  attempts?: number | undefined;
  /** The errors of the earlier attempts, oldest first. */
  previousAttempts?: readonly StatusError[] | undefined;
  /** The underlying error (a grpc-js `ServiceError`), kept as the error's `cause`. */
  cause?: unknown;
  /** The call was rejected locally by the channel's adaptive throttle (`adaptiveThrottling`). Default: false. */
  throttled?: boolean | undefined;
}

/**
 * A call ended with a gRPC status other than OK. Keeps grpc-js's shape (`code`, `details`,
 * `metadata`), so `err.code === status.UNAVAILABLE` works as with a grpc-js `ServiceError`, and
 * adds the method path, the target and the number of attempts. The grpc-js error, when there
 * was one, is the `cause`.
 */
export class StatusError extends BrandedError {
  /** @internal */
  static override readonly brand = Symbol.for('resilient-grpc.StatusError');
  /** `'StatusError'`, as printed in logs and stack traces. */
  override readonly name = 'StatusError';
  /** Numeric gRPC status code (`status.UNAVAILABLE` is 14). */
  readonly code: number;
  /** The status message sent by the server or set by grpc-js. */
  readonly details: string;
  /** Trailing metadata of the failed call (empty when none). */
  readonly metadata: Metadata;
  /** Full method path, e.g. `/users.v1.UserService/QueryBasicInfoByID`. */
  readonly method: string;
  /** The target of the channel the call ran on. */
  readonly target: string;
  /** How many attempts the call made, this one included (1 when it was not retried; 0 when adaptive throttling rejected it: `throttled`). */
  readonly attempts: number;
  /** The errors of the earlier attempts of the same call, oldest first (empty when none). */
  readonly previousAttempts: readonly StatusError[];
  /**
   * True when the call never left the client because the channel's adaptive throttle
   * (`adaptiveThrottling`) rejected it: its servers have been refusing most calls (RESOURCE_EXHAUSTED,
   * UNAVAILABLE) lately. `code` is then UNAVAILABLE and `attempts` 0; it was not retried, and it
   * counted for no circuit breaker, endpoint or retry budget. False for every other failure.
   */
  readonly throttled: boolean;

  constructor(init: StatusErrorInit) {
    super(
      `${init.code} ${statusName(init.code)}: ${init.details} (${init.method} on ${init.target})`,
      { cause: init.cause },
      StatusError.brand,
    );
    this.code = init.code;
    this.details = init.details;
    this.metadata = init.metadata ?? new Metadata();
    this.method = init.method;
    this.target = init.target;
    this.attempts = init.attempts ?? 1;
    this.previousAttempts = init.previousAttempts ?? [];
    this.throttled = init.throttled === true;
  }
}

/**
 * The pool is closing or closed: the call was refused before it touched the network. Its
 * `code` is CANCELLED: the pool's owner shut it down, and retrying on the same pool cannot help.
 */
export class PoolClosedError extends BrandedError {
  /** @internal */
  static override readonly brand = Symbol.for('resilient-grpc.PoolClosedError');
  /** `'PoolClosedError'`, as printed in logs and stack traces. */
  override readonly name = 'PoolClosedError';
  /** Always `status.CANCELLED` (1). */
  readonly code: number = status.CANCELLED;
  /** Full method path of the refused call, when the refusal came from a call. */
  readonly method: string | undefined;

  constructor(method?: string) {
    super(
      method === undefined ? 'the ChannelPool is closed' : `the ChannelPool is closed: ${method} was not started`,
      undefined,
      PoolClosedError.brand,
    );
    this.method = method;
  }
}

/** What a {@link CircuitOpenError} is built from. */
export interface CircuitOpenErrorInit {
  /** Full method path of the refused call. */
  method: string;
  /** The channel's target. */
  target: string;
  /** When the breaker lets a probe through again, epoch ms. */
  nextProbeAt: number;
  /** The error that explains the refusal, if any, kept as the error's `cause`. */
  cause?: unknown;
}

/**
 * The call's circuit breaker is open (or half-open with its one probe already out): the call
 * was refused at once, without touching the network, and is never retried. Its `code` is
 * UNAVAILABLE, so code that branches on gRPC codes treats it like the outage it stands for.
 */
export class CircuitOpenError extends BrandedError {
  /** @internal */
  static override readonly brand = Symbol.for('resilient-grpc.CircuitOpenError');
  /** `'CircuitOpenError'`, as printed in logs and stack traces. */
  override readonly name = 'CircuitOpenError';
  /** Always `status.UNAVAILABLE` (14). */
  readonly code: number = status.UNAVAILABLE;
  /** Full method path of the refused call. */
  readonly method: string;
  /** The target of the channel whose breaker is open. */
  readonly target: string;
  /** When the breaker lets the next probe through (it may be taken by another call). */
  readonly nextProbeAt: Date;

  constructor(init: CircuitOpenErrorInit) {
    super(
      `circuit open for ${init.target}: ${init.method} was not sent; next probe at ${new Date(init.nextProbeAt).toISOString()}`,
      { cause: init.cause },
      CircuitOpenError.brand,
    );
    this.method = init.method;
    this.target = init.target;
    this.nextProbeAt = new Date(init.nextProbeAt);
  }
}
