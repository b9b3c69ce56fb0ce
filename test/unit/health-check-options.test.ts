import { describe, expect, it } from 'vitest';
import { checkHealthCheckOptions, resolveHealthCheck, serviceConfigHealthCheck } from '../../src/config/health-check-options.js';

const config = (healthCheckConfig: unknown) => JSON.stringify({ healthCheckConfig });

describe('checkHealthCheckOptions', () => {
  it('takes undefined, false, {} and { serviceName: string } as they are', () => {
    expect(checkHealthCheckOptions('healthCheck', undefined)).toBeUndefined();
    expect(checkHealthCheckOptions('healthCheck', false)).toBe(false);
    expect(checkHealthCheckOptions('healthCheck', {})).toEqual({});
    expect(checkHealthCheckOptions('healthCheck', { serviceName: '' })).toEqual({ serviceName: '' });
    expect(checkHealthCheckOptions('healthCheck', { serviceName: 'users.v1.UserService' })).toEqual({
      serviceName: 'users.v1.UserService',
    });
  });

  it.each([
    [true, TypeError, 'healthCheck must be false or an object { serviceName: string } ("" for the whole server), got true'],
    [null, TypeError, 'got null'],
    [[], TypeError, 'got an array'],
    [{ serviceName: null }, TypeError, 'healthCheck.serviceName must be a string'],
    [{ serviceName: '', intervalMs: 5 }, TypeError, 'healthCheck.intervalMs must be one of the known options (serviceName)'],
  ])('refuses %j with a %o naming the option', (value, kind, message) => {
    expect(() => checkHealthCheckOptions('healthCheck', value)).toThrow(kind);
    expect(() => checkHealthCheckOptions('healthCheck', value)).toThrow(message);
    try {
      checkHealthCheckOptions('healthCheck', value);
    } catch (error) {
      expect(error).toMatchObject({ code: 3 });
    }
  });
});

describe('serviceConfigHealthCheck', () => {
  it("reads A17's healthCheckConfig, the service name defaulting to the whole server", () => {
    expect(serviceConfigHealthCheck(undefined)).toBeUndefined();
    expect(serviceConfigHealthCheck(JSON.stringify({ methodConfig: [] }))).toBeUndefined();
    expect(serviceConfigHealthCheck(config({ serviceName: 'svc' }))).toEqual({ serviceName: 'svc' });
    expect(serviceConfigHealthCheck(config({}))).toEqual({ serviceName: '' });
    // Malformed JSON is grpc-js's to refuse, with its own error.
    expect(serviceConfigHealthCheck('{')).toBeUndefined();
  });

  it('refuses a healthCheckConfig that is not { serviceName?: string }, naming it', () => {
    expect(() => serviceConfigHealthCheck(config('svc'))).toThrow(
      'channelOptions["grpc.service_config"].healthCheckConfig must be an object { serviceName: string }, got "svc"',
    );
    expect(() => serviceConfigHealthCheck(config({ serviceName: 1 }))).toThrow(TypeError);
  });
});

describe('resolveHealthCheck', () => {
  it('the client option wins over the service config; false turns it off over it; neither: off', () => {
    expect(resolveHealthCheck(undefined, undefined)).toBe(false);
    expect(resolveHealthCheck(undefined, config({ serviceName: 'a' }))).toEqual({ serviceName: 'a' });
    expect(resolveHealthCheck({ serviceName: 'b' }, config({ serviceName: 'a' }))).toEqual({ serviceName: 'b' });
    expect(resolveHealthCheck({}, config({ serviceName: 'a' }))).toEqual({ serviceName: '' });
    expect(resolveHealthCheck(false, config({ serviceName: 'a' }))).toBe(false);
  });

  it('still refuses a malformed healthCheckConfig when the client option turns health checking off', () => {
    expect(() => resolveHealthCheck(false, config(5))).toThrow(TypeError);
  });
});
