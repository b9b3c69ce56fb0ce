import { describe, expect, test } from 'vitest';
import { closestName, didYouMean } from '../../src/core/did-you-mean.js';

describe('closestName: the known name a typo was meant to be', () => {
  const methods = ['QueryBasicInfoByID', 'queryBasicInfoByID', 'Echo', 'echo', 'ServerStream', 'serverStream'];

  test('a name that differs only in letter case', () => {
    expect(closestName('queryBasicInfoById', methods)).toBe('queryBasicInfoByID');
    expect(closestName('ECHO', methods)).toBe('Echo');
  });

  test('a swap of two neighbours, a missing or an extra letter', () => {
    expect(closestName('Ecoh', methods)).toBe('Echo');
    expect(closestName('ServerStrem', methods)).toBe('ServerStream');
    expect(closestName('serverStreams', methods)).toBe('serverStream');
  });

  test('nothing close enough: no suggestion', () => {
    expect(closestName('Nope', methods)).toBeUndefined();
    expect(closestName('then', methods)).toBeUndefined();
    expect(closestName('toJSON', methods)).toBeUndefined();
    expect(closestName('x', ['y'])).toBe('y');
    expect(closestName('ab', ['xy'])).toBeUndefined();
  });

  test('the name itself is never suggested', () => {
    expect(closestName('Echo', ['Echo'])).toBeUndefined();
  });

  test('didYouMean reads as the tail of an error message', () => {
    expect(didYouMean('deadlineMS', ['deadlineMs', 'deadline'])).toBe('; did you mean deadlineMs?');
    expect(didYouMean('timeout', ['deadlineMs'])).toBe('');
  });
});
