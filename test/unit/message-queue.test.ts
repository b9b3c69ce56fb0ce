import { EventEmitter } from 'node:events';
import { Metadata, status, type StatusObject } from '@grpc/grpc-js';
import { describe, expect, test, vi } from 'vitest';
import { MessageQueue } from '../../src/client/message-queue.js';

// A fake grpc-js readable call: the test emits 'data', 'end', 'close', 'error' and 'status'.

class FakeCall extends EventEmitter {
  readonly pause = vi.fn();
  readonly resume = vi.fn();
}

function statusOf(code: number, details = ''): StatusObject {
  return { code, details, metadata: new Metadata() };
}

const OK = statusOf(status.OK);

/** Whether `promise` settles once the microtasks queued so far have run. */
async function settles(promise: Promise<unknown>): Promise<boolean> {
  let settled = false;
  promise.then(
    () => (settled = true),
    () => (settled = true),
  );
  for (let i = 0; i < 10; i++) await Promise.resolve();
  return settled;
}

function setup(highWaterMark?: number) {
  const call = new FakeCall();
  const queue = new MessageQueue(call, highWaterMark);
  return { call, queue };
}

/** Ends a stream the way grpc-js does: end of messages, (an error,) then the status. */
function finish(call: FakeCall, final: StatusObject): void {
  call.emit('end');
  if (final.code !== status.OK) call.emit('error', Object.assign(new Error(final.details), final));
  call.emit('status', final);
}

async function readAll(queue: MessageQueue): Promise<unknown[]> {
  const values: unknown[] = [];
  for (let i = 0; i < 1_000; i++) {
    const next = await queue.next();
    if (next.done) return values;
    values.push(next.value);
  }
  throw new Error('the stream did not end');
}

describe('flow control', () => {
  test('buffers up to highWaterMark, then pauses the call once', () => {
    const { call, queue } = setup(4);
    for (let i = 0; i < 3; i++) call.emit('data', i);
    expect(call.pause).not.toHaveBeenCalled();
    call.emit('data', 3);
    expect(call.pause).toHaveBeenCalledTimes(1);
    // grpc-js may still deliver what it had read: buffered, no second pause.
    call.emit('data', 4);
    expect(call.pause).toHaveBeenCalledTimes(1);
    expect(queue.status).toBeUndefined();
  });

  test('the default highWaterMark is 16', () => {
    const { call } = setup();
    for (let i = 0; i < 15; i++) call.emit('data', i);
    expect(call.pause).not.toHaveBeenCalled();
    call.emit('data', 15);
    expect(call.pause).toHaveBeenCalledTimes(1);
  });

  test('resumes once the reader has taken the buffer down to half of highWaterMark', async () => {
    const { call, queue } = setup(4);
    for (let i = 0; i < 5; i++) call.emit('data', i);
    await queue.next();
    await queue.next();
    // 3 left, above 4 / 2.
    expect(call.resume).not.toHaveBeenCalled();
    await queue.next();
    expect(call.resume).toHaveBeenCalledTimes(1);
    await queue.next();
    expect(call.resume).toHaveBeenCalledTimes(1);
  });

  test('pauses again when the buffer fills up again', async () => {
    const { call, queue } = setup(2);
    call.emit('data', 'a');
    call.emit('data', 'b');
    await queue.next();
    expect(call.resume).toHaveBeenCalledTimes(1);
    call.emit('data', 'c');
    expect(call.pause).toHaveBeenCalledTimes(2);
  });

  test('the status resumes a paused call, so grpc-js can hand over what it still holds', () => {
    const { call } = setup(2);
    call.emit('data', 'a');
    call.emit('data', 'b');
    call.emit('status', OK);
    expect(call.resume).toHaveBeenCalledTimes(1);
  });

  test('a status on a call that is not paused does not resume it', () => {
    const { call } = setup(2);
    call.emit('data', 'a');
    call.emit('status', OK);
    expect(call.resume).not.toHaveBeenCalled();
  });
});

