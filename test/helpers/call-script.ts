// The script a request carries in its metadata, which the test server's handlers follow, so a
// test can stage delays, failures, retry pushback and trailers without a bespoke server per case:
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
// Streaming methods apply the delay and failure scripts when the call starts.
import * as grpc from '@grpc/grpc-js';

const SCRIPTED_DETAILS = 'scripted failure';

export interface Script {
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

export function readScript(metadata: grpc.Metadata, attempt: number): Script {
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

export function trailersFor(requestMetadata: grpc.Metadata, failing: boolean): grpc.Metadata {
  const trailers = new grpc.Metadata();
  const echo = header(requestMetadata, 'x-trailer-echo');
  if (echo !== undefined) trailers.set('x-trailer-echo', echo);
  const pushback = header(requestMetadata, 'x-pushback-ms');
  if (failing && pushback !== undefined) trailers.set('grpc-retry-pushback-ms', pushback);
  return trailers;
}

export function failure(metadata: grpc.Metadata, code: grpc.status): grpc.ServerErrorResponse {
  return Object.assign(new Error(SCRIPTED_DETAILS), {
    code,
    details: SCRIPTED_DETAILS,
    metadata: trailersFor(metadata, true),
  });
}

export function header(metadata: grpc.Metadata, key: string): string | undefined {
  const value = metadata.get(key)[0];
  return typeof value === 'string' ? value : undefined;
}

function intHeader(metadata: grpc.Metadata, key: string): number | undefined {
  const value = header(metadata, key);
  if (value === undefined) return undefined;
  const parsed = Number.parseInt(value, 10);
  return Number.isNaN(parsed) ? undefined : parsed;
}
