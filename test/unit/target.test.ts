import { describe, expect, test } from 'vitest';
import { isXdsRegistered, mayHaveSeveralEndpoints, parseTarget, redactTarget } from '../../src/channel/target.js';
import { thrown } from '../helpers/thrown.js';

// parseTarget's refusals of what can be known to be wrong before a channel exists, its
// pass-throughs, and which targets get endpoint tracking (mayHaveSeveralEndpoints). The basic
// shapes and the space/type/path refusals are in channel-key.test.ts.

describe('parseTarget: ports', () => {
  test.each([
    ['h:0', '"0"'],
    ['h:65536', '"65536"'],
    ['h:-1', '"-1"'],
    ['h:0x50', '"0x50"'],
    ['h:', '""'],
    ['h:123456', '"123456"'],
    ['[::1]:0', '"0"'],
    ['[::1]:', '""'],
    ['dns:///h:65536', '"65536"'],
    ['ipv4:1.2.3.4:1,1.2.3.5:0', '"0"'],
    ['https://h:0', '"0"'],
    ['http://h:99999', '"99999"'],
  ])('%s is refused: port %s is not a number from 1 to 65535', (input, shown) => {
    const error = thrown(() => parseTarget(input));
    expect(error).toBeInstanceOf(RangeError);
    expect(error.code).toBe(3);
    expect(error.option).toBe('target');
    expect(error.message).toBe(
      `resilient-grpc: target must be an address whose port is a number from 1 to 65535 (got port ${shown}), got ${JSON.stringify(input)}`,
    );
  });

  test.each([
    ['h:1', 'h:1'],
    ['h:65535', 'h:65535'],
    ['h:080', 'h:080'],
    ['h', 'h'],
  ])('%s passes through as %s', (input, target) => {
    expect(parseTarget(input)).toEqual({ target, isTls: false });
  });
});

describe('parseTarget: empty addresses after a scheme', () => {
  test.each([
    ['unix:', 'unix'],
    ['unix:/', 'unix'],
    ['unix:///', 'unix'],
    ['ipv4:', 'ipv4'],
    ['ipv6:', 'ipv6'],
    ['dns:', 'dns'],
    ['dns:///', 'dns'],
    ['dns://8.8.8.8/', 'dns'],
  ])('%s is refused', (input, scheme) => {
    const error = thrown(() => parseTarget(input));
    expect(error).toBeInstanceOf(RangeError);
    expect(error.option).toBe('target');
    expect(error.message).toContain(`an address after "${scheme}:"`);
    expect(error.message).toContain(JSON.stringify(input));
  });

  test.each([':50051', 'dns:///:50051', 'ipv4::1'])('%s is refused: no host', (input) => {
    const error = thrown(() => parseTarget(input));
    expect(error).toBeInstanceOf(RangeError);
    expect(error.message).toContain('an address with a host');
  });

  // Found by this test (fixed): an empty entry in an ipv4:/ipv6: list used to pass, and grpc-js
  // 1.14.7's IP resolver then refuses the whole list ("Failed to parse ipv4 address"), so every
  // call failed UNAVAILABLE: what parseTarget says it refuses up front.
  test.each(['ipv4:1.2.3.4:1,', 'ipv4:,1.2.3.4:1', 'ipv4:,'])('%s is refused: an empty entry in the list', (input) => {
    const error = thrown(() => parseTarget(input));
    expect(error).toBeInstanceOf(RangeError);
  });
});

describe('parseTarget: pass-throughs', () => {
  test.each([
    ['[::1]', '[::1]'],
    ['[::1]:50051', '[::1]:50051'],
    ['[fe80::1%eth0]:1', '[fe80::1%eth0]:1'],
    ['::1', '::1'],
    ['ipv6:[::1]:1,[::2]:2', 'ipv6:[::1]:1,[::2]:2'],
    ['unix:/x', 'unix:/x'],
    ['unix:///run/app.sock', 'unix:///run/app.sock'],
    ['dns:h', 'dns:h'],
    ['dns://8.8.8.8/h:1', 'dns://8.8.8.8/h:1'],
  ])('%s passes through as %s', (input, target) => {
    expect(parseTarget(input)).toEqual({ target, isTls: false });
  });

  test.each([
    ['https://x', 'x:443', true],
    ['http://x', 'x:80', false],
    ['https://x:1', 'x:1', true],
    ['https://[::1]', '[::1]:443', true],
    ['http://[::1]:8080', '[::1]:8080', false],
  ])('%s → %s (TLS: %s)', (input, target, isTls) => {
    expect(parseTarget(input)).toEqual({ target, isTls });
  });
});

