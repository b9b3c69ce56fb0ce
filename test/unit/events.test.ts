import { afterEach, beforeEach, describe, expect, test } from 'vitest';
import { EventSource } from '../../src/events/events.js';

/** Warnings are emitted on nextTick: wait for them before looking. */
const tick = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

describe('EventSource', () => {
  test('listeners receive every event, in subscription order', () => {
    const source = new EventSource<number>('onTest');
    const seen: string[] = [];
    source.subscribe((n) => seen.push(`a${n}`));
    source.subscribe((n) => seen.push(`b${n}`));
    source.emit(1);
    source.emit(2);
    expect(seen).toEqual(['a1', 'b1', 'a2', 'b2']);
  });

  test('the event object is passed as is', () => {
    const source = new EventSource<{ attempt: number }>('onTest');
    const event = { attempt: 2 };
    let received: unknown;
    source.subscribe((e) => (received = e));
    source.emit(event);
    expect(received).toBe(event);
  });

  test('dispose() stops delivery to that subscription only, and may be called twice', () => {
    const source = new EventSource<number>('onTest');
    const a: number[] = [];
    const b: number[] = [];
    const subA = source.subscribe((n) => a.push(n));
    source.subscribe((n) => b.push(n));
    source.emit(1);
    subA.dispose();
    source.emit(2);
    subA.dispose();
    source.emit(3);
    expect(a).toEqual([1]);
    expect(b).toEqual([1, 2, 3]);
  });

  test('`using` ends the subscription at the end of the block', () => {
    const source = new EventSource<number>('onTest');
    const seen: number[] = [];
    {
      using sub = source.subscribe((n) => seen.push(n));
      expect(typeof sub[Symbol.dispose]).toBe('function');
      source.emit(1);
      expect(source.hasListeners).toBe(true);
    }
    source.emit(2);
    expect(seen).toEqual([1]);
    expect(source.hasListeners).toBe(false);
  });

  test('one function subscribed twice is two subscriptions: two deliveries, disposed one at a time', () => {
    const source = new EventSource<number>('onTest');
    const seen: number[] = [];
    const listener = (n: number): void => {
      seen.push(n);
    };
    const first = source.subscribe(listener);
    source.subscribe(listener);
    source.emit(1);
    expect(seen).toEqual([1, 1]);
    first.dispose();
    source.emit(2);
    expect(seen).toEqual([1, 1, 2]);
  });

  test('hasListeners follows subscriptions; clear() removes them all', () => {
    const source = new EventSource<number>('onTest');
    expect(source.hasListeners).toBe(false);
    const seen: number[] = [];
    source.subscribe((n) => seen.push(n));
    source.subscribe((n) => seen.push(n * 10));
    expect(source.hasListeners).toBe(true);
    source.clear();
    expect(source.hasListeners).toBe(false);
    source.emit(1);
    expect(seen).toEqual([]);
  });

  test.each([undefined, null, 'log', { handleEvent: () => undefined }])('a non-function listener (%j) is a TypeError', (listener) => {
    const source = new EventSource<number>('onRetry');
    expect(() => source.subscribe(listener as never)).toThrow(new TypeError('resilient-grpc: onRetry takes a listener function'));
    expect(source.hasListeners).toBe(false);
  });
});

describe('EventSource: a listener that throws', () => {
  let warnings: Error[];
  const onWarning = (warning: Error): void => {
    warnings.push(warning);
  };

  beforeEach(() => {
    warnings = [];
    process.on('warning', onWarning);
  });
  afterEach(() => {
    process.off('warning', onWarning);
  });

  function listenerWarnings(): Array<Error & { code?: string }> {
    return warnings.filter((w) => (w as { code?: string }).code === 'RESILIENT_GRPC_LISTENER_ERROR');
  }

  test('does not stop the next listener nor reach the emitter, and warns exactly once', async () => {
    const source = new EventSource<number>('onRetry');
    const seen: number[] = [];
    source.subscribe(() => {
      throw new Error('listener failed');
    });
    source.subscribe((n) => seen.push(n));
    expect(() => source.emit(1)).not.toThrow();
    expect(() => source.emit(2)).not.toThrow();
    expect(seen).toEqual([1, 2]);

    await tick();
    const listenerWarning = listenerWarnings();
    expect(listenerWarning).toHaveLength(1);
    expect(listenerWarning[0]?.name).toBe('ResilientGrpcWarning');
    expect(listenerWarning[0]?.message).toContain('onRetry listener threw');
    expect(listenerWarning[0]?.message).toContain('listener failed');
  });

  test('two throwing listeners on one source still give one warning', async () => {
    const source = new EventSource<number>('onRetry');
    source.subscribe(() => {
      throw new Error('first');
    });
    source.subscribe(() => {
      throw new Error('second');
    });
    source.emit(1);
    await tick();
    expect(listenerWarnings()).toHaveLength(1);
    expect(listenerWarnings()[0]?.message).toContain('first');
  });

  test('a non-Error thrown value is reported too', async () => {
    const source = new EventSource<number>('onRetry');
    source.subscribe(() => {
      throw 'plain string';
    });
    source.emit(1);
    await tick();
    expect(listenerWarnings()).toHaveLength(1);
    expect(listenerWarnings()[0]?.message).toContain('plain string');
  });

  test('no warning when no listener throws', async () => {
    const source = new EventSource<number>('onRetry');
    source.subscribe(() => undefined);
    source.emit(1);
    await tick();
    expect(listenerWarnings()).toHaveLength(0);
  });
});
