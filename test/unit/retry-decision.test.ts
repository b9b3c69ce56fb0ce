import { Metadata, status } from '@grpc/grpc-js';
import { describe, expect, test } from 'vitest';
import { MAX_TIMER_MS, mergeSwitchable } from '../../src/config/check-helpers.js';
import { checkRetryOptions, RETRY_DEFAULTS, type RetryOptions } from '../../src/config/retry-options.js';
import { backoffDelayMs, NO_RETRY, readPushback, resolveRetry, retryVerdict } from '../../src/call/retry-decision.js';
import { grpcOwnsRetries, serviceConfigHasRetries } from '../../src/channel/service-config.js';
import { resendsAfterReplacement } from '../../src/call/retry-decision.js';
import { thrown } from '../helpers/thrown.js';

const mergeRetry = mergeSwitchable<RetryOptions>;

function trailers(pushback?: string): Metadata {
  const metadata = new Metadata();
  if (pushback !== undefined) metadata.set('grpc-retry-pushback-ms', pushback);
  return metadata;
}

/**
 * When a status is retried under the default policy (`retry: {}`):
 * - never: not retried, whatever the trailers say;
 * - always: retried;
 * - timed-out: retried only when the attempt hit its own per-attempt timeout;
 * - pushback: retried only when the server sent a valid `grpc-retry-pushback-ms`.
 */
type Rule = 'never' | 'always' | 'timed-out' | 'pushback';

// Written out per code rather than derived from the source, so a change of the defaults shows here.
const TABLE: ReadonlyArray<[name: keyof typeof status, code: number, notIdempotent: Rule, idempotent: Rule]> = [
  ['OK', 0, 'never', 'never'],
  ['CANCELLED', 1, 'never', 'never'],
  ['UNKNOWN', 2, 'never', 'always'],
  ['INVALID_ARGUMENT', 3, 'never', 'never'],
  ['DEADLINE_EXCEEDED', 4, 'never', 'timed-out'],
  ['NOT_FOUND', 5, 'never', 'never'],
  ['ALREADY_EXISTS', 6, 'never', 'never'],
  ['PERMISSION_DENIED', 7, 'never', 'never'],
  ['RESOURCE_EXHAUSTED', 8, 'pushback', 'pushback'],
  ['FAILED_PRECONDITION', 9, 'never', 'never'],
  ['ABORTED', 10, 'never', 'always'],
  ['OUT_OF_RANGE', 11, 'never', 'never'],
  ['UNIMPLEMENTED', 12, 'never', 'never'],
  ['INTERNAL', 13, 'never', 'always'],
  ['UNAVAILABLE', 14, 'always', 'always'],
  ['DATA_LOSS', 15, 'never', 'never'],
  ['UNAUTHENTICATED', 16, 'never', 'never'],
];

const CASES = TABLE.flatMap(([name, code, notIdempotent, idempotent]) => [
  { name, code, idempotent: false, rule: notIdempotent },
  { name, code, idempotent: true, rule: idempotent },
]);

describe('retryVerdict under the default policy: every status code', () => {
  test('the table covers the 17 gRPC status codes, 0 to 16', () => {
    expect(TABLE.map(([, code]) => code)).toEqual([...Array(17).keys()]);
    for (const [name, code] of TABLE) expect(status[name]).toBe(code);
  });

  test.each(CASES)('$name ($code), idempotent $idempotent: $rule', ({ code, idempotent, rule }) => {
    const policy = resolveRetry({}, idempotent);
    const retried = { retry: true, pushbackMs: undefined };
    const refused = { retry: false, reason: 'not-retryable' };

    // No trailers, the attempt did not hit its own timeout.
    expect(retryVerdict(policy, code, undefined, false)).toEqual(rule === 'always' ? retried : refused);
    expect(retryVerdict(policy, code, trailers(), false)).toEqual(rule === 'always' ? retried : refused);
    // No trailers, the attempt hit its own per-attempt timeout.
    expect(retryVerdict(policy, code, undefined, true)).toEqual(rule === 'always' || rule === 'timed-out' ? retried : refused);
    // A valid pushback: the wait comes from the server; it never makes a non-retryable code retryable.
    const withPushback = retryVerdict(policy, code, trailers('250'), false);
    expect(withPushback).toEqual(rule === 'always' || rule === 'pushback' ? { retry: true, pushbackMs: 250 } : refused);
    // A pushback of "do not retry" wins over every code.
    expect(retryVerdict(policy, code, trailers('-1'), true)).toEqual({ retry: false, reason: 'pushback-stop' });
  });
});

