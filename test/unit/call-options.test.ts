import { inspect } from 'node:util';
import { credentials, InterceptingCall, Metadata, type Interceptor } from '@grpc/grpc-js';
import { describe, expect, test } from 'vitest';
import { prepareCall, toMetadata } from '../../src/call/call-options.js';
import type { CallOptions, ParentCall } from '../../src/config/call-options.js';
import { checkPolicy, mergePolicy, POLICY_DEFAULTS, type ResolvedPolicy } from '../../src/config/policy.js';
import type { MethodInfo } from '../../src/core/service-methods.js';
import { thrown } from '../helpers/thrown.js';

// A fixed "now": prepareCall takes it as an argument, no clock involved.
const NOW = Date.UTC(2025, 0, 1);
// The policy a method resolves to once pool, client and `methods[name]` are applied.
const METHOD_POLICY: ResolvedPolicy = { deadlineMs: 1_000, idempotent: false, retry: { initialDelayMs: 50 } };

/** Calls prepareCall with options that may not type-check: the library validates at run time too. */
function prepare(options: unknown, policy: ResolvedPolicy = METHOD_POLICY) {
  return prepareCall(policy, options as CallOptions | undefined, NOW);
}

/** The part of a grpc-js server call that `parent` uses, with a chosen deadline. */
function parentWithDeadline(deadline: Date | number): ParentCall {
  return { cancelled: false, getDeadline: () => deadline, once: () => undefined, removeListener: () => undefined };
}

describe('prepareCall: the deadline cascade', () => {
  test('no options: the method policy sets the deadline', () => {
    const prepared = prepare(undefined);
    expect(prepared.deadline).toBe(NOW + 1_000);
    expect(prepared.policy).toEqual(METHOD_POLICY);
    expect(prepared.signal).toBeUndefined();
    expect(prepared.parent).toBeUndefined();
    expect(prepared.metadata.getMap()).toEqual({});
  });

  test('empty options behave as none', () => {
    expect(prepare({}).deadline).toBe(NOW + 1_000);
  });

  test('the call deadlineMs wins over the method policy, shorter or longer', () => {
    expect(prepare({ deadlineMs: 200 }).deadline).toBe(NOW + 200);
    expect(prepare({ deadlineMs: 5_000 }).deadline).toBe(NOW + 5_000);
    expect(prepare({ deadlineMs: 200 }).policy).toEqual({ deadlineMs: 200, idempotent: false, retry: { initialDelayMs: 50 } });
  });

  test('an absolute deadline wins over the method policy', () => {
    expect(prepare({ deadline: NOW + 5_000 }).deadline).toBe(NOW + 5_000);
    expect(prepare({ deadline: new Date(NOW + 300) }).deadline).toBe(NOW + 300);
  });

  test('pool, client, method and call levels cascade, most specific first', () => {
    const pool = mergePolicy(POLICY_DEFAULTS, checkPolicy('', { deadlineMs: 8_000 }));
    const client = mergePolicy(pool, checkPolicy('', { idempotent: true }));
    const method = mergePolicy(client, checkPolicy('methods.Echo.', { deadlineMs: 2_000 }));
    expect(method).toEqual({ deadlineMs: 2_000, idempotent: true, retry: {} });
    expect(prepare(undefined, method).deadline).toBe(NOW + 2_000);
    expect(prepare({ deadlineMs: 50 }, method).policy).toEqual({ deadlineMs: 50, idempotent: true, retry: {} });
    expect(prepare({ idempotent: false }, method).policy).toEqual({ deadlineMs: 2_000, idempotent: false, retry: {} });
    expect(prepare(undefined, mergePolicy(POLICY_DEFAULTS, {})).deadline).toBe(NOW + 10_000);
  });

  test('deadline and deadlineMs on one call are refused', () => {
    const error = thrown(() => prepare({ deadline: NOW + 5_000, deadlineMs: 100 }));
    expect(error).toBeInstanceOf(TypeError);
    expect(error.code).toBe(3);
    expect(error.option).toBe('deadline');
    expect(error.message).toContain('deadline (absolute) and deadlineMs (relative) were both set');
  });

  test('an absolute deadline is validated (5000 is not "5 s from now")', () => {
    const error = thrown(() => prepare({ deadline: 5_000 }));
    expect(error).toBeInstanceOf(RangeError);
    expect(error.option).toBe('deadline');
  });

  test('a bad call deadlineMs is refused before anything else', () => {
    const error = thrown(() => prepare({ deadlineMs: 0 }));
    expect(error).toBeInstanceOf(RangeError);
    expect(error.option).toBe('deadlineMs');
  });
});

