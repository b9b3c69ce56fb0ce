import { status, type Metadata } from '@grpc/grpc-js';
import { StatusError } from '../core/errors.js';

/** A grpc-js status, as the status event and ServiceError carry it. */
export interface GrpcStatus {
  code: number;
  details: string;
  metadata?: Metadata | undefined;
}

/** Whether a value has a numeric gRPC `code`, as a grpc-js ServiceError or status object does. */
export function isGrpcStatus(value: unknown): value is GrpcStatus & object {
  return typeof value === 'object' && value !== null && typeof (value as GrpcStatus).code === 'number';
}

/**
 * The errors of one call's attempts, oldest first, and the StatusErrors the caller sees: each
 * carries the method, the target, the attempt count and the earlier attempts' errors. Made on
 * a call's first failure only: healthy calls allocate none.
 */
export class CallErrors {
  readonly #errors: StatusError[] = [];

  constructor(
    readonly method: string,
    readonly target: string,
  ) {}

  /** The last attempt's error, if any. */
  get last(): StatusError | undefined {
    return this.#errors.at(-1);
  }

  /** A StatusError for the failed attempt number `attempts`, recorded as its error. */
  fromStatus(grpcStatus: GrpcStatus, cause: unknown, attempts: number): StatusError {
    const error = new StatusError({
      code: grpcStatus.code,
      details: grpcStatus.details,
      metadata: grpcStatus.metadata,
      method: this.method,
      target: this.target,
      attempts,
      previousAttempts: this.#errors.slice(),
      cause,
    });
    this.#errors.push(error);
    return error;
  }

  /**
   * The CANCELLED error of a call we ended (close(), a parent's cancellation). The attempt we
   * cancelled failed with grpc-js's own CANCELLED, the `cause`: this error replaces it.
   */
  cancelled(details: string, cause: unknown, attempts: number): StatusError {
    const previous = this.last === cause ? this.#errors.slice(0, -1) : this.#errors.slice();
    return new StatusError({
      code: status.CANCELLED,
      details,
      method: this.method,
      target: this.target,
      attempts,
      previousAttempts: previous,
      cause,
    });
  }
}

/**
 * The error of a call the channel's adaptive throttle rejected locally: UNAVAILABLE, `throttled`
 * true, no attempt made (so nothing to retry, and nothing the circuits or the endpoints heard).
 */
export function throttledError(method: string, target: string): StatusError {
  return new StatusError({
    code: status.UNAVAILABLE,
    details: 'rejected locally by adaptive throttling: the servers refused most recent calls (RESOURCE_EXHAUSTED, UNAVAILABLE)',
    method,
    target,
    attempts: 0,
    throttled: true,
  });
}