describe('retryVerdict: pushback trailer', () => {
  const policy = resolveRetry({}, false);

  test.each([
    ['250', 250],
    ['0', 0],
  ])('%j waits %d ms before retrying UNAVAILABLE', (raw, ms) => {
    expect(retryVerdict(policy, status.UNAVAILABLE, trailers(raw), false)).toEqual({ retry: true, pushbackMs: ms });
    expect(readPushback(trailers(raw))).toBe(ms);
  });

  test.each(['-1', 'abc', '1.5', '', '1e3', '0x10', '12abc'])('%j means "do not retry", even UNAVAILABLE', (raw) => {
    expect(readPushback(trailers(raw))).toBe('stop');
    expect(retryVerdict(policy, status.UNAVAILABLE, trailers(raw), false)).toEqual({ retry: false, reason: 'pushback-stop' });
    expect(retryVerdict(resolveRetry({}, true), status.ABORTED, trailers(raw), false)).toEqual({ retry: false, reason: 'pushback-stop' });
  });

  test('RESOURCE_EXHAUSTED with a malformed pushback is not retried', () => {
    expect(retryVerdict(policy, status.RESOURCE_EXHAUSTED, trailers('soon'), false).retry).toBe(false);
  });

  test('no trailer, or trailers without the key: no pushback', () => {
    expect(readPushback(undefined)).toBeUndefined();
    expect(readPushback(trailers())).toBeUndefined();
    const other = new Metadata();
    other.set('retry-after', '5');
    expect(readPushback(other)).toBeUndefined();
  });

  test('a huge pushback is capped to what a timer can wait (a longer setTimeout would fire at once)', () => {
    expect(readPushback(trailers('9999999999'))).toBe(MAX_TIMER_MS);
    expect(retryVerdict(policy, status.UNAVAILABLE, trailers('9999999999'), false)).toEqual({ retry: true, pushbackMs: MAX_TIMER_MS });
  });

  test('only the first value counts when the server sends several', () => {
    const metadata = trailers('100');
    metadata.add('grpc-retry-pushback-ms', '-1');
    expect(readPushback(metadata)).toBe(100);
  });
});

describe('retryVerdict with custom retryableCodes', () => {
  test('retryableCodes replace the default list; idempotent methods still add their extra codes', () => {
    const policy = resolveRetry({ retryableCodes: [status.DATA_LOSS] }, false);
    expect(retryVerdict(policy, status.DATA_LOSS, undefined, false).retry).toBe(true);
    expect(retryVerdict(policy, status.UNAVAILABLE, undefined, false).retry).toBe(false);
    const idempotent = resolveRetry({ retryableCodes: [status.DATA_LOSS] }, true);
    expect([...idempotent.retryableCodes].sort((a, b) => a - b)).toEqual([2, 4, 10, 13, 15]);
    expect(retryVerdict(idempotent, status.ABORTED, undefined, false).retry).toBe(true);
  });

  test('DEADLINE_EXCEEDED listed for a non-idempotent method is still retried only after a per-attempt timeout', () => {
    const policy = resolveRetry({ retryableCodes: [status.DEADLINE_EXCEEDED], perAttemptTimeoutMs: 100 }, false);
    expect(retryVerdict(policy, status.DEADLINE_EXCEEDED, undefined, true).retry).toBe(true);
    expect(retryVerdict(policy, status.DEADLINE_EXCEEDED, undefined, false).retry).toBe(false);
  });

  // With retries off nothing is retryable, so failures never take retry-throttling tokens
  // from the channel's budget (RESOURCE_EXHAUSTED with pushback included).
  test('retries turned off (NO_RETRY) never give a retry verdict, RESOURCE_EXHAUSTED with pushback included', () => {
    const off = resolveRetry(false, true);
    for (const [, code] of TABLE) {
      expect(retryVerdict(off, code, trailers('250'), true)).toEqual({ retry: false, reason: 'not-retryable' });
    }
  });
});

