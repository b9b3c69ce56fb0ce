// A real grpc-js server implementing TestService and UserService whose behaviour each request
// scripts through its metadata, so a test can stage delays, failures, retry pushback and
// trailers without a bespoke server per case:
//
//   x-delay-ms: N       wait N ms before answering (Echo also honours EchoRequest.delayMs)
//   x-fail-code: C      answer with status C, details "scripted failure"
//   x-fail-times: N     with x-call-id: the first N calls carrying that id fail (with
//                       x-fail-code, default UNAVAILABLE), later ones succeed
//   x-delay-times: N    with x-call-id: only the first N calls carrying that id are delayed
//   x-call-id: ID       groups attempts of one logical call (see callsFor)
//   x-pushback-ms: V    on failure, trailer grpc-retry-pushback-ms: V (verbatim)
//   x-trailer-echo: V   trailer x-trailer-echo: V on success and on failure
//   x-payload-bytes: N  ServerStream: every message carries an N-byte payload
//   x-read-delay-ms: N  ClientStream: wait N ms after each request before reading the next
//   x-headers-first: 1  unary methods: send the response headers at once, before any delay
//                       (so the call is committed, gRFC A6, while the handler still works)
//   x-fail-after: N     ClientStream and Bidi: fail with x-fail-code (default ABORTED) once N
//                       requests have arrived (Bidi: after echoing them), not at the start
//
// Streaming methods apply the delay and failure scripts when the call starts. Their records
// count, as they go, the messages written and received and the writes that had to wait.
import { once } from 'node:events';
import { spawn, type ChildProcess } from 'node:child_process';
import type { Socket } from 'node:net';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import * as grpc from '@grpc/grpc-js';
import { testServiceDefinition, userServiceDefinition } from './protos.js';

export interface EchoRequest {
  message: string;
  delayMs: number;
  payload: Buffer;
}

export interface EchoResponse {
  message: string;
  deadlineMs: number;
  count: number;
  payload: Buffer;
}

export interface StreamRequest {
  message: string;
  count: number;
  intervalMs: number;
  failCode: number;
}

export interface UserRequest {
  id: number;
}

export interface BasicInfo {
  id: number;
  name: string;
  email: string;
}

export interface CallRecord {
  /** Proto method name, e.g. 'Echo' or 'QueryBasicInfoByID'. */
  method: string;
  metadata: grpc.Metadata;
  /** Deadline the server observed, epoch ms; Infinity when the client set none. */
  deadline: number;
  receivedAt: number;
  /**
   * The call ended before the handler answered: client cancel, deadline, connection loss, kill.
   * (grpc-js 1.14 emits 'cancelled' after every call, answered or not; only the former counts.)
   */
  cancelled: boolean;
  callId?: string;
  /** Streaming responses: messages the handler has written so far. */
  written: number;
  /** Streaming responses: writes that returned false (the handler then waited for 'drain'). */
  heldWrites: number;
  /** Streaming requests: messages the handler has read so far. */
  received: number;
}

export interface TestServerOptions {
  /** Defaults to 0 (ephemeral). Pass a previous server's port to restart "the same" server. */
  port?: number;
  host?: string;
  credentials?: grpc.ServerCredentials;
  /** Passed to the grpc.Server constructor (keepalive enforcement, message size limits...). */
  serverOptions?: grpc.ServerOptions;
}

export interface TestServer {
  readonly port: number;
  readonly address: string;
  /** Every call received, in arrival order. */
  readonly calls: CallRecord[];
  /** Number of calls received carrying `x-call-id: callId`. */
  callsFor(callId: string): number;
  /** Graceful: stop accepting, wait for in-flight calls to finish. Idempotent. */
  stop(): Promise<void>;
  /** Abrupt: close every connection now, cutting in-flight calls. Idempotent. */
  kill(): Promise<void>;
}

/** Streams never send more than this many messages, whatever the request asks. */
export const MAX_STREAM_MESSAGES = 100_000;

const SCRIPTED_DETAILS = 'scripted failure';

export async function startTestServer(options: TestServerOptions = {}): Promise<TestServer> {
  const host = options.host ?? '127.0.0.1';
  const server = new grpc.Server(options.serverOptions);
  const log = new CallLog();
  server.addService(testServiceDefinition, testServiceHandlers(log));
  server.addService(userServiceDefinition, userServiceHandlers(log));
  const port = await bind(
    server,
    formatAddress(host, options.port ?? 0),
    options.credentials ?? grpc.ServerCredentials.createInsecure(),
  );

  let stopping: Promise<void> | undefined;
  let killed = false;
  return {
    port,
    address: formatAddress(host, port),
    calls: log.calls,
    callsFor: (callId) => log.countFor(callId),
    stop() {
      stopping ??= new Promise((resolve) => server.tryShutdown(() => resolve()));
      return stopping;
    },
    kill() {
      if (!killed) {
        killed = true;
        // Abort our own timers first so no handler tries to answer on a dead stream.
        log.abortAll();
        server.forceShutdown();
      }
      return Promise.resolve();
    },
  };
}