describe('mayHaveSeveralEndpoints', () => {
  test.each([
    ['dns:///svc:50051', true],
    ['dns:svc:50051', true],
    ['dns://8.8.8.8/svc:50051', true],
    ['svc.ns:80', true],
    ['svc', true],
    ['localhost:1', true],
    ['ipv4:1.2.3.4:1,1.2.3.5:1', true],
    ['ipv6:[::1]:1,[::2]:1', true],
    ['127.0.0.1:1', false],
    ['127.0.0.1', false],
    ['[::1]:1', false],
    ['[::1]', false],
    ['::1', false],
    ['dns:///127.0.0.1:1', false],
    ['dns:///[::1]:1', false],
    ['ipv4:1.2.3.4:1', false],
    ['ipv6:[::1]:1', false],
    ['unix:/x', false],
    ['xds:///svc', false],
    ['xds:svc', false],
    ['consul:///svc', false],
  ])('%s → %s', (target, several) => {
    expect(mayHaveSeveralEndpoints(target)).toBe(several);
  });
});

// grpc-js 1.14's URI rule (uri-parser.ts): `scheme:path`, `scheme:///path` and
// `scheme://authority/path` name the scheme's resolver when one is registered; otherwise the whole
// target is a DNS name. `localhost:50051` is scheme "localhost", unregistered, so a DNS name.
describe('parseTarget: targets read as grpc-js reads them', () => {
  // Found by this test (fixed): `xds:listener1` was split as host "xds", port "listener1" and
  // refused, though grpc-js with @grpc/grpc-js-xds registered resolves it and calls succeed.
  test.each(['xds:listener1', 'xds:///listener1', 'xds://control.example/listener1', 'xds:///a/b'])(
    '%s passes through once the xDS resolver is registered',
    (input) => {
      expect(parseTarget(input, true)).toEqual({ target: input, isTls: false });
    },
  );

  // Found by this test (fixed): before register(), grpc-js maps `xds:///x` to `dns:xds:///x` and
  // each call made 3 attempts and failed UNAVAILABLE.
  test.each(['xds:listener1', 'xds:///listener1', 'xds://control.example/listener1'])(
    '%s is refused while no xDS resolver is registered, saying what to do',
    (input) => {
      const error = thrown(() => parseTarget(input, false));
      expect(error).toBeInstanceOf(RangeError);
      expect(error.code).toBe(3);
      expect(error.option).toBe('target');
      expect(error.message).toContain('call register() from @grpc/grpc-js-xds before pool.client()');
      expect(error.message).toContain(JSON.stringify(input));
    },
  );

  test.each(['xds:', 'xds:///', 'xds://control.example/', 'xds://control.example'])('%s is refused: no listener name', (input) => {
    const error = thrown(() => parseTarget(input, true));
    expect(error).toBeInstanceOf(RangeError);
    expect(error.message).toContain('an address after "xds:" (such as "xds:///listener")');
  });

  test.each([
    ['consul:///users', 'consul:///users'],
    ['consul://agent:8500/users', 'consul://agent:8500/users'],
    ['localhost:50051', 'localhost:50051'],
    ['dns:users:50051', 'dns:users:50051'],
    ['dns:[::1]:50051', 'dns:[::1]:50051'],
    ['fe80::1', 'fe80::1'],
  ])('%s passes through as %s', (input, target) => {
    expect(parseTarget(input, false)).toEqual({ target, isTls: false });
  });

  test.each(['h:abc', 'consul:users'])('%s is read as host:port, as grpc-js does for a scheme with no resolver', (input) => {
    const error = thrown(() => parseTarget(input, true));
    expect(error).toBeInstanceOf(RangeError);
    expect(error.message).toContain('port is a number from 1 to 65535');
  });

  // grpc-js looks resolvers up by the scheme as written (`'XDS' in registeredResolvers` is false).
  test.each([
    ['XDS:///listener1', 'xds'],
    ['DNS:///', 'dns'],
    ['Dns:///h:1', 'dns'],
    ['IPV4:1.2.3.4:1', 'ipv4'],
    ['UNIX:/run/a.sock', 'unix'],
  ])('%s is refused: grpc-js matches schemes in lower case', (input, scheme) => {
    const error = thrown(() => parseTarget(input, true));
    expect(error).toBeInstanceOf(RangeError);
    expect(error.message).toContain(`a scheme in lower case, as grpc-js matches it ("${scheme}:")`);
  });

  test.each(['unix-abstract:name', 'unix-abstract:', 'UNIX-ABSTRACT:x'])('%s is refused: grpc-js has no resolver for it', (input) => {
    const error = thrown(() => parseTarget(input));
    expect(error).toBeInstanceOf(RangeError);
    expect(error.message).toContain('grpc-js has no resolver for "unix-abstract:" (use "unix:/path")');
  });
});