describe('backoffDelayMs: full jitter', () => {
  const policy = resolveRetry({}, false); // 100 ms initial, 2000 ms cap
  const ALMOST_ONE = 1 - Number.EPSILON;

  test.each([
    // retry, ceiling = min(2000, 100 * 2^(retry-1))
    [1, 100],
    [2, 200],
    [3, 400],
    [4, 800],
    [5, 1_600],
    [6, 2_000],
    [9, 2_000],
    [30, 2_000],
    [200, 2_000],
  ])('retry %d waits from 0 up to (not including) %d ms', (retry, ceiling) => {
    expect(backoffDelayMs(policy, retry, () => 0)).toBe(0);
    expect(backoffDelayMs(policy, retry, () => 0.5)).toBe(ceiling / 2);
    expect(backoffDelayMs(policy, retry, () => ALMOST_ONE)).toBe(ceiling - 1);
  });

  test('the delay is a whole number of ms within [0, ceiling) for any random value', () => {
    for (let i = 0; i <= 100; i++) {
      const random = Math.min(i / 100, ALMOST_ONE);
      for (const retry of [1, 3, 7]) {
        const delay = backoffDelayMs(policy, retry, () => random);
        expect(Number.isInteger(delay)).toBe(true);
        expect(delay).toBeGreaterThanOrEqual(0);
        expect(delay).toBeLessThan(Math.min(2_000, 100 * 2 ** (retry - 1)));
      }
    }
  });

  test('custom delays: the cap applies as soon as the doubling passes it', () => {
    const custom = resolveRetry({ initialDelayMs: 10, maxDelayMs: 15 }, false);
    expect(backoffDelayMs(custom, 1, () => ALMOST_ONE)).toBe(9);
    expect(backoffDelayMs(custom, 2, () => ALMOST_ONE)).toBe(14);
    expect(backoffDelayMs(custom, 8, () => ALMOST_ONE)).toBe(14);
    const zero = resolveRetry({ initialDelayMs: 0 }, false);
    expect(backoffDelayMs(zero, 9, () => ALMOST_ONE)).toBe(0);
  });
});

describe('resolveRetry', () => {
  test('defaults: 3 attempts, 100 ms to 2 s, UNAVAILABLE only, no per-attempt timeout', () => {
    expect(resolveRetry({}, false)).toEqual({
      maxAttempts: 3,
      initialDelayMs: 100,
      maxDelayMs: 2_000,
      retryableCodes: new Set([status.UNAVAILABLE]),
      perAttemptTimeoutMs: undefined,
    });
    expect(RETRY_DEFAULTS.maxAttempts).toBe(3);
  });

  test('idempotent methods add ABORTED, INTERNAL, UNKNOWN and DEADLINE_EXCEEDED', () => {
    expect(resolveRetry({}, true).retryableCodes).toEqual(
      new Set([status.UNAVAILABLE, status.ABORTED, status.INTERNAL, status.UNKNOWN, status.DEADLINE_EXCEEDED]),
    );
  });

  test('false gives one attempt and no retryable code', () => {
    expect(resolveRetry(false, false).maxAttempts).toBe(1);
    expect(resolveRetry(false, true).maxAttempts).toBe(1);
    expect(resolveRetry(false, true).retryableCodes.size).toBe(0);
    expect(resolveRetry(false, true)).toBe(NO_RETRY);
  });

  test('set fields win over the defaults', () => {
    const resolved = resolveRetry({ maxAttempts: 5, initialDelayMs: 20, maxDelayMs: 300, perAttemptTimeoutMs: 250 }, false);
    expect(resolved).toMatchObject({ maxAttempts: 5, initialDelayMs: 20, maxDelayMs: 300, perAttemptTimeoutMs: 250 });
  });

  test('resolving does not change the defaults for the next call', () => {
    resolveRetry({ retryableCodes: [status.ABORTED] }, true);
    expect(resolveRetry({}, false).retryableCodes).toEqual(new Set([status.UNAVAILABLE]));
  });
});