describe('next()', () => {
  test('gives the messages in order, then done once the stream ended and its status is in', async () => {
    const { call, queue } = setup();
    call.emit('data', 'a');
    call.emit('data', 'b');
    finish(call, OK);
    expect(await readAll(queue)).toEqual(['a', 'b']);
    expect(queue.status).toBe(OK);
  });

  test('waits for a message', async () => {
    const { call, queue } = setup();
    const next = queue.next();
    expect(await settles(next)).toBe(false);
    call.emit('data', 'late');
    await expect(next).resolves.toEqual({ value: 'late', done: false });
  });

  test('the end of the messages alone is not the end: the status must be in too', async () => {
    const { call, queue } = setup();
    call.emit('end');
    const next = queue.next();
    expect(await settles(next)).toBe(false);
    call.emit('status', OK);
    await expect(next).resolves.toEqual({ value: undefined, done: true });
  });

  test('the status arrives before the buffered messages are read: they are still delivered, then done', async () => {
    const { call, queue } = setup();
    call.emit('data', 1);
    call.emit('status', statusOf(status.UNAVAILABLE, 'gone'));
    // The status is there at once, for whoever settles the call.
    expect(queue.status?.code).toBe(status.UNAVAILABLE);
    call.emit('data', 2);
    call.emit('end');
    expect(await readAll(queue)).toEqual([1, 2]);
  });

  test("'close' without 'end' (a destroyed stream) also ends it", async () => {
    const { call, queue } = setup();
    call.emit('data', 'x');
    call.emit('status', statusOf(status.CANCELLED, 'Cancelled on client'));
    call.emit('close');
    expect(await readAll(queue)).toEqual(['x']);
  });
});

describe('first()', () => {
  test('resolves (with the queue) once a message is ready, and the message is still there', async () => {
    const { call, queue } = setup();
    const first = queue.first();
    expect(await settles(first)).toBe(false);
    call.emit('data', 'm');
    await expect(first).resolves.toBe(queue);
    await expect(queue.next()).resolves.toEqual({ value: 'm', done: false });
  });

  test('resolves when the stream ended OK with no message at all', async () => {
    const { call, queue } = setup();
    const first = queue.first();
    finish(call, OK);
    await expect(first).resolves.toBe(queue);
    await expect(queue.next()).resolves.toEqual({ value: undefined, done: true });
  });

  test('rejects with the status when the stream failed before its first message', async () => {
    const { call, queue } = setup();
    const first = queue.first();
    const failed = statusOf(status.UNAVAILABLE, 'connection refused');
    finish(call, failed);
    await expect(first).rejects.toBe(failed);
  });

  test('resolves when a message came before the failure: the stream can no longer be retried', async () => {
    const { call, queue } = setup();
    call.emit('data', 'partial');
    finish(call, statusOf(status.INTERNAL, 'boom'));
    await expect(queue.first()).resolves.toBe(queue);
    expect(await readAll(queue)).toEqual(['partial']);
    expect(queue.status?.code).toBe(status.INTERNAL);
  });
});

describe('onStatus()', () => {
  test('runs its listeners when the status arrives, in order, once', () => {
    const { call, queue } = setup();
    const order: string[] = [];
    queue.onStatus((s) => order.push(`first ${s.code}`));
    queue.onStatus((s) => order.push(`second ${s.code}`));
    expect(order).toEqual([]);
    call.emit('status', statusOf(status.NOT_FOUND));
    expect(order).toEqual(['first 5', 'second 5']);
    call.emit('status', OK);
    expect(order).toEqual(['first 5', 'second 5']);
  });

  test('runs a listener at once when the status is already in', () => {
    const { call, queue } = setup();
    call.emit('status', OK);
    const listener = vi.fn();
    queue.onStatus(listener);
    expect(listener).toHaveBeenCalledExactlyOnceWith(OK);
  });

  test('runs before the buffered messages are read: an abandoned stream settles with its status', () => {
    const { call, queue } = setup(2);
    const listener = vi.fn();
    queue.onStatus(listener);
    for (let i = 0; i < 10; i++) call.emit('data', i);
    call.emit('status', statusOf(status.DEADLINE_EXCEEDED, 'Deadline exceeded'));
    expect(listener).toHaveBeenCalledTimes(1);
  });
});

describe('errors', () => {
  test("an 'error' event is handled: it never becomes an unhandled error", () => {
    const { call } = setup();
    expect(() => call.emit('error', new Error('14 UNAVAILABLE'))).not.toThrow();
    expect(call.listenerCount('error')).toBe(1);
  });

  test('the failure reaches the reader through the status, not through next()', async () => {
    const { call, queue } = setup();
    finish(call, statusOf(status.PERMISSION_DENIED, 'no'));
    await expect(queue.next()).resolves.toEqual({ value: undefined, done: true });
    expect(queue.status).toMatchObject({ code: status.PERMISSION_DENIED, details: 'no' });
  });
});
