import { EventEmitter } from 'node:events';
import { Metadata, status, type StatusObject } from '@grpc/grpc-js';
import { describe, expect, test, vi } from 'vitest';
import { MessageQueue } from '../../src/call/message-queue.js';

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

/** What the queue's owner heard, in order: 'first', 'status <code>', 'over <code>'. */
function recorder() {
  const heard: string[] = [];
  const listener = {
    firstMessage: () => heard.push('first'),
    statusArrived: (s: StatusObject) => heard.push(`status ${s.code}`),
    streamOver: (s: StatusObject) => heard.push(`over ${s.code}`),
  };
  return { heard, listener };
}

function setup(highWaterMark?: number) {
  const call = new FakeCall();
  const { heard, listener } = recorder();
  const queue = new MessageQueue(call, listener, highWaterMark);
  return { call, queue, heard };
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

describe('the first message', () => {
  test('is heard once a message is ready, and the message is still there', async () => {
    const { call, queue, heard } = setup();
    expect(heard).toEqual([]);
    call.emit('data', 'm');
    call.emit('data', 'n');
    expect(heard).toEqual(['first']);
    await expect(queue.next()).resolves.toEqual({ value: 'm', done: false });
  });

  test("a reader already waiting when the first message arrives does not take the owner's judgement away (issue 19)", async () => {
    // The reader's waiter is the only one the queue keeps; the owner hears of the first message
    // through its listener, whoever waits. (Until issue 19 the stream's judge waited in the same
    // slot as the reader, and a reader that came first left the stream unjudged until its end.)
    const { call, queue, heard } = setup();
    const reading = queue.next();
    expect(await settles(reading)).toBe(false);
    call.emit('data', 'm');
    expect(heard).toEqual(['first']);
    await expect(reading).resolves.toEqual({ value: 'm', done: false });
    const second = queue.next();
    call.emit('data', 'n');
    await expect(second).resolves.toEqual({ value: 'n', done: false });
    expect(heard).toEqual(['first']);
  });

  test('a stream that ended OK with no message at all is over, with no first message', async () => {
    const { call, queue, heard } = setup();
    finish(call, OK);
    expect(heard).toEqual(['status 0', 'over 0']);
    await expect(queue.next()).resolves.toEqual({ value: undefined, done: true });
  });

  test('a stream that failed before its first message is over with the status (the one point it may be retried)', () => {
    const { call, heard } = setup();
    finish(call, statusOf(status.UNAVAILABLE, 'connection refused'));
    expect(heard).toEqual(['status 14', 'over 14']);
  });

  test('a message that came before the failure is heard first: the stream can no longer be retried', async () => {
    const { call, queue, heard } = setup();
    call.emit('data', 'partial');
    finish(call, statusOf(status.INTERNAL, 'boom'));
    expect(heard).toEqual(['first', 'status 13', 'over 13']);
    expect(await readAll(queue)).toEqual(['partial']);
    expect(queue.status?.code).toBe(status.INTERNAL);
  });

  test('a status that arrives before grpc-js has delivered the messages is not over until they or the end arrive', () => {
    const { call, heard } = setup();
    call.emit('status', statusOf(status.INTERNAL, 'boom'));
    expect(heard).toEqual(['status 13']);
    call.emit('data', 'late');
    expect(heard).toEqual(['status 13', 'first', 'over 13']);
  });
});

describe('the status', () => {
  test('is heard when it arrives, once', () => {
    const { call, heard } = setup();
    call.emit('status', statusOf(status.NOT_FOUND));
    call.emit('end');
    call.emit('status', OK);
    expect(heard).toEqual(['status 5', 'over 5']);
  });

  test('is heard before the buffered messages are read: an abandoned stream settles with its status', () => {
    const { call, heard } = setup(2);
    for (let i = 0; i < 10; i++) call.emit('data', i);
    call.emit('status', statusOf(status.DEADLINE_EXCEEDED, 'Deadline exceeded'));
    expect(heard).toEqual(['first', 'status 4', 'over 4']);
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