function bind(server: grpc.Server, address: string, credentials: grpc.ServerCredentials): Promise<number> {
  return new Promise((resolve, reject) => {
    server.bindAsync(address, credentials, (error, port) => {
      if (error) {
        server.forceShutdown();
        reject(error);
      } else {
        resolve(port);
      }
    });
  });
}

function formatAddress(host: string, port: number): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}

// ---------------------------------------------------------------------------------------------
// Call bookkeeping

/** What a handler needs for one call: its record, its script, and a signal to stop work. */
interface CallContext {
  record: CallRecord;
  script: Script;
  /** Aborted when the call is cancelled or the server is killed. */
  signal: AbortSignal;
  /** Calls so far with this call id (including this one), or all calls when there is none. */
  attempt: number;
  /** Handlers call this right before answering: later 'cancelled' events are not cancellations. */
  finish(): void;
}

/** The part of every kind of grpc-js server call that the log needs. */
type ServerCall = Pick<grpc.ServerUnaryCall<unknown, unknown>, 'metadata' | 'getDeadline'> & NodeJS.EventEmitter;

class CallLog {
  readonly calls: CallRecord[] = [];
  // Controllers of calls still being handled, so kill() can stop their timers and writes.
  private readonly live = new Set<AbortController>();

  countFor(callId: string | undefined): number {
    if (callId === undefined) return this.calls.length;
    return this.calls.filter((call) => call.callId === callId).length;
  }

  begin(call: ServerCall, method: string): CallContext {
    const metadata = call.metadata;
    const callId = header(metadata, 'x-call-id');
    const record: CallRecord = {
      method,
      metadata,
      deadline: deadlineMs(call.getDeadline()),
      receivedAt: Date.now(),
      cancelled: false,
      ...(callId === undefined ? {} : { callId }),
      written: 0,
      heldWrites: 0,
      received: 0,
    };
    this.calls.push(record);

    const controller = new AbortController();
    this.live.add(controller);
    let finished = false;
    const finish = (): void => {
      finished = true;
      this.live.delete(controller);
    };
    call.once('cancelled', () => {
      if (finished) return;
      record.cancelled = true;
      controller.abort();
      finish();
    });

    const attempt = this.countFor(callId);
    return { record, script: readScript(metadata, attempt), signal: controller.signal, attempt, finish };
  }

  abortAll(): void {
    for (const controller of this.live) controller.abort();
    this.live.clear();
  }
}

function deadlineMs(deadline: grpc.Deadline): number {
  return deadline instanceof Date ? deadline.getTime() : deadline;
}

function echoResponse(record: CallRecord, message: string, count: number, payload: Buffer = Buffer.alloc(0)): EchoResponse {
  // deadline_ms uses 0 for "no deadline".
  const deadlineMs = Number.isFinite(record.deadline) ? record.deadline : 0;
  return { message, deadlineMs, count, payload };
}

function header(metadata: grpc.Metadata, key: string): string | undefined {
  const value = metadata.get(key)[0];
  return typeof value === 'string' ? value : undefined;
}

function intHeader(metadata: grpc.Metadata, key: string): number | undefined {
  const value = header(metadata, key);
  if (value === undefined) return undefined;
  const parsed = Number.parseInt(value, 10);
  return Number.isNaN(parsed) ? undefined : parsed;
}

// ---------------------------------------------------------------------------------------------
// Scripting

interface Script {
  delayMs: number;
  /** Status to fail with; undefined means succeed. */
  failCode: grpc.status | undefined;
  /** ClientStream and Bidi: fail once this many requests have arrived, instead of at the start. */
  failAfter: number | undefined;
  /** ServerStream: payload size of every message. */
  payloadBytes: number;
  /** ClientStream: pause after each request. */
  readDelayMs: number;
  /** Request metadata, read again to build trailers. */
  requestMetadata: grpc.Metadata;
}

function readScript(metadata: grpc.Metadata, attempt: number): Script {
  return {
    delayMs: attempt <= (intHeader(metadata, 'x-delay-times') ?? Number.POSITIVE_INFINITY) ? (intHeader(metadata, 'x-delay-ms') ?? 0) : 0,
    failCode: scriptedFailCode(metadata, attempt),
    failAfter: intHeader(metadata, 'x-fail-after'),
    payloadBytes: Math.max(0, intHeader(metadata, 'x-payload-bytes') ?? 0),
    readDelayMs: Math.max(0, intHeader(metadata, 'x-read-delay-ms') ?? 0),
    requestMetadata: metadata,
  };
}

