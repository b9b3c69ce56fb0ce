// The handlers of TestService and UserService behind the test server: each records the call in
// the CallLog, follows the request's metadata script (see call-script.ts), and stops its timers
// and writes as soon as the call is cancelled or the server killed.
import { once } from 'node:events';
import { setTimeout as sleep } from 'node:timers/promises';
import * as grpc from '@grpc/grpc-js';
import type { CallContext, CallLog, CallRecord } from './call-log.js';
import { failure, header, trailersFor } from './call-script.js';
import type { BasicInfo, EchoRequest, EchoResponse, StreamRequest, UserRequest } from './protos.js';

/** Streams never send more than this many messages, whatever the request asks. */
export const MAX_STREAM_MESSAGES = 100_000;

function echoResponse(record: CallRecord, message: string, count: number, payload: Buffer = Buffer.alloc(0)): EchoResponse {
  // deadline_ms uses 0 for "no deadline".
  const deadlineMs = Number.isFinite(record.deadline) ? record.deadline : 0;
  return { message, deadlineMs, count, payload };
}

/** Resolves true after `ms`, or false as soon as the call is aborted (clearing the timer). */
async function pause(ms: number, signal: AbortSignal): Promise<boolean> {
  if (signal.aborted) return false;
  if (ms <= 0) return true;
  try {
    await sleep(ms, undefined, { signal });
    return true;
  } catch (error) {
    if (signal.aborted) return false;
    throw error;
  }
}

/** Resolves true when `event` fires, or false as soon as the call is aborted. */
async function nextEvent(emitter: NodeJS.EventEmitter, event: string, signal: AbortSignal): Promise<boolean> {
  try {
    await once(emitter, event, { signal });
    return true;
  } catch (error) {
    if (signal.aborted) return false;
    throw error;
  }
}

// grpc-js cancels a client call by closing its HTTP/2 stream, and Node sends END_STREAM first,
// RST_STREAM right after: the server sees what looks like a half-close, then, a moment later,
// the cancellation. Client and bidi streams wait this long after 'end' before answering, so a
// cancelled call is recorded as cancelled rather than answered.
const HALF_CLOSE_SETTLE_MS = 50;

/** Resolves true when the client half-closes its side of a stream, false when the call is cancelled. */
async function halfClosed(call: NodeJS.EventEmitter, signal: AbortSignal): Promise<boolean> {
  if (!(await nextEvent(call, 'end', signal))) return false;
  return pause(HALF_CLOSE_SETTLE_MS, signal);
}

// ---------------------------------------------------------------------------------------------
// Handlers

/** Shared shape of every unary method: record, wait, then fail or answer. */
function unary<Req, Res>(
  log: CallLog,
  method: string,
  answer: (request: Req, context: CallContext) => Res,
  requestDelayMs: (request: Req) => number = () => 0,
): grpc.handleUnaryCall<Req, Res> {
  return (call, callback) => {
    const context = log.begin(call, method);
    const { script, signal } = context;
    const delay = script.delayMs || requestDelayMs(call.request);
    if (header(call.metadata, 'x-headers-first') !== undefined) call.sendMetadata(new grpc.Metadata());
    void pause(delay, signal)
      .then((proceed) => {
        if (!proceed) return;
        context.finish();
        if (script.failCode !== undefined) callback(failure(script.requestMetadata, script.failCode));
        else callback(null, answer(call.request, context), trailersFor(script.requestMetadata, false));
      })
      .catch((error: unknown) => {
        context.finish();
        callback(error as Error);
      });
  };
}

export function testServiceHandlers(log: CallLog): grpc.UntypedServiceImplementation {
  const echo = unary<EchoRequest, EchoResponse>(
    log,
    'Echo',
    (request, { record, attempt }) => echoResponse(record, request.message, attempt, request.payload),
    (request) => request.delayMs,
  );
  return {
    Echo: echo,
    ServerStream: (call: grpc.ServerWritableStream<StreamRequest, EchoResponse>) => {
      const context = log.begin(call, 'ServerStream');
      void serverStream(context, call).catch((error: unknown) => failStream(context, call, error));
    },
    ClientStream: (call: grpc.ServerReadableStream<EchoRequest, EchoResponse>, callback: grpc.sendUnaryData<EchoResponse>) => {
      const context = log.begin(call, 'ClientStream');
      void clientStream(context, call, callback).catch((error: unknown) => {
        context.finish();
        callback(error as Error);
      });
    },
    Bidi: (call: grpc.ServerDuplexStream<EchoRequest, EchoResponse>) => {
      const context = log.begin(call, 'Bidi');
      void bidi(context, call).catch((error: unknown) => failStream(context, call, error));
    },
  };
}