describe('prepareCall: parent deadline', () => {
  test('an earlier parent deadline wins over the call own deadline', () => {
    expect(prepare({ parent: parentWithDeadline(NOW + 100) }).deadline).toBe(NOW + 100);
    expect(prepare({ deadlineMs: 500, parent: parentWithDeadline(new Date(NOW + 100)) }).deadline).toBe(NOW + 100);
    expect(prepare({ deadline: NOW + 500, parent: parentWithDeadline(NOW + 100) }).deadline).toBe(NOW + 100);
  });

  test('a later parent deadline leaves the call own deadline in place', () => {
    expect(prepare({ parent: parentWithDeadline(NOW + 60_000) }).deadline).toBe(NOW + 1_000);
    expect(prepare({ deadlineMs: 200, parent: parentWithDeadline(new Date(NOW + 60_000)) }).deadline).toBe(NOW + 200);
  });

  test('a parent without deadline (Infinity) leaves the call finite', () => {
    const prepared = prepare({ parent: parentWithDeadline(Infinity) });
    expect(prepared.deadline).toBe(NOW + 1_000);
    expect(Number.isFinite(prepared.deadline)).toBe(true);
  });

  test('an already expired parent deadline is kept, so the call fails fast instead of outliving it', () => {
    expect(prepare({ parent: parentWithDeadline(NOW - 10) }).deadline).toBe(NOW - 10);
  });

  test('the parent is returned for cancellation propagation', () => {
    const parent = parentWithDeadline(Infinity);
    expect(prepare({ parent }).parent).toBe(parent);
  });

  test('something that is not a server call is refused as parent', () => {
    const error = thrown(() => prepare({ parent: { getDeadline: () => NOW } }));
    expect(error).toBeInstanceOf(TypeError);
    expect(error.option).toBe('parent');
    expect(error.message).toContain('a grpc-js server call');
  });
});

describe('prepareCall: other options', () => {
  test('an unknown option is refused and the known ones are listed', () => {
    const error = thrown(() => prepare({ timeout: 500 }));
    expect(error).toBeInstanceOf(TypeError);
    expect(error.code).toBe(3);
    expect(error.option).toBe('CallOptions.timeout');
    expect(error.message).toBe(
      'resilient-grpc: CallOptions.timeout must be one of the known options ' +
        '(deadlineMs, idempotent, retry, deadline, signal, metadata, parent, onHeader, onTrailer, ' +
        'interceptors, interceptor_providers, waitForReady, credentials), got an unknown option',
    );
  });

  test('a near miss of a known option gets a "did you mean"', () => {
    expect(thrown(() => prepare({ deadlineMS: 5 })).message).toMatch(/got an unknown option; did you mean deadlineMs\?$/);
    expect(thrown(() => prepare({ waitforready: true })).message).toMatch(/did you mean waitForReady\?$/);
    expect(thrown(() => prepare({ interceptor: [] })).message).toMatch(/did you mean interceptors\?$/);
    expect(thrown(() => prepare({ timeout: 5 })).message).not.toContain('did you mean');
  });

  test('grpc-js call options that the pool does not carry are refused by name, with why and what to use', () => {
    const host = thrown(() => prepare({ host: 'other' }));
    expect(host).toBeInstanceOf(TypeError);
    expect(host.option).toBe('CallOptions.host');
    expect(host.code).toBe(3);
    expect(host.message).toContain('grpc.default_authority');
    const flags = thrown(() => prepare({ propagate_flags: 0xffff }));
    expect(flags.option).toBe('CallOptions.propagate_flags');
    expect(flags.message).toContain("inherits the parent's deadline");
  });

  test('options must be an object', () => {
    for (const bad of [null, 500, 'fast', [1]]) {
      const error = thrown(() => prepare(bad));
      expect(error).toBeInstanceOf(TypeError);
      expect(error.option).toBe('CallOptions');
    }
  });

  test('idempotent must be a boolean', () => {
    const error = thrown(() => prepare({ idempotent: 'yes' }));
    expect(error).toBeInstanceOf(TypeError);
    expect(error.option).toBe('idempotent');
    expect(error.message).toContain('got "yes"');
  });

  test('a call retry option merges field by field over the method policy', () => {
    expect(prepare({ retry: { maxAttempts: 5 } }).policy.retry).toEqual({ initialDelayMs: 50, maxAttempts: 5 });
    // `undefined` fields are "not set" and keep the method's value.
    expect(prepare({ retry: { initialDelayMs: undefined, maxAttempts: 2 } }).policy.retry).toEqual({ initialDelayMs: 50, maxAttempts: 2 });
    expect(prepare({ retry: false }).policy.retry).toBe(false);
    // Retries turned off for the method come back on, from the defaults, with a call-level object.
    expect(prepare({ retry: { maxAttempts: 4 } }, { ...METHOD_POLICY, retry: false }).policy.retry).toEqual({ maxAttempts: 4 });
    // `retry: undefined` leaves the method policy as it is.
    expect(prepare({ retry: undefined }).policy).toEqual(METHOD_POLICY);
  });

  test('a bad call retry option is refused and named', () => {
    const error = thrown(() => prepare({ retry: { maxAttempts: 0 } }));
    expect(error).toBeInstanceOf(RangeError);
    expect(error.code).toBe(3);
    expect(error.option).toBe('retry.maxAttempts');
    expect(thrown(() => prepare({ retry: true })).option).toBe('retry');
    expect(thrown(() => prepare({ retry: { attempts: 3 } })).option).toBe('retry.attempts');
  });

  test('an AbortSignal is passed through, an AbortController is refused', () => {
    const controller = new AbortController();
    expect(prepare({ signal: controller.signal }).signal).toBe(controller.signal);
    const error = thrown(() => prepare({ signal: controller }));
    expect(error).toBeInstanceOf(TypeError);
    expect(error.option).toBe('signal');
    expect(error.message).toContain('an instance of AbortController');
  });
});

