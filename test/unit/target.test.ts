import { describe, expect, test } from 'vitest';
import { mayHaveSeveralEndpoints, parseTarget } from '../../src/channel/target.js';
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
    ['unix-abstract:', 'unix-abstract'],
    ['ipv4:', 'ipv4'],
    ['ipv6:', 'ipv6'],
    ['dns:', 'dns'],
    ['dns:///', 'dns'],
    ['dns://8.8.8.8/', 'dns'],
    ['DNS:///', 'dns'],
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
    ['unix-abstract:name', 'unix-abstract:name'],
    ['dns:h', 'dns:h'],
    ['dns://8.8.8.8/h:1', 'dns://8.8.8.8/h:1'],
    ['xds:///svc', 'xds:///svc'],
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
    ['unix-abstract:x', false],
    ['xds:///svc', false],
  ])('%s → %s', (target, several) => {
    expect(mayHaveSeveralEndpoints(target)).toBe(several);
  });
});
