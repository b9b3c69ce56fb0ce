import { inspect } from 'node:util';
import { Metadata, status } from '@grpc/grpc-js';
import { describe, expect, test } from 'vitest';
import { PoolClosedError, StatusError, statusName } from '../../src/core/errors.js';
import { describeValue, optionError } from '../../src/core/option-error.js';

const METHOD = '/users.v1.UserService/QueryBasicInfoByID';

describe('statusName', () => {
  test.each([
    [0, 'OK'],
    [1, 'CANCELLED'],
    [3, 'INVALID_ARGUMENT'],
    [4, 'DEADLINE_EXCEEDED'],
    [8, 'RESOURCE_EXHAUSTED'],
    [14, 'UNAVAILABLE'],
    [16, 'UNAUTHENTICATED'],
  ])('%i is %s', (code, name) => {
    expect(statusName(code)).toBe(name);
    expect(status[name as keyof typeof status]).toBe(code);
  });

  test.each([17, 99, -1, 1.5])('%s is not a gRPC code', (code) => {
    expect(statusName(code)).toBe(`UNKNOWN_CODE_${code}`);
  });
});

describe('StatusError', () => {
  test('fields and message', () => {
    const error = new StatusError({
      code: status.UNAVAILABLE,
      details: 'No connection established',
      method: METHOD,
      target: 'users:50051',
    });
    expect(error).toBeInstanceOf(Error);
    expect(error).toBeInstanceOf(StatusError);
    expect(error.name).toBe('StatusError');
    expect(error.message).toBe(`14 UNAVAILABLE: No connection established (${METHOD} on users:50051)`);
    expect(error.code).toBe(14);
    expect(error.details).toBe('No connection established');
    expect(error.method).toBe(METHOD);
    expect(error.target).toBe('users:50051');
    expect(error.attempts).toBe(1);
    expect(error.metadata).toBeInstanceOf(Metadata);
    expect(error.metadata.getMap()).toEqual({});
    expect(error.cause).toBeUndefined();
    expect(String(error)).toBe(`StatusError: ${error.message}`);
    expect(error.stack).toContain('StatusError: 14 UNAVAILABLE');
  });

  test('keeps the trailers, the attempts and the grpc-js error as cause', () => {
    const trailers = new Metadata();
    trailers.set('grpc-retry-pushback-ms', '250');
    const cause = Object.assign(new Error('14 UNAVAILABLE: x'), { code: 14 });
    const error = new StatusError({ code: 14, details: 'x', metadata: trailers, method: METHOD, target: 't:1', attempts: 3, cause });
    expect(error.metadata).toBe(trailers);
    expect(error.attempts).toBe(3);
    expect(error.cause).toBe(cause);
  });

  test('an unknown code is named as such in the message', () => {
    expect(new StatusError({ code: 42, details: 'd', method: METHOD, target: 't:1' }).message).toBe(
      `42 UNKNOWN_CODE_42: d (${METHOD} on t:1)`,
    );
  });

  test('instanceof holds for an object branded by another copy of the class (ESM and CJS builds in one process)', () => {
    // A second copy of the package defines its own class but the same Symbol.for brand.
    class OtherCopyStatusError extends Error {
      constructor() {
        super('from the other build');
        Object.defineProperty(this, Symbol.for('resilient-grpc.StatusError'), { value: true });
      }
    }
    expect(new OtherCopyStatusError()).toBeInstanceOf(StatusError);
    expect(new OtherCopyStatusError() instanceof PoolClosedError).toBe(false);
  });

  test('instanceof is false without the brand, whatever the shape', () => {
    const lookalike = Object.assign(new Error('14 UNAVAILABLE'), {
      name: 'StatusError',
      code: 14,
      details: '',
      method: METHOD,
      target: 't',
    });
    expect(lookalike instanceof StatusError).toBe(false);
    expect({ [Symbol.for('resilient-grpc.StatusError')]: 'true' } instanceof StatusError).toBe(false);
    expect({ [Symbol.for('resilient-grpc.StatusErr')]: true } instanceof StatusError).toBe(false);
    for (const value of [null, undefined, 14, 'StatusError'] as unknown[]) expect(value instanceof StatusError).toBe(false);
  });

  test('the brand is not enumerable: it does not show up in logs or JSON', () => {
    const error = new StatusError({ code: 4, details: 'Deadline exceeded', method: METHOD, target: 't:1' });
    const brand = Object.getOwnPropertyDescriptor(error, Symbol.for('resilient-grpc.StatusError'));
    expect(brand).toMatchObject({ value: true, enumerable: false });
    expect(inspect(error)).not.toContain('resilient-grpc.StatusError');
    expect(JSON.parse(JSON.stringify(error))).toMatchObject({
      code: 4,
      details: 'Deadline exceeded',
      method: METHOD,
      target: 't:1',
      attempts: 1,
    });
  });
});

describe('PoolClosedError', () => {
  test('code CANCELLED (1), message with and without a method', () => {
    const plain = new PoolClosedError();
    expect(plain).toBeInstanceOf(Error);
    expect(plain).toBeInstanceOf(PoolClosedError);
    expect(plain.name).toBe('PoolClosedError');
    expect(plain.code).toBe(1);
    expect(plain.code).toBe(status.CANCELLED);
    expect(plain.method).toBeUndefined();
    expect(plain.message).toBe('the ChannelPool is closed');

    const refused = new PoolClosedError(METHOD);
    expect(refused.method).toBe(METHOD);
    expect(refused.message).toBe(`the ChannelPool is closed: ${METHOD} was not started`);
  });

  test('is not a StatusError, and a StatusError is not a PoolClosedError', () => {
    expect(new PoolClosedError() instanceof StatusError).toBe(false);
    expect(new StatusError({ code: 1, details: 'd', method: METHOD, target: 't' }) instanceof PoolClosedError).toBe(false);
  });

  test('instanceof works across copies through its own brand', () => {
    const other = Object.defineProperty(new Error('closed'), Symbol.for('resilient-grpc.PoolClosedError'), { value: true });
    expect(other).toBeInstanceOf(PoolClosedError);
  });
});

describe('optionError and describeValue', () => {
  test('TypeError or RangeError with code 3 and the option path', () => {
    const typeError = optionError('type', 'channelOptions["grpc.x"]', 'a number', {});
    expect(typeError).toBeInstanceOf(TypeError);
    expect(typeError.message).toBe('resilient-grpc: channelOptions["grpc.x"] must be a number, got an object');
    expect(typeError.code).toBe(3);
    expect(typeError.option).toBe('channelOptions["grpc.x"]');
    expect(optionError('range', 'graceMs', '>= 0', -1)).toBeInstanceOf(RangeError);
  });

  test.each([
    [null, 'null'],
    [undefined, 'undefined'],
    [true, 'true'],
    [12n, '12'],
    ['abc', '"abc"'],
    [Symbol('s'), 'Symbol(s)'],
    [function namedFn() {}, 'a function (namedFn)'],
    [() => {}, 'a function'],
    [[1, 2], 'an array'],
    [{ a: 1 }, 'an object'],
    [Object.create(null), 'an object'],
    [new Map(), 'an instance of Map'],
    [new Date(0), 'Date(1970-01-01T00:00:00.000Z)'],
  ])('describeValue(%s) is %s', (value, text) => {
    expect(describeValue(value)).toBe(text);
  });

  test('long strings are cut to 80 characters', () => {
    const long = 'x'.repeat(200);
    const text = describeValue(long);
    expect(text).toBe(JSON.stringify(`${'x'.repeat(77)}...`));
    expect(text.length).toBe(82);
  });
});