describe('metadata', () => {
  test('a plain object becomes Metadata, -bin keys take Buffers, arrays add several values', () => {
    const bin = Buffer.from([0, 1, 2, 255]);
    const metadata = toMetadata({ authorization: 'Bearer abc', 'trace-bin': bin, 'x-multi': ['a', 'b'] });
    expect(metadata).toBeInstanceOf(Metadata);
    expect(metadata.get('authorization')).toEqual(['Bearer abc']);
    expect(metadata.get('trace-bin')).toEqual([bin]);
    expect(metadata.get('x-multi')).toEqual(['a', 'b']);
  });

  test('prepareCall builds the metadata from the call options', () => {
    expect(prepare({ metadata: { 'x-request-id': 'r1' } }).metadata.get('x-request-id')).toEqual(['r1']);
  });

  test('a Metadata instance is used as is', () => {
    const metadata = new Metadata();
    metadata.set('x-a', '1');
    expect(toMetadata(metadata)).toBe(metadata);
    expect(prepare({ metadata }).metadata).toBe(metadata);
  });

  test.each(['Authorization', 'x token', 'x:y', 'ü', ''])('a bad key %j is refused and named', (key) => {
    const error = thrown(() => toMetadata({ [key]: 'v' }));
    expect(error).toBeInstanceOf(TypeError);
    expect(error.code).toBe(3);
    expect(error.option).toBe('metadata key');
    expect(error.message).toContain(JSON.stringify(key));
  });

  test('metadata must be an object', () => {
    for (const bad of [42, null, [['a', 'b']]]) {
      const error = thrown(() => toMetadata(bad as never));
      expect(error).toBeInstanceOf(TypeError);
      expect(error.option).toBe('metadata');
    }
  });

  // Values often carry credentials: a rejected value must not reach logs through the error.
  const SECRET = 'sk_live_4eC39HqLyjWDarjtT1zdp7dc';
  test.each([
    ['a string with a newline', { authorization: `Bearer ${SECRET}\n` }, 'metadata["authorization"]', 'a string (value hidden)'],
    ['a non-ASCII string', { authorization: `Bearer ${SECRET}é` }, 'metadata["authorization"]', 'a string (value hidden)'],
    ['a Buffer under a text key', { authorization: Buffer.from(SECRET) }, 'metadata["authorization"]', 'a Buffer (value hidden)'],
    ['a string under a -bin key', { 'token-bin': SECRET }, 'metadata["token-bin"]', 'a string (value hidden)'],
    ['a bad value inside an array', { authorization: ['ok', `${SECRET}\r`] }, 'metadata["authorization"]', 'a string (value hidden)'],
  ])('a bad value (%s) is refused without echoing it', (_label, init, option, got) => {
    const error = thrown(() => prepare({ metadata: init }));
    expect(error).toBeInstanceOf(TypeError);
    expect(error.code).toBe(3);
    expect(error.option).toBe(option);
    expect(error.message).toContain(`got ${got}`);
    expect(error.message).not.toContain(SECRET);
    expect(error.stack ?? '').not.toContain(SECRET);
    expect(JSON.stringify(error)).not.toContain(SECRET);
    expect(inspect(error, { depth: Infinity, showHidden: true })).not.toContain(SECRET);
    expect(error.cause).toBeUndefined();
  });

  // `metadata: token` instead of `metadata: { authorization: token }`: the string is likely a
  // credential, so it is described, not echoed.
  test('a string passed as the whole metadata is not echoed either', () => {
    const error = thrown(() => prepare({ metadata: `Bearer ${SECRET}` }));
    expect(error).toBeInstanceOf(TypeError);
    expect(error.code).toBe(3);
    expect(error.option).toBe('metadata');
    expect(error.message).toContain('got a string (value hidden)');
    expect(error.message).not.toContain(SECRET);
    expect(error.message).not.toContain('Bearer');
    expect(inspect(error, { depth: Infinity, showHidden: true })).not.toContain(SECRET);
  });
});