function scriptedFailCode(metadata: grpc.Metadata, attempt: number): grpc.status | undefined {
  const code = intHeader(metadata, 'x-fail-code');
  const times = intHeader(metadata, 'x-fail-times');
  const failing = times === undefined ? code : attempt <= times ? (code ?? grpc.status.UNAVAILABLE) : undefined;
  // Status 0 is OK: "failing" with it would send OK without a response message.
  return failing === undefined || failing === grpc.status.OK ? undefined : failing;
}

function trailersFor(requestMetadata: grpc.Metadata, failing: boolean): grpc.Metadata {
  const trailers = new grpc.Metadata();
  const echo = header(requestMetadata, 'x-trailer-echo');
  if (echo !== undefined) trailers.set('x-trailer-echo', echo);
  const pushback = header(requestMetadata, 'x-pushback-ms');
  if (failing && pushback !== undefined) trailers.set('grpc-retry-pushback-ms', pushback);
  return trailers;
}

function failure(metadata: grpc.Metadata, code: grpc.status): grpc.ServerErrorResponse {
  return Object.assign(new Error(SCRIPTED_DETAILS), {
    code,
    details: SCRIPTED_DETAILS,
    metadata: trailersFor(metadata, true),
  });
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

function testServiceHandlers(log: CallLog): grpc.UntypedServiceImplementation {
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
    ClientStream: (
      call: grpc.ServerReadableStream<EchoRequest, EchoResponse>,
      callback: grpc.sendUnaryData<EchoResponse>,
    ) => {
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

function userServiceHandlers(log: CallLog): grpc.UntypedServiceImplementation {
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
async function serverStream(
  context: CallContext,
  call: grpc.ServerWritableStream<StreamRequest, EchoResponse>,
): Promise<void> {
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

// ---------------------------------------------------------------------------------------------
// Out-of-process server

export interface TestServerProcess {
  readonly port: number;
  readonly address: string;
  /** Terminates the child and waits for it to exit. Callers MUST call it (e.g. in afterAll). */
  kill(): Promise<void>;
}

const SERVER_SCRIPT = fileURLToPath(new URL('./server-process.ts', import.meta.url));
const TSX_BIN = fileURLToPath(new URL('../../node_modules/.bin/tsx', import.meta.url));
const STARTUP_TIMEOUT_MS = 15_000;
const EXIT_GRACE_MS = 2_000;

/**
 * Runs the same test server in a child process (via tsx), so a benchmark's client does not
 * share its event loop with the server. Callers must call kill() when done. As safety nets,
 * the child does not keep this process alive, gets SIGTERM when this process exits, and
 * exits by itself when its stdin closes (this process died, even by SIGKILL).
 */
export async function startTestServerProcess(): Promise<TestServerProcess> {
  const child = spawn(TSX_BIN, [SERVER_SCRIPT], { stdio: ['pipe', 'pipe', 'inherit'] });
  // SIGTERM rather than SIGKILL: the tsx wrapper relays it to the node process it runs.
  const killOnExit = (): void => {
    child.kill('SIGTERM');
  };
  process.once('exit', killOnExit);

  let port: number;
  try {
    port = await readPort(child);
  } catch (error) {
    process.off('exit', killOnExit);
    await terminate(child);
    throw error;
  }
  // Only now: until the port arrives, the pending read is what keeps this process running.
  unref(child);

  let killing: Promise<void> | undefined;
  return {
    port,
    address: `127.0.0.1:${port}`,
    kill() {
      killing ??= terminate(child).finally(() => process.off('exit', killOnExit));
      return killing;
    },
  };
}

function unref(child: ChildProcess): void {
  child.unref();
  for (const pipe of [child.stdin, child.stdout]) (pipe as Socket | null)?.unref();
}

/** Reads the child's first stdout line, `{"port":N}`, within a bounded time. */
async function readPort(child: ChildProcess): Promise<number> {
  if (!child.stdout) throw new Error('server process has no stdout');
  const lines = createInterface({ input: child.stdout });
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), STARTUP_TIMEOUT_MS);
  try {
    const [line] = (await Promise.race([
      once(lines, 'line', { signal: controller.signal }),
      once(child, 'exit', { signal: controller.signal }).then(([code]) => {
        throw new Error(`server process exited with code ${String(code)} before printing its port`);
      }),
    ])) as [string];
    const { port } = JSON.parse(line) as { port?: unknown };
    if (typeof port !== 'number') throw new Error(`unexpected server process output: ${line}`);
    return port;
  } catch (error) {
    if (controller.signal.aborted) throw new Error(`server process did not report its port within ${STARTUP_TIMEOUT_MS} ms`);
    throw error;
  } finally {
    clearTimeout(timer);
    controller.abort();
    lines.close();
  }
}

/** SIGTERM, then SIGKILL if the child has not exited within EXIT_GRACE_MS. */
async function terminate(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = once(child, 'exit');
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), EXIT_GRACE_MS);
  try {
    await exited;
  } finally {
    clearTimeout(timer);
    child.stdin?.destroy();
    child.stdout?.destroy();
  }
}
