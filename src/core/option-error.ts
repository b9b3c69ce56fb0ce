import { status } from '@grpc/grpc-js';

// The error every bad option raises: a TypeError or RangeError that names the option, what it
// must be and what it got (never a secret: strings are cut, metadata values hidden by callers).

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
