import type { CallCredentials, Interceptor, InterceptorProvider } from '@grpc/grpc-js';
import { optionError } from '../core/option-error.js';
import type { MethodInfo } from '../core/service-methods.js';

// grpc-js interceptors and call credentials, as the package takes them: `interceptors` or
// `interceptor_providers` on `pool.client()` options and per call (grpc-js's own names and
// types, so that interceptors written for grpc-js move over unchanged), and per-call
// `credentials`. Their checks; where they run is call/attempt.ts and call/interceptor-tap.ts.

/** The interceptor options of a client or a call, with grpc-js's names. */
export interface InterceptorFields {
  /**
   * grpc-js client interceptors, outermost first, as grpc-js takes them. They run on every
   * attempt (a retried call runs them again), around the package's own work: they see the
   * call's metadata and options (with its deadline) and can add headers, end the call with a
   * status of their own, or watch what comes back. Per call, they replace the client's (as in
   * grpc-js). Not together with `interceptor_providers` on one level. Default: none.
   */
  interceptors?: Interceptor[] | undefined;
  /**
   * grpc-js interceptor providers: `(methodDefinition) => Interceptor | undefined`, called once
   * per method when the client is made (on the client) or once per call (per call), never per
   * attempt. Not together with `interceptors` on one level. Default: none.
   */
  interceptor_providers?: InterceptorProvider[] | undefined;
}

/** Validates one level's `interceptors` / `interceptor_providers`; `prefix` is the path before them. */
export function checkInterceptorOptions(prefix: string, options: InterceptorFields): void {
  const { interceptors, interceptor_providers: providers } = options;
  checkFunctions(`${prefix}interceptors`, interceptors, 'a grpc-js Interceptor: (options, nextCall) => InterceptingCall');
  checkFunctions(`${prefix}interceptor_providers`, providers, 'a grpc-js InterceptorProvider: (methodDefinition) => Interceptor');
  if (interceptors !== undefined && providers !== undefined && interceptors.length > 0 && providers.length > 0) {
    throw optionError(
      'type',
      `${prefix}interceptor_providers`,
      `left out when ${prefix}interceptors is given (grpc-js allows one of the two per level: put the interceptors in one list)`,
      providers,
    );
  }
}

/**
 * One level's interceptors for one method (a client's, or a call's): its `interceptors`, else
 * what its `interceptor_providers` give for the method, asked now; undefined for none (an empty
 * list is none, as in grpc-js). A provider that returns undefined or null gives none; one that
 * returns anything else but a function is refused. `providerThrew` turns what a provider threw
 * into the error to throw (by default, the thrown error itself).
 */
export function interceptorsFor(
  options: InterceptorFields,
  method: MethodInfo,
  providerThrew: (error: unknown, index: number) => unknown = (error) => error,
): readonly Interceptor[] | undefined {
  if (options.interceptors !== undefined && options.interceptors.length > 0) return options.interceptors.slice();
  const list: Interceptor[] = [];
  (options.interceptor_providers ?? []).forEach((provider, i) => {
    let interceptor: Interceptor | undefined;
    try {
      interceptor = provider(method.definition);
    } catch (error) {
      throw providerThrew(error, i);
    }
    if (interceptor === undefined || interceptor === null) return;
    if (typeof interceptor !== 'function') {
      throw optionError(
        'type',
        `interceptor_providers[${i}]`,
        `a provider that returns a grpc-js Interceptor for ${method.path}`,
        interceptor,
      );
    }
    list.push(interceptor);
  });
  return list.length === 0 ? undefined : list;
}

function checkFunctions(option: string, value: unknown, expected: string): void {
  if (value === undefined) return;
  if (!Array.isArray(value)) throw optionError('type', option, `an array, each item ${expected}`, value);
  value.forEach((item: unknown, i) => {
    if (typeof item !== 'function') throw optionError('type', `${option}[${i}]`, expected, item);
  });
}

/** Throws unless `value` is grpc-js `CallCredentials` (duck-typed: a second copy of grpc-js has other classes). */
export function checkCallCredentials(option: string, value: unknown): asserts value is CallCredentials | undefined {
  if (value === undefined) return;
  const creds = value as Record<string, unknown> | null;
  if (
    typeof creds !== 'object' ||
    creds === null ||
    typeof creds.generateMetadata !== 'function' ||
    typeof creds.compose !== 'function' ||
    typeof creds._equals !== 'function'
  ) {
    const channelCreds = typeof creds === 'object' && creds !== null && typeof creds._isSecure === 'function';
    throw optionError(
      'type',
      option,
      'grpc-js CallCredentials (e.g. grpc.credentials.createFromMetadataGenerator(...))' +
        (channelCreds ? '; these are channel credentials: they go in pool.client() options' : ''),
      value,
    );
  }
}
