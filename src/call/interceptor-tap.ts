import { InterceptingCall, status, type Interceptor, type InterceptorOptions, type Metadata, type NextCall } from '@grpc/grpc-js';
import { tagAttempt, type AttemptLink } from '../channel/endpoint-lb.js';

// The innermost interceptor of an attempt that has the caller's grpc-js interceptors: it runs
// after all of them, right above the channel. It puts the attempt's endpoint token into a copy of
// the metadata there (endpoint-lb.ts), so that no interceptor of the caller ever sees it, and it
// tells the attempt how far the call got through the caller's interceptors: a status that one of
// them made up without handing the call on, or an error one of them threw, says nothing about the
// backend and is never retried (see attempt.ts). Made only for attempts that have interceptors.

/** Where an attempt got to through the caller's interceptors. */
export class InterceptorTap {
  /** The tap's interceptor was called: every interceptor of the caller handed the call on. */
  #entered = false;
  /** The channel made the attempt's call. */
  #made = false;
  /** The tap's start ran: every interceptor of the caller started the call: it went to the channel. */
  #started = false;
  readonly #link: AttemptLink | undefined;

  constructor(link: AttemptLink | undefined) {
    this.#link = link;
  }

  /** The caller's interceptors with the tap innermost, for grpc-js's call options. */
  chain(interceptors: readonly Interceptor[]): Interceptor[] {
    return [...interceptors, (options, nextCall) => this.#intercept(options, nextCall)];
  }

  /** Every interceptor handed the call on to the channel (the tap's start ran). */
  get handedOn(): boolean {
    return this.#started;
  }

  /**
   * After grpc-js threw while making the call: whether one of the caller's interceptors threw
   * (an interceptor function before the tap's, or a start before the tap's), rather than the
   * channel (a closed channel throws when asked for a call).
   */
  get interceptorThrew(): boolean {
    return !this.#entered || (this.#made && !this.#started);
  }

  #intercept(options: InterceptorOptions, nextCall: NextCall): InterceptingCall {
    this.#entered = true;
    const next = nextCall(options);
    this.#made = true;
    const link = this.#link;
    return new InterceptingCall(next, {
      start: (metadata, listener, start) => {
        this.#started = true;
        if (link === undefined) {
          start(metadata, listener);
        } else {
          // A copy: an interceptor that keeps the metadata it saw must not find the token in it later.
          const tagged = metadata.clone();
          tagAttempt(tagged, link);
          start(tagged, listener);
        }
      },
    });
  }
}

/** A status as grpc-js reports one: what an attempt fails with. */
interface ThrownStatus {
  code: number;
  details: string;
  metadata?: Metadata | undefined;
}

/**
 * The status of an attempt whose call grpc-js threw while making it, given where it got through
 * the caller's interceptors (`tap`, when it has any): UNAVAILABLE for a closed channel; INTERNAL
 * for an interceptor that threw; and the status an interceptor ended a stream with while it was
 * being started (grpc-js emits it as an 'error' with no listener yet, which throws it out of
 * makeServerStreamRequest).
 */
export function thrownStatus(tap: InterceptorTap | undefined, error: unknown): ThrownStatus {
  if (tap !== undefined && !tap.handedOn) {
    const thrown = error as Partial<ThrownStatus> | null;
    if (typeof thrown === 'object' && thrown !== null && typeof thrown.code === 'number' && typeof thrown.details === 'string') {
      return { code: thrown.code, details: thrown.details, metadata: thrown.metadata };
    }
  }
  const message = error instanceof Error ? error.message : String(error);
  return tap?.interceptorThrew === true
    ? { code: status.INTERNAL, details: `an interceptor threw: ${message}` }
    : { code: status.UNAVAILABLE, details: message };
}