describe('mergeRetry: the cascade', () => {
  test('undefined keeps the upper level', () => {
    const upper: RetryOptions = { maxAttempts: 5 };
    expect(mergeRetry(upper, undefined)).toBe(upper);
    expect(mergeRetry(false, undefined)).toBe(false);
  });

  test('false turns retries off', () => {
    expect(mergeRetry({ maxAttempts: 5 }, false)).toBe(false);
    expect(resolveRetry(mergeRetry({ maxAttempts: 5 }, false), true).maxAttempts).toBe(1);
  });

  test('an object over false starts from the defaults', () => {
    const merged = mergeRetry(false, { initialDelayMs: 50 });
    expect(merged).toEqual({ initialDelayMs: 50 });
    expect(resolveRetry(merged, false)).toMatchObject({ maxAttempts: 3, initialDelayMs: 50, maxDelayMs: 2_000 });
    expect(resolveRetry(mergeRetry(false, {}), false).maxAttempts).toBe(3);
  });

  test('fields merge one by one; an undefined field keeps the upper value', () => {
    const upper: RetryOptions = { maxAttempts: 5, initialDelayMs: 20 };
    expect(mergeRetry(upper, { maxAttempts: undefined })).toEqual({ maxAttempts: 5, initialDelayMs: 20 });
    expect(mergeRetry(upper, { maxAttempts: 2 })).toEqual({ maxAttempts: 2, initialDelayMs: 20 });
    expect(mergeRetry(upper, { maxDelayMs: 100 })).toEqual({ maxAttempts: 5, initialDelayMs: 20, maxDelayMs: 100 });
    expect(upper).toEqual({ maxAttempts: 5, initialDelayMs: 20 });
  });

  test('pool, client, method and call levels', () => {
    const pool = mergeRetry({}, { maxAttempts: 4 });
    const client = mergeRetry(pool, false);
    const method = mergeRetry(client, { perAttemptTimeoutMs: 100 });
    const call = mergeRetry(method, { maxAttempts: undefined, initialDelayMs: 5 });
    // The client turned retries off; the method turned them back on from the defaults.
    expect(resolveRetry(call, false)).toMatchObject({ maxAttempts: 3, initialDelayMs: 5, perAttemptTimeoutMs: 100 });
  });
});

