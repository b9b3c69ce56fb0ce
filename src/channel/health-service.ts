import { Client, credentials, type experimental } from '@grpc/grpc-js';

// The standard health service (grpc.health.v1.Health) as health-check.ts uses it: its two
// one-field messages, encoded here by hand so that the package needs neither a .proto file nor a
// protobuf runtime, and the Watch call on one subchannel's own connection.

type SubchannelInterface = experimental.SubchannelInterface;

/** `grpc.health.v1.HealthCheckResponse.ServingStatus`, by name. */
export type ServingStatus = 'UNKNOWN' | 'SERVING' | 'NOT_SERVING' | 'SERVICE_UNKNOWN';
const SERVING_STATUSES: readonly ServingStatus[] = ['UNKNOWN', 'SERVING', 'NOT_SERVING', 'SERVICE_UNKNOWN'];

/** The Watch method of the standard health service. */
export const HEALTH_WATCH_PATH = '/grpc.health.v1.Health/Watch';

// ---- the health messages ----

/** `HealthCheckRequest { string service = 1; }`, serialized. */
export function encodeHealthRequest(serviceName: string): Buffer {
  const name = Buffer.from(serviceName, 'utf8');
  // proto3 leaves an empty string out.
  if (name.length === 0) return Buffer.alloc(0);
  return Buffer.concat([Buffer.from([0x0a]), encodeVarint(name.length), name]);
}

/**
 * `HealthCheckResponse { ServingStatus status = 1; }`, parsed: the last `status` field wins, other
 * fields are skipped, an enum value this code does not know reads as UNKNOWN (not serving).
 * @throws Error on bytes that are not a protobuf message (grpc-js then ends the call INTERNAL).
 */
export function decodeHealthResponse(bytes: Buffer): ServingStatus {
  let found: ServingStatus = 'UNKNOWN';
  let at = 0;
  const varint = (): number => {
    let value = 0;
    for (let shift = 0; shift < 64; shift += 7) {
      if (at >= bytes.length) throw new Error('health response: truncated varint');
      const byte = bytes[at++]!;
      // Only the low 53 bits can matter here; higher ones of an oversized value are dropped.
      if (shift < 49) value += (byte & 0x7f) * 2 ** shift;
      if ((byte & 0x80) === 0) return value;
    }
    throw new Error('health response: varint too long');
  };
  while (at < bytes.length) {
    const key = varint();
    const field = Math.floor(key / 8);
    const wireType = key % 8;
    if (field === 0) throw new Error('health response: field number 0');
    switch (wireType) {
      case 0: {
        const value = varint();
        if (field === 1) found = SERVING_STATUSES[value] ?? 'UNKNOWN';
        break;
      }
      case 1:
        at += 8;
        break;
      case 2: {
        // Not `at += varint()`: that would add the length to `at` as it was before the length was read.
        const length = varint();
        at += length;
        break;
      }
      case 5:
        at += 4;
        break;
      default:
        throw new Error(`health response: wire type ${wireType}`);
    }
    if (at > bytes.length) throw new Error('health response: truncated field');
  }
  return found;
}

function encodeVarint(n: number): Buffer {
  const out: number[] = [];
  while (n > 0x7f) {
    out.push((n & 0x7f) | 0x80);
    n = Math.floor(n / 128);
  }
  out.push(n);
  return Buffer.from(out);
}

// ---- the Watch call ----

/** What a Watch call tells its watch. */
export interface WatchListener {
  /** A report arrived. */
  report(status: ServingStatus): void;
  /** The call ended with this gRPC status code. */
  ended(code: number): void;
}

/** Starts a Watch call for `serviceName` on a subchannel's own connection; returns its cancel. */
export type OpenWatch = (subchannel: SubchannelInterface, serviceName: string, listener: WatchListener) => () => void;

/** The real Watch call: a grpc-js client over the subchannel's channel (no deadline: it lasts as long as the connection). */
export const openGrpcWatch: OpenWatch = (subchannel, serviceName, listener) => {
  // The credentials argument is not used with a channel override; the subchannel's channel sends
  // the channel's own call credentials, as A17 asks.
  const client = new Client('health-check', credentials.createInsecure(), { channelOverride: subchannel.getChannel() });
  const call = client.makeServerStreamRequest<string, ServingStatus>(
    HEALTH_WATCH_PATH,
    encodeHealthRequest,
    decodeHealthResponse,
    serviceName,
  );
  call.on('data', (report: ServingStatus) => listener.report(report));
  // Every end is also a 'status' event; 'error' needs a listener so that it does not throw.
  call.on('error', () => {});
  call.on('status', (end: { code: number }) => listener.ended(end.code));
  // The client is not closed: closing would close the subchannel's shared channel object.
  return () => call.cancel();
};
