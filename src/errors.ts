import { Metadata, status } from '@grpc/grpc-js';

// Every error class carries a `Symbol.for` brand and checks it in `Symbol.hasInstance`, so
// `err instanceof StatusError` holds even when the ESM and the CJS builds of this package are
// both loaded in one process (each would otherwise have its own class object).
function hasBrand(value: unknown, brand: symbol): boolean {
  return typeof value === 'object' && value !== null && (value as Record<symbol, unknown>)[brand] === true;
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

const STATUS_ERROR = Symbol.for('resilient-grpc.StatusError');

/** What a {@link StatusError} is built from. */
export interface StatusErrorInit {
  code: number;
  details: string;
  metadata?: Metadata | undefined;
  /** Full method path, e.g. `/users.v1.UserService/QueryBasicInfoByID`. */
  method: string;
  target: string;
  /** How many attempts were made, the first one included. */
  attempts?: number | undefined;
  /** The errors of the earlier attempts, oldest first. */
  previousAttempts?: readonly StatusError[] | undefined;
  cause?: unknown;
}

/**
 * A call ended with a gRPC status other than OK. Keeps grpc-js's shape (`code`, `details`,
 * `metadata`), so `err.code === status.UNAVAILABLE` works as with a grpc-js `ServiceError`, and
 * adds the method path, the target and the number of attempts. The grpc-js error, when there
 * was one, is the `cause`.
 */
export class StatusError extends Error {
  static override [Symbol.hasInstance](value: unknown): boolean {
    return hasBrand(value, STATUS_ERROR);
  }

  declare readonly [STATUS_ERROR]: true;
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
  /** How many attempts the call made, this one included (1 when it was not retried). */
  readonly attempts: number;
  /** The errors of the earlier attempts of the same call, oldest first (empty when none). */
  readonly previousAttempts: readonly StatusError[];

  constructor(init: StatusErrorInit) {
    super(`${init.code} ${statusName(init.code)}: ${init.details} (${init.method} on ${init.target})`, {
      cause: init.cause,
    });
    Object.defineProperty(this, STATUS_ERROR, { value: true });
    this.code = init.code;
    this.details = init.details;
    this.metadata = init.metadata ?? new Metadata();
    this.method = init.method;
    this.target = init.target;
    this.attempts = init.attempts ?? 1;
    this.previousAttempts = init.previousAttempts ?? [];
  }
}

const POOL_CLOSED_ERROR = Symbol.for('resilient-grpc.PoolClosedError');

/**
 * The pool is closing or closed: the call was refused before it touched the network. Its
 * `code` is CANCELLED: the pool's owner shut it down, and retrying on the same pool cannot help.
 */
export class PoolClosedError extends Error {
  static override [Symbol.hasInstance](value: unknown): boolean {
    return hasBrand(value, POOL_CLOSED_ERROR);
  }

  declare readonly [POOL_CLOSED_ERROR]: true;
  override readonly name = 'PoolClosedError';
  /** Always `status.CANCELLED` (1). */
  readonly code: number = status.CANCELLED;
  /** Full method path of the refused call, when the refusal came from a call. */
  readonly method: string | undefined;

  constructor(method?: string) {
    super(
      method === undefined
        ? 'the ChannelPool is closed'
        : `the ChannelPool is closed: ${method} was not started`,
    );
    Object.defineProperty(this, POOL_CLOSED_ERROR, { value: true });
    this.method = method;
  }
}

const CIRCUIT_OPEN_ERROR = Symbol.for('resilient-grpc.CircuitOpenError');

/** What a {@link CircuitOpenError} is built from. */
export interface CircuitOpenErrorInit {
  method: string;
  target: string;
  /** When the breaker lets a probe through again, epoch ms. */
  nextProbeAt: number;
  cause?: unknown;
}

/**
 * The call's circuit breaker is open (or half-open with its one probe already out): the call
 * was refused at once, without touching the network, and is never retried. Its `code` is
 * UNAVAILABLE, so code that branches on gRPC codes treats it like the outage it stands for.
 */
export class CircuitOpenError extends Error {
  static override [Symbol.hasInstance](value: unknown): boolean {
    return hasBrand(value, CIRCUIT_OPEN_ERROR);
  }

  declare readonly [CIRCUIT_OPEN_ERROR]: true;
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
    super(`circuit open for ${init.target}: ${init.method} was not sent; next probe at ${new Date(init.nextProbeAt).toISOString()}`, {
      cause: init.cause,
    });
    Object.defineProperty(this, CIRCUIT_OPEN_ERROR, { value: true });
    this.method = init.method;
    this.target = init.target;
    this.nextProbeAt = new Date(init.nextProbeAt);
  }
}

/** Which kind of built-in error a bad option raises. */
export type OptionErrorKind = 'type' | 'range';

/** A `TypeError` or `RangeError` raised for a bad option, with the fields below added. */
export interface OptionError extends Error {
  /** Always `status.INVALID_ARGUMENT` (3): every rejection carries a numeric gRPC code. */
  readonly code: number;
  /** The option's path, e.g. `methods.QueryBasicInfoByID.deadlineMs`. */
  readonly option: string;
}

/**
 * A clear error for a bad option: names the option, what it must be and what it got. A
 * `TypeError` for a value of the wrong type, a `RangeError` for one out of range, both with
 * `code` INVALID_ARGUMENT and `option`.
 */
export function optionError(
  kind: OptionErrorKind,
  option: string,
  expected: string,
  value: unknown,
  got: string = describeValue(value),
): OptionError {
  const message = `resilient-grpc: ${option} must be ${expected}, got ${got}`;
  const error = kind === 'type' ? new TypeError(message) : new RangeError(message);
  Object.defineProperties(error, {
    code: { value: status.INVALID_ARGUMENT, enumerable: true },
    option: { value: option, enumerable: true },
  });
  return error as OptionError;
}

/** A short, safe description of a value for error messages. */
export function describeValue(value: unknown): string {
  if (value === null) return 'null';
  if (value instanceof Date) return `Date(${Number.isNaN(value.getTime()) ? 'Invalid Date' : value.toISOString()})`;
  switch (typeof value) {
    case 'undefined':
      return 'undefined';
    case 'string':
      return JSON.stringify(value.length > 80 ? `${value.slice(0, 77)}...` : value);
    case 'number':
    case 'boolean':
    case 'bigint':
      return String(value);
    case 'function':
      return `a function${value.name ? ` (${value.name})` : ''}`;
    case 'symbol':
      return value.toString();
    default: {
      const name = (value as object).constructor?.name;
      return Array.isArray(value) ? 'an array' : name && name !== 'Object' ? `an instance of ${name}` : 'an object';
    }
  }
}

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