describe('checkRetryOptions', () => {
  test('false, undefined and valid objects are returned as given', () => {
    expect(checkRetryOptions('retry', false)).toBe(false);
    expect(checkRetryOptions('retry', undefined)).toBeUndefined();
    const valid: RetryOptions = {
      maxAttempts: 10,
      initialDelayMs: 0,
      maxDelayMs: 5_000,
      retryableCodes: [status.UNAVAILABLE, status.ABORTED, status.DATA_LOSS],
      perAttemptTimeoutMs: 300,
    };
    expect(checkRetryOptions('retry', valid)).toBe(valid);
    expect(checkRetryOptions('retry', {})).toEqual({});
    expect(checkRetryOptions('retry', { maxAttempts: 1 })).toEqual({ maxAttempts: 1 });
    expect(checkRetryOptions('retry', { maxAttempts: undefined })).toEqual({ maxAttempts: undefined });
  });

  test.each([true, null, 3, 'on', [{ maxAttempts: 3 }]])('retry %j is refused', (value) => {
    const error = thrown(() => checkRetryOptions('retry', value));
    expect(error).toBeInstanceOf(TypeError);
    expect(error.code).toBe(3);
    expect(error.option).toBe('retry');
  });

  test.each([
    [0, RangeError, 'got 0'],
    [11, RangeError, 'got 11'],
    [1.5, RangeError, 'got 1.5'],
    [NaN, RangeError, 'got NaN'],
    [Infinity, RangeError, 'got Infinity'],
    ['3', TypeError, 'got "3"'],
  ])('maxAttempts %j is refused', (value, kind, got) => {
    const error = thrown(() => checkRetryOptions('retry', { maxAttempts: value }));
    expect(error).toBeInstanceOf(kind);
    expect(error.code).toBe(3);
    expect(error.option).toBe('retry.maxAttempts');
    expect(error.message).toContain('an integer from 1 to 10');
    expect(error.message).toContain(got);
  });

  test.each([
    ['initialDelayMs', -1, RangeError],
    ['initialDelayMs', Infinity, RangeError],
    ['initialDelayMs', NaN, TypeError],
    ['initialDelayMs', '100', TypeError],
    ['maxDelayMs', -5, RangeError],
    ['maxDelayMs', 2 ** 31, RangeError],
    ['maxDelayMs', null, TypeError],
    ['perAttemptTimeoutMs', 0, RangeError],
    ['perAttemptTimeoutMs', -1, RangeError],
    ['perAttemptTimeoutMs', '1s', TypeError],
  ])('%s %j is refused', (key, value, kind) => {
    const error = thrown(() => checkRetryOptions('methods.Echo.retry', { [key]: value }));
    expect(error).toBeInstanceOf(kind);
    expect(error.code).toBe(3);
    expect(error.option).toBe(`methods.Echo.retry.${key}`);
  });

  test('an unknown key is refused and the known ones are listed', () => {
    const error = thrown(() => checkRetryOptions('retry', { maxAttempts: 3, maxBackoff: '1s' }));
    expect(error).toBeInstanceOf(TypeError);
    expect(error.option).toBe('retry.maxBackoff');
    expect(error.message).toBe(
      'resilient-grpc: retry.maxBackoff must be one of the known options ' +
        '(maxAttempts, initialDelayMs, maxDelayMs, retryableCodes, perAttemptTimeoutMs), got an unknown option',
    );
  });

  test.each([
    [[status.CANCELLED], 'CANCELLED (1)'],
    [[status.UNAVAILABLE, status.INVALID_ARGUMENT], 'INVALID_ARGUMENT (3)'],
    [[status.NOT_FOUND], 'NOT_FOUND (5)'],
    [[status.OK], 'OK (0)'],
    [[99], 'UNKNOWN_CODE_99 (99)'],
  ])('retryableCodes %j is refused, naming the code', (codes, shown) => {
    const error = thrown(() => checkRetryOptions('retry', { retryableCodes: codes }));
    expect(error).toBeInstanceOf(RangeError);
    expect(error.code).toBe(3);
    expect(error.option).toBe('retry.retryableCodes');
    expect(error.message).toMatch(/^resilient-grpc: retry\.retryableCodes must be made of codes a server sends for transient failures: /);
    expect(error.message).toContain(`got ${shown}`);
    // The allowed codes are listed by name.
    expect(error.message).toContain('UNAVAILABLE (14)');
  });

  test('a status name as a string is refused, not looked up', () => {
    const numeric = thrown(() => checkRetryOptions('retry', { retryableCodes: ['14'] }));
    expect(numeric.option).toBe('retry.retryableCodes');
    expect(numeric.message).toContain('got "14"');
    const named = thrown(() => checkRetryOptions('retry', { retryableCodes: ['UNAVAILABLE'] }));
    expect(named.option).toBe('retry.retryableCodes');
    expect(named.message).toContain('got "UNAVAILABLE"');
  });

  test('retryableCodes must be an array', () => {
    const error = thrown(() => checkRetryOptions('retry', { retryableCodes: status.UNAVAILABLE }));
    expect(error).toBeInstanceOf(TypeError);
    expect(error.option).toBe('retry.retryableCodes');
    expect(error.message).toContain('an array of numeric gRPC status codes');
  });
});

describe('serviceConfigHasRetries', () => {
  const name = [{ service: 'users.v1.UserService' }];

  test('a retryPolicy or a hedgingPolicy in any methodConfig: grpc-js owns retries', () => {
    const retry = { maxAttempts: 3, initialBackoff: '0.1s', maxBackoff: '1s', backoffMultiplier: 2, retryableStatusCodes: ['UNAVAILABLE'] };
    expect(serviceConfigHasRetries(JSON.stringify({ methodConfig: [{ name, retryPolicy: retry }] }))).toBe(true);
    expect(serviceConfigHasRetries(JSON.stringify({ methodConfig: [{ name, hedgingPolicy: { maxAttempts: 2 } }] }))).toBe(true);
    expect(
      serviceConfigHasRetries(
        JSON.stringify({
          methodConfig: [
            { name, timeout: '1s' },
            { name, retryPolicy: retry },
          ],
        }),
      ),
    ).toBe(true);
  });

  test('no retry or hedging policy: ours apply', () => {
    expect(serviceConfigHasRetries(JSON.stringify({ loadBalancingConfig: [{ round_robin: {} }] }))).toBe(false);
    expect(serviceConfigHasRetries(JSON.stringify({ methodConfig: [{ name, timeout: '1s' }] }))).toBe(false);
    expect(serviceConfigHasRetries('{}')).toBe(false);
  });

  test.each(['{"methodConfig": [', 'not json', '', 'null'])('malformed config %j: false (grpc-js reports it itself)', (config) => {
    expect(serviceConfigHasRetries(config)).toBe(false);
  });

  test.each([undefined, 1, { methodConfig: [{ retryPolicy: {} }] }])('a non-string value %j: false', (config) => {
    expect(serviceConfigHasRetries(config)).toBe(false);
  });
});