describe('prepareCall: waitForReady, credentials, interceptors', () => {
  const callCredentials = credentials.createFromMetadataGenerator((_params, callback) => callback(null, new Metadata()));
  const logging: Interceptor = (options, nextCall) => new InterceptingCall(nextCall(options));

  test("waitForReady goes into the metadata options grpc-js reads, never into the caller's own Metadata", () => {
    expect(prepare({ waitForReady: true }).metadata.getOptions().waitForReady).toBe(true);
    const own = new Metadata({ waitForReady: true });
    const prepared = prepare({ metadata: own, waitForReady: false });
    expect(prepared.metadata).not.toBe(own);
    expect(prepared.callerMetadata).toBe(false);
    expect(prepared.metadata.getOptions().waitForReady).toBe(false);
    expect(own.getOptions().waitForReady).toBe(true);
    // Unset, a Metadata's own option stands (as in grpc-js), and the object is used as is.
    expect(prepare({ metadata: own }).metadata).toBe(own);
  });

  test('waitForReady must be a boolean', () => {
    const error = thrown(() => prepare({ waitForReady: 'yes' }));
    expect(error).toBeInstanceOf(TypeError);
    expect(error.message).toBe('resilient-grpc: waitForReady must be a boolean, got "yes"');
  });

  test('credentials must be call credentials; channel credentials are pointed to the client', () => {
    expect(prepare({ credentials: callCredentials }).credentials).toBe(callCredentials);
    expect(thrown(() => prepare({ credentials: {} })).option).toBe('credentials');
    const channel = thrown(() => prepare({ credentials: credentials.createInsecure() }));
    expect(channel).toBeInstanceOf(TypeError);
    expect(channel.message).toContain('these are channel credentials: they go in pool.client() options');
  });

  test('interceptors: kept per call (a copy), none when unset or empty', () => {
    const list = [logging];
    const prepared = prepare({ interceptors: list });
    expect(prepared.interceptors).toEqual([logging]);
    expect(prepared.interceptors).not.toBe(list);
    expect(prepare({}).interceptors).toBeUndefined();
    expect(prepare({ interceptors: [] }).interceptors).toBeUndefined();
  });

  test('interceptor_providers are asked once, with the method definition', () => {
    const seen: unknown[] = [];
    const method = { names: ['Get'], path: '/p.S/Get', kind: 'unary', definition: { path: '/p.S/Get' } } as unknown as MethodInfo;
    const prepared = prepareCall(
      METHOD_POLICY,
      {
        interceptor_providers: [
          (definition) => {
            seen.push(definition);
            return logging;
          },
          () => undefined as unknown as Interceptor,
        ],
      },
      NOW,
      method,
    );
    expect(prepared.interceptors).toEqual([logging]);
    expect(seen).toEqual([method.definition]);
  });

  test('a provider that throws: the call fails with INTERNAL, the thrown error as cause', () => {
    const bug = new Error('no tenant');
    const method = { path: '/p.S/Get', definition: { path: '/p.S/Get' } } as unknown as MethodInfo;
    const error = thrown(() =>
      prepareCall(
        METHOD_POLICY,
        {
          interceptor_providers: [
            () => {
              throw bug;
            },
          ],
        },
        NOW,
        method,
      ),
    );
    expect(error).toMatchObject({ code: 13, message: 'resilient-grpc: interceptor_providers[0] threw for /p.S/Get: no tenant' });
    expect(error.cause).toBe(bug);
  });

  test('bad interceptors are refused by option and index, before any call', () => {
    const notArray = thrown(() => prepare({ interceptors: logging }));
    expect(notArray).toBeInstanceOf(TypeError);
    expect(notArray.option).toBe('interceptors');
    const item = thrown(() => prepare({ interceptors: [logging, { intercept: true }] }));
    expect(item.option).toBe('interceptors[1]');
    expect(item.message).toBe(
      'resilient-grpc: interceptors[1] must be a grpc-js Interceptor: (options, nextCall) => InterceptingCall, got an object',
    );
    expect(thrown(() => prepare({ interceptor_providers: ['x'] })).option).toBe('interceptor_providers[0]');
    const both = thrown(() => prepare({ interceptors: [logging], interceptor_providers: [() => logging] }));
    expect(both.option).toBe('interceptor_providers');
    expect(both.message).toContain('grpc-js allows one of the two per level');
  });
});
