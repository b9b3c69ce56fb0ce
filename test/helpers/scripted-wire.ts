import { Metadata, status, type Client, type Interceptor } from '@grpc/grpc-js';
import type { MethodInfo } from '../../src/core/service-methods.js';

// A scripted grpc-js client for unit tests of the call layer with fake timers (call.test.ts,
// hedged-call.test.ts): each makeUnaryRequest hands its attempt to `wire.send`, which answers it
// as the test's script says.

export const TARGET = 'fake.example:50051';
export const METHOD: MethodInfo = {
  names: ['Get'],
  path: '/pkg.Svc/Get',
  kind: 'unary',
  serialize: () => Buffer.alloc(0),
  deserialize: () => ({}),
  definition: {
    path: '/pkg.Svc/Get',
    requestStream: false,
    responseStream: false,
    requestSerialize: () => Buffer.alloc(0),
    requestDeserialize: () => ({}),
    responseSerialize: () => Buffer.alloc(0),
    responseDeserialize: () => ({}),
  },
};

export interface Step {
  /** When the attempt answers, in ms after it started. */
  afterMs: number;
  /** The status it fails with; it succeeds without one. */
  code?: number;
  trailers?: Record<string, string>;
}

/** The grpc-js call options an attempt was made with. */
export interface AttemptOptions {
  deadline: number;
  interceptors?: Interceptor[];
  credentials?: unknown;
}

/** What the scripted wire does with one attempt: answers `callback` as grpc-js would. */
export type Sender = (options: AttemptOptions, metadata: Metadata, callback: (error: unknown, value?: unknown) => void) => FakeWireCall;

export interface FakeWireCall {
  cancel(): void;
  getPeer(): string;
  on(): unknown;
}

/** The scripted wire of the current test: the fake client's makeUnaryRequest hands each attempt to it. */
export const wire: { send: Sender | undefined } = { send: undefined };

export function scriptedClient(): Client {
  return {
    makeUnaryRequest: (
      _path: string,
      _ser: unknown,
      _deser: unknown,
      _request: unknown,
      metadata: Metadata,
      options: AttemptOptions,
      callback: (error: unknown, value?: unknown) => void,
    ) => wire.send!(options, metadata, callback),
  } as unknown as Client;
}

export interface SentAttempt {
  options: AttemptOptions;
  metadata: Metadata;
  startedAt: number;
  cancelled: boolean;
}

/** A Sender that answers each attempt as the script says (the last step repeats); cancel() answers CANCELLED, as grpc-js does. */
export function scripted(...steps: Step[]) {
  const sent: SentAttempt[] = [];
  const send: Sender = (options, metadata, callback) => {
    const step = steps[sent.length] ?? steps.at(-1)!;
    const attempt: SentAttempt = { options, metadata, startedAt: Date.now(), cancelled: false };
    sent.push(attempt);
    let answered = false;
    const answer = (error: unknown, value?: unknown): void => {
      if (answered) return;
      answered = true;
      clearTimeout(timer);
      callback(error, value);
    };
    const timer = setTimeout(() => {
      if (step.code === undefined) answer(null, { attempt: sent.indexOf(attempt) + 1 });
      else answer(serviceError(step.code, `scripted ${step.code}`, step.trailers));
    }, step.afterMs);
    return {
      cancel() {
        attempt.cancelled = true;
        queueMicrotask(() => answer(serviceError(status.CANCELLED, 'Cancelled on client')));
      },
      // As a grpc-js call that never opened a stream: its peer is the channel's target, so the
      // commit rule lets every scripted failure be retried by its status alone.
      getPeer: () => TARGET,
      on: () => undefined,
    };
  };
  return { send, sent };
}

export function serviceError(code: number, details: string, trailers: Record<string, string> = {}): Error {
  const metadata = new Metadata();
  for (const [key, value] of Object.entries(trailers)) metadata.set(key, value);
  return Object.assign(new Error(`${code} ${details}`), { code, details, metadata });
}