describe('grpcOwnsRetries: one retry owner for every target form', () => {
  const retrying = JSON.stringify({
    methodConfig: [
      {
        name: [{ service: 'users.v1.UserService' }],
        retryPolicy: {
          maxAttempts: 3,
          initialBackoff: '0.1s',
          maxBackoff: '1s',
          backoffMultiplier: 2,
          retryableStatusCodes: ['UNAVAILABLE'],
        },
      },
    ],
  });

  // Found by this test (fixed): an xDS route retry policy of 2 retries under our 3 attempts made
  // 9 attempts on the wire, and grpcOwnsRetries stayed false.
  test.each(['xds:listener1', 'xds:///listener1', 'xds://control.example/listener1', 'XDS:///listener1'])(
    '%s: the mesh (grpc-js) owns retries',
    (target) => {
      expect(grpcOwnsRetries(target, {})).toBe(true);
    },
  );

  test.each(['h:1', 'dns:///h:1', 'ipv4:1.2.3.4:1,1.2.3.5:1', 'unix:/s', 'consul:///x'])(
    '%s without a retry policy: the pool owns retries',
    (target) => {
      expect(grpcOwnsRetries(target, {})).toBe(false);
      expect(grpcOwnsRetries(target, { 'grpc.service_config': retrying })).toBe(true);
    },
  );

  test.each(['xds:///listener1', 'h:1'])('%s with grpc.enable_retries 0: grpc-js retries nothing, the pool owns retries', (target) => {
    expect(grpcOwnsRetries(target, { 'grpc.enable_retries': 0 })).toBe(false);
    expect(grpcOwnsRetries(target, { 'grpc.enable_retries': 0, 'grpc.service_config': retrying })).toBe(false);
  });
});

describe('resendsAfterReplacement: a never-sent attempt failed by our own channel replacement', () => {
  const notRetried = { retry: false, reason: 'not-retryable' } as const;
  const fresh = { resent: false, ended: false, msLeft: 1_000 };

  test('goes once more when the retry policy does not retry it (retries off, or grpc-js owns them)', () => {
    expect(resendsAfterReplacement(notRetried, status.UNAVAILABLE, 'not-sent', 'unary', fresh)).toBe(true);
    expect(resendsAfterReplacement(notRetried, status.UNAVAILABLE, 'not-sent', 'server-stream', fresh)).toBe(true);
  });

  test('not when the policy retries it anyway: one retry, not two', () => {
    expect(resendsAfterReplacement({ retry: true, pushbackMs: undefined }, status.UNAVAILABLE, 'not-sent', 'unary', fresh)).toBe(false);
  });

  test.each(['answered', 'unknown', 'committed'] as const)('not when it may have reached a server (%s)', (reach) => {
    expect(resendsAfterReplacement(notRetried, status.UNAVAILABLE, reach, 'unary', fresh)).toBe(false);
  });

  test.each([status.DEADLINE_EXCEEDED, status.CANCELLED, status.INTERNAL])('not for another status (%i)', (code) => {
    expect(resendsAfterReplacement(notRetried, code, 'not-sent', 'unary', fresh)).toBe(false);
  });

  test.each(['client-stream', 'bidi'] as const)('not for a %s call, whose request source may be read already', (kind) => {
    expect(resendsAfterReplacement(notRetried, status.UNAVAILABLE, 'not-sent', kind, fresh)).toBe(false);
  });

  test('once per call, and not when the call was ended, the pool closes, or no time is left', () => {
    expect(resendsAfterReplacement(notRetried, status.UNAVAILABLE, 'not-sent', 'unary', { ...fresh, resent: true })).toBe(false);
    expect(resendsAfterReplacement(notRetried, status.UNAVAILABLE, 'not-sent', 'unary', { ...fresh, ended: true })).toBe(false);
    expect(resendsAfterReplacement(notRetried, status.UNAVAILABLE, 'not-sent', 'unary', { ...fresh, msLeft: 0 })).toBe(false);
  });
});
