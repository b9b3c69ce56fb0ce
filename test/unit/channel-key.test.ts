import { credentials } from '@grpc/grpc-js';
import { describe, expect, test } from 'vitest';
import { channelOptionsKey, sameCredentials } from '../../src/pool/channel-key.js';
import { DefaultCredentials, parseTarget } from '../../src/channel/target.js';
import { checkCredentials } from '../../src/config/channel-options.js';
import { thrown } from '../helpers/thrown.js';

describe('parseTarget', () => {
  test.each([
    ['localhost:50051', 'localhost:50051', false],
    ['10.0.0.7:443', '10.0.0.7:443', false],
    ['https://api.example.com', 'api.example.com:443', true],
    ['https://api.example.com/', 'api.example.com:443', true],
    ['https://api.example.com:8443', 'api.example.com:8443', true],
    ['HTTPS://Api.Example.com', 'Api.Example.com:443', true],
    ['http://h', 'h:80', false],
    ['http://h:8080', 'h:8080', false],
    ['https://[::1]', '[::1]:443', true],
    ['https://[::1]:8443', '[::1]:8443', true],
    ['dns:///users.internal:50051', 'dns:///users.internal:50051', false],
    ['ipv4:10.0.0.1:50051,10.0.0.2:50051', 'ipv4:10.0.0.1:50051,10.0.0.2:50051', false],
    ['unix:/var/run/users.sock', 'unix:/var/run/users.sock', false],
  ])('%s → %s (TLS: %s)', (input, target, isTls) => {
    expect(parseTarget(input)).toEqual({ target, isTls });
  });

  test.each([
    ['', '""'],
    [' localhost:1', '" localhost:1"'],
    ['localhost:1 ', '"localhost:1 "'],
    ['local host:1', '"local host:1"'],
    ['localhost:1\n', '"localhost:1\\n"'],
  ])('%j is refused: empty or with spaces', (input, shown) => {
    const error = thrown(() => parseTarget(input));
    expect(error).toBeInstanceOf(TypeError);
    expect(error.code).toBe(3);
    expect(error.option).toBe('target');
    expect(error.message).toBe(`resilient-grpc: target must be a non-empty string without spaces, such as "host:port", got ${shown}`);
  });

  test.each(['https://h/path', 'https://h/users.v1.UserService', 'http://h:80/x', 'https://h?x=1', 'https://h#f', 'https://'])(
    '%s is refused: a gRPC target has no path',
    (input) => {
      const error = thrown(() => parseTarget(input));
      expect(error).toBeInstanceOf(TypeError);
      expect(error.option).toBe('target');
      expect(error.message).toContain('https://host[:port] or http://host[:port] without a path');
      expect(error.message).toContain(JSON.stringify(input));
    },
  );

  test.each([
    [50051, '50051'],
    [null, 'null'],
    [undefined, 'undefined'],
    [new URL('https://h'), 'an instance of URL'],
  ])('%s is refused: not a string', (input, shown) => {
    const error = thrown(() => parseTarget(input));
    expect(error).toBeInstanceOf(TypeError);
    expect(error.option).toBe('target');
    expect(error.message).toBe(`resilient-grpc: target must be a string such as "host:port", got ${shown}`);
  });
});

describe('channelOptionsKey', () => {
  test('independent of key order', () => {
    expect(channelOptionsKey('t:1', { 'grpc.keepalive_time_ms': 10_000, 'grpc.primary_user_agent': 'svc/1' })).toBe(
      channelOptionsKey('t:1', { 'grpc.primary_user_agent': 'svc/1', 'grpc.keepalive_time_ms': 10_000 }),
    );
  });

  test('differs when a value, a key or the target differs', () => {
    const base = channelOptionsKey('t:1', { 'grpc.keepalive_time_ms': 10_000 });
    expect(channelOptionsKey('t:1', { 'grpc.keepalive_time_ms': 20_000 })).not.toBe(base);
    expect(channelOptionsKey('t:1', { 'grpc.keepalive_timeout_ms': 10_000 })).not.toBe(base);
    expect(channelOptionsKey('t:2', { 'grpc.keepalive_time_ms': 10_000 })).not.toBe(base);
    expect(channelOptionsKey('t:1', {})).not.toBe(base);
    // The number 1 and the string "1" are different channel arguments to grpc-js.
    expect(channelOptionsKey('t:1', { 'grpc.x': 1 })).not.toBe(channelOptionsKey('t:1', { 'grpc.x': '1' }));
  });

  test('an option set to undefined is the same as an option not set', () => {
    expect(channelOptionsKey('t:1', { 'grpc.x': 1, 'grpc.y': undefined })).toBe(channelOptionsKey('t:1', { 'grpc.x': 1 }));
  });

  test('keys and values cannot be spliced into each other', () => {
    expect(channelOptionsKey('t:1', { a: 'b\n"c"=1' })).not.toBe(channelOptionsKey('t:1', { a: 'b', c: 1 }));
  });

  test('object values (e.g. a channelOverride or an interceptor list) compare by identity', () => {
    const shared = { name: 'x' };
    expect(channelOptionsKey('t:1', { opt: shared })).toBe(channelOptionsKey('t:1', { opt: shared }));
    expect(channelOptionsKey('t:1', { opt: { name: 'x' } })).not.toBe(channelOptionsKey('t:1', { opt: { name: 'x' } }));
  });
});

describe('sameCredentials', () => {
  test('two createInsecure() are equal', () => {
    expect(sameCredentials(credentials.createInsecure(), credentials.createInsecure())).toBe(true);
  });

  test('two createSsl() are not equal (each has its own secure context)', () => {
    expect(sameCredentials(credentials.createSsl(), credentials.createSsl())).toBe(false);
  });

  test('the same TLS credentials object is equal to itself', () => {
    const tls = credentials.createSsl();
    expect(sameCredentials(tls, tls)).toBe(true);
  });

  test('insecure and TLS are never equal', () => {
    expect(sameCredentials(credentials.createInsecure(), credentials.createSsl())).toBe(false);
    expect(sameCredentials(credentials.createSsl(), credentials.createInsecure())).toBe(false);
  });
});

describe('DefaultCredentials', () => {
  test('one TLS and one insecure object per pool, so derived TLS channels can be shared', () => {
    const defaults = new DefaultCredentials();
    const tls = defaults.for(parseTarget('https://a.example.com'));
    expect(defaults.for(parseTarget('https://b.example.com'))).toBe(tls);
    expect(tls._isSecure()).toBe(true);
    const insecure = defaults.for(parseTarget('a:1'));
    expect(insecure._isSecure()).toBe(false);
    expect(defaults.for(parseTarget('http://b'))).toBe(insecure);
  });
});

describe('checkCredentials', () => {
  test('accepts channel credentials and undefined', () => {
    expect(() => checkCredentials(credentials.createInsecure())).not.toThrow();
    expect(() => checkCredentials(undefined)).not.toThrow();
  });

  test('call credentials are not channel credentials', () => {
    const callCreds = credentials.createFromMetadataGenerator((_params, cb) => cb(null, undefined as never));
    const error = thrown(() => checkCredentials(callCreds));
    expect(error).toBeInstanceOf(TypeError);
    expect(error.option).toBe('credentials');
    expect(error.message).toContain('server or call credentials are not channel credentials');
  });
});