export function userServiceHandlers(log: CallLog): grpc.UntypedServiceImplementation {
  return {
    QueryBasicInfoByID: unary<UserRequest, BasicInfo>(log, 'QueryBasicInfoByID', ({ id }) => ({
      id,
      name: `user-${id}`,
      email: `user${id}@example.test`,
    })),
  };
}

/**
 * Common start of the streaming methods: the scripted delay, then the scripted failure.
 * Resolves false when the call must not go on (cancelled, or failed by script).
 */
async function startStream(context: CallContext, fail: (error: grpc.ServerErrorResponse) => void) {
  const { script, signal } = context;
  if (!(await pause(script.delayMs, signal))) return false;
  if (script.failCode === undefined || script.failAfter !== undefined) return true;
  context.finish();
  fail(failure(script.requestMetadata, script.failCode));
  return false;
}

// grpc-js turns an 'error' event on a server stream into the call's final status.
function failStream(context: CallContext, call: NodeJS.EventEmitter, error: unknown): void {
  context.finish();
  call.emit('error', error);
}

// Messages are numbered from 0: message `${message}-${i}`, count i.
async function serverStream(context: CallContext, call: grpc.ServerWritableStream<StreamRequest, EchoResponse>): Promise<void> {
  if (!(await startStream(context, (error) => call.emit('error', error)))) return;
  const { message, count, intervalMs, failCode } = call.request;
  const { signal, record, script } = context;
  const total = Math.min(count, MAX_STREAM_MESSAGES);
  const payload = Buffer.alloc(script.payloadBytes, 0x61);
  for (let i = 0; i < total; i++) {
    if (i > 0 && !(await pause(intervalMs, signal))) return;
    if (signal.aborted) return;
    const accepted = call.write(echoResponse(record, `${message}-${i}`, i, payload));
    record.written++;
    if (!accepted) {
      record.heldWrites++;
      if (!(await nextEvent(call, 'drain', signal))) return;
    }
  }
  if (failCode !== 0) failStream(context, call, failure(script.requestMetadata, failCode));
  else {
    context.finish();
    call.end(trailersFor(script.requestMetadata, false));
  }
}

/** Answers with every request's message joined by ',' once the client half-closes. */
async function clientStream(
  context: CallContext,
  call: grpc.ServerReadableStream<EchoRequest, EchoResponse>,
  callback: grpc.sendUnaryData<EchoResponse>,
): Promise<void> {
  if (!(await startStream(context, (error) => callback(error)))) return;
  const { record, script, signal } = context;
  // The stream stays paused until a 'data' listener is attached, so nothing sent during the
  // scripted delay is lost.
  const messages: string[] = [];
  const failed = new AbortController();
  call.on('data', (request: EchoRequest) => {
    if (failed.signal.aborted) return;
    messages.push(request.message);
    record.received++;
    if (script.failAfter !== undefined && record.received >= script.failAfter) {
      failed.abort();
      context.finish();
      callback(failure(script.requestMetadata, script.failCode ?? grpc.status.ABORTED));
      return;
    }
    if (script.readDelayMs > 0) {
      call.pause();
      void pause(script.readDelayMs, signal).then((proceed) => {
        if (proceed) call.resume();
      });
    }
  });
  if (!(await halfClosed(call, AbortSignal.any([signal, failed.signal])))) return;
  const response = echoResponse(record, messages.join(','), messages.length);
  context.finish();
  callback(null, response, trailersFor(script.requestMetadata, false));
}

// Echoes each request as it arrives (count = its 0-based index) and ends when the client does.
async function bidi(context: CallContext, call: grpc.ServerDuplexStream<EchoRequest, EchoResponse>): Promise<void> {
  if (!(await startStream(context, (error) => call.emit('error', error)))) return;
  const { signal, record, script } = context;
  let index = 0;
  const failed = new AbortController();
  call.on('data', (request: EchoRequest) => {
    if (signal.aborted || failed.signal.aborted) return;
    record.received++;
    // Stop reading while the client is not keeping up, instead of buffering without limit.
    const accepted = call.write(echoResponse(record, request.message, index++));
    record.written++;
    if (script.failAfter !== undefined && record.received >= script.failAfter) {
      failed.abort();
      failStream(context, call, failure(script.requestMetadata, script.failCode ?? grpc.status.ABORTED));
      return;
    }
    if (!accepted) {
      record.heldWrites++;
      call.pause();
      call.once('drain', () => call.resume());
    }
  });
  if (!(await halfClosed(call, AbortSignal.any([signal, failed.signal])))) return;
  context.finish();
  call.end(trailersFor(script.requestMetadata, false));
}