describe('parseTarget: brackets', () => {
  // Found by this test (fixed): `[::1` was taken for a bare IPv6 address; grpc-js's DNS resolver
  // then failed every call UNAVAILABLE "Failed to parse DNS address" after about 300 ms.
  test.each(['[::1', '[::1:50051', 'dns:///[::1', 'ipv6:[::1]:1,[::2', 'https://[::1'])('%s is refused: the "[" is not closed', (input) => {
    const error = thrown(() => parseTarget(input));
    expect(error).toBeInstanceOf(RangeError);
    expect(error.option).toBe('target');
    expect(error.message).toBe(
      `resilient-grpc: target must be an address whose "[" is closed, such as "[::1]:50051", got ${JSON.stringify(input)}`,
    );
  });

  test.each(['[host]:1', '[]:1', '[127.0.0.1]'])('%s is refused: no IPv6 address in the brackets', (input) => {
    expect(thrown(() => parseTarget(input)).message).toContain('an IPv6 address inside "[...]"');
  });

  test.each(['[::1]x', '[::1]50051', '[::1]]:1'])('%s is refused: something after "]" other than ":port"', (input) => {
    expect(thrown(() => parseTarget(input)).message).toContain('nothing after "]" but ":port"');
  });
});

describe('parseTarget: userinfo is refused and never echoed', () => {
  // Found by this test (fixed): `http://admin:S3CRET@127.0.0.1:PORT` was accepted and rewritten
  // to `admin:S3CRET@127.0.0.1:PORT:80`; every call failed UNAVAILABLE and the password appeared
  // in every error message and in the `grpc_target` Prometheus label.
  test.each([
    ['http://admin:S3CRET@127.0.0.1:5000', '"http://admin:***@127.0.0.1:5000"'],
    ['https://admin:S3CRET@api.example.com', '"https://admin:***@api.example.com"'],
    ['https://TOKENS3CRET@api.example.com/', '"https://***@api.example.com/"'],
    ['admin:S3CRET@127.0.0.1:5000', '"admin:***@127.0.0.1:5000"'],
    ['dns://user:S3CRET@8.8.8.8/users:1', '"dns://user:***@8.8.8.8/users:1"'],
    ['dns:///user:S3CRET@users:1', '"dns:///user:***@users:1"'],
    ['dns:user:S3CRET@users:1', '"dns:user:***@users:1"'],
    ['ipv4:a:S3CRET@10.0.0.1:1,b:S3CRET@10.0.0.2:1', '"ipv4:a:***@10.0.0.2:1"'],
    ['xds://user:S3CRET@control/listener1', '"xds://user:***@control/listener1"'],
    ['consul://user:S3CRET@agent/users', '"consul://user:***@agent/users"'],
    ['http://admin:S3/CR@ET@127.0.0.1:5000', '"http://admin:***@127.0.0.1:5000"'],
  ])('%s is refused, shown as %s', (input, shown) => {
    const error = thrown(() => parseTarget(input, true));
    expect(error).toBeInstanceOf(RangeError);
    expect(error.code).toBe(3);
    expect(error.option).toBe('target');
    expect(error.message).toContain('a target without userinfo (user:password@)');
    expect(error.message).toContain(`got ${shown}`);
    expect(error.message).not.toContain('S3');
    expect(JSON.stringify(error)).not.toContain('S3CRET');
    expect(String(error.stack)).not.toContain('S3CRET');
  });

  test('a password never shows in the refusal of an otherwise malformed target either', () => {
    const long = `http://admin:S3CRET${'x'.repeat(300)}@h`;
    for (const input of ['http://admin:S3CRET@h/path', 'admin:S3CRET@h:0', 'admin:S3CRET@[::1', 'admin:S3CRET@h 1', long]) {
      const error = thrown(() => parseTarget(input, true));
      expect(error.message, input).not.toContain('S3CRET');
    }
  });

  test.each([
    ['unix:/run/a@b.sock', 'unix:/run/a@b.sock'],
    ['xds:///listener@zone', 'xds:///listener@zone'],
  ])('an "@" in a path that is not an address passes: %s', (input, target) => {
    expect(parseTarget(input, true)).toEqual({ target, isTls: false });
  });

  test.each([
    ['h:1', 'h:1'],
    ['user@h:1', '***@h:1'],
    ['user:pw@h:1', 'user:***@h:1'],
    ['dns:///a:b@h', 'dns:///a:***@h'],
  ])('redactTarget(%s) → %s', (input, shown) => {
    expect(redactTarget(input)).toBe(shown);
  });
});

describe('isXdsRegistered', () => {
  // Last in this file: register() cannot be undone, and each test file runs with its own grpc-js.
  test('reads false until @grpc/grpc-js-xds registers with this copy of grpc-js, then true', async () => {
    expect(isXdsRegistered()).toBe(false);
    expect(thrown(() => parseTarget('xds:///listener1')).message).toContain('call register() from @grpc/grpc-js-xds');
    (await import('@grpc/grpc-js-xds')).register();
    expect(isXdsRegistered()).toBe(true);
    expect(parseTarget('xds:///listener1')).toEqual({ target: 'xds:///listener1', isTls: false });
  });
});
