import { Metadata, status } from '@grpc/grpc-js';
import { describe, expect, test } from 'vitest';
import {
  attemptOutcome,
  attemptReach,
  expiredLocally,
  judgedOutcome,
  loopStalled,
  REFUSED_STREAM_DETAILS,
  refusedStream,
  STALLED_LOOP_MS,
  STALLED_LOOP_SHARE,
  targetOutcome,
} from '../../src/core/status-meaning.js';

// What a failure means for health when its deadline expired on the client (issue 19, the
// CPU-starved row): never a failure of the target; a failure of the method and the endpoint only
// when the client's event loop reported it on time.

const DEADLINE = { code: status.DEADLINE_EXCEEDED, details: 'Deadline exceeded', metadata: new Metadata() };

describe('expiredLocally', () => {
  test('a DEADLINE_EXCEEDED the server never sent, with nothing heard', () => {
    expect(expiredLocally(status.DEADLINE_EXCEEDED, 'not-sent')).toBe(true);
    expect(expiredLocally(status.DEADLINE_EXCEEDED, 'unknown')).toBe(true);
  });

  test('not one the server sent, nor one of a committed attempt, nor another code', () => {
    expect(expiredLocally(status.DEADLINE_EXCEEDED, 'answered')).toBe(false);
    expect(expiredLocally(status.DEADLINE_EXCEEDED, 'committed')).toBe(false);
    expect(expiredLocally(status.UNAVAILABLE, 'not-sent')).toBe(false);
    expect(expiredLocally(status.UNAVAILABLE, 'unknown')).toBe(false);
  });
});

describe('judgedOutcome: a local expiry reported late by a stalled loop says nothing about the backend', () => {
  test('reported on time it is a failure (a hung server); late with the loop busy meanwhile, it is ignored', () => {
    expect(attemptOutcome(DEADLINE, false)).toBe('failure');
    expect(judgedOutcome('failure', status.DEADLINE_EXCEEDED, 'unknown', 3, 1)).toBe('failure');
    expect(judgedOutcome('failure', status.DEADLINE_EXCEEDED, 'unknown', STALLED_LOOP_MS, 1)).toBe('failure');
    expect(judgedOutcome('failure', status.DEADLINE_EXCEEDED, 'unknown', STALLED_LOOP_MS + 1, 1)).toBe('ignored');
    expect(judgedOutcome('failure', status.DEADLINE_EXCEEDED, 'not-sent', 500, 0.96)).toBe('ignored');
  });

  test('late while the loop waited for I/O (a loaded machine, not a stalled loop): still a failure', () => {
    expect(loopStalled(500, STALLED_LOOP_SHARE - 0.01)).toBe(false);
    expect(loopStalled(500, STALLED_LOOP_SHARE)).toBe(true);
    expect(judgedOutcome('failure', status.DEADLINE_EXCEEDED, 'unknown', 500, 0.05)).toBe('failure');
  });

  test('lateness changes nothing else: a server-sent deadline, another failure, a success', () => {
    expect(judgedOutcome('failure', status.DEADLINE_EXCEEDED, 'answered', 500, 1)).toBe('failure');
    expect(judgedOutcome('failure', status.DEADLINE_EXCEEDED, 'committed', 500, 1)).toBe('failure');
    expect(judgedOutcome('failure', status.UNAVAILABLE, 'unknown', 500, 1)).toBe('failure');
    expect(judgedOutcome('success', status.OK, 'answered', 500, 1)).toBe('success');
    expect(judgedOutcome('ignored', status.DEADLINE_EXCEEDED, 'unknown', 500, 1)).toBe('ignored');
  });
});

describe('targetOutcome', () => {
  test('only a failure that never went out counts, and never a deadline that expired locally', () => {
    expect(targetOutcome('failure', 'not-sent', status.UNAVAILABLE)).toBe('failure');
    expect(targetOutcome('failure', 'not-sent')).toBe('failure');
    expect(targetOutcome('failure', 'not-sent', status.DEADLINE_EXCEEDED)).toBe('ignored');
    expect(targetOutcome('failure', 'unknown', status.DEADLINE_EXCEEDED)).toBe('ignored');
    expect(targetOutcome('failure', 'answered', status.UNAVAILABLE)).toBe('ignored');
    expect(targetOutcome('success', 'answered', status.OK)).toBe('success');
  });
});

describe('attemptReach: a stream the server refused (HTTP/2 REFUSED_STREAM) was answered', () => {
  test("grpc-js's UNAVAILABLE 'Stream refused by server' is refused; other UNAVAILABLEs and codes are not", () => {
    expect(refusedStream(status.UNAVAILABLE, REFUSED_STREAM_DETAILS)).toBe(true);
    expect(refusedStream(status.UNAVAILABLE, 'Connection dropped')).toBe(false);
    expect(refusedStream(status.UNAVAILABLE, undefined)).toBe(false);
    expect(refusedStream(status.INTERNAL, REFUSED_STREAM_DETAILS)).toBe(false);
  });

  test('an opened stream with no trailers is unknown unless it was refused; a committed one stays committed', () => {
    expect(attemptReach(false, true, false)).toBe('unknown');
    expect(attemptReach(false, true, false, true)).toBe('answered');
    expect(attemptReach(true, true, false, true)).toBe('committed');
    expect(attemptReach(false, false, false, true)).toBe('not-sent');
  });
});
