// Just enough HTTP/2 framing (RFC 9113 §4) for test peers that watch or inject frames on a
// byte stream: a reader that cuts a stream into whole frames, and a GOAWAY encoder.

export const FRAME_HEADER_BYTES = 9;
/** The client connection preface, "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", sent before any frame. */
export const CLIENT_PREFACE_BYTES = 24;

export const FrameType = {
  DATA: 0x0,
  HEADERS: 0x1,
  RST_STREAM: 0x3,
  SETTINGS: 0x4,
  PING: 0x6,
  GOAWAY: 0x7,
  WINDOW_UPDATE: 0x8,
  CONTINUATION: 0x9,
} as const;

export const FrameFlag = {
  /** DATA, HEADERS */
  END_STREAM: 0x1,
  /** PING, SETTINGS */
  ACK: 0x1,
} as const;

/** HTTP/2 error code ENHANCE_YOUR_CALM, sent with debug data "too_many_pings" per gRFC A8. */
export const ENHANCE_YOUR_CALM = 0xb;

export interface Frame {
  type: number;
  flags: number;
  streamId: number;
  /** The whole frame, header included, exactly as it was on the wire. */
  bytes: Buffer;
}

/**
 * Cuts a byte stream into whole frames. push() takes chunks as they arrive (any size) and
 * returns the frames they completed; a partial frame waits inside for the rest of its bytes.
 */
export class FrameReader {
  private pending: Buffer = Buffer.alloc(0);
  private prefaceLeft: number;

  /** @param skipPreface true on the client-to-server direction, which starts with the preface. */
  constructor(skipPreface: boolean) {
    this.prefaceLeft = skipPreface ? CLIENT_PREFACE_BYTES : 0;
  }

  push(chunk: Buffer): Frame[] {
    let data = this.pending.length === 0 ? chunk : Buffer.concat([this.pending, chunk]);
    if (this.prefaceLeft > 0) {
      const skipped = Math.min(this.prefaceLeft, data.length);
      this.prefaceLeft -= skipped;
      data = data.subarray(skipped);
    }
    const frames: Frame[] = [];
    let offset = 0;
    while (data.length - offset >= FRAME_HEADER_BYTES) {
      const length = data.readUIntBE(offset, 3);
      const end = offset + FRAME_HEADER_BYTES + length;
      if (end > data.length) break;
      frames.push({
        type: data[offset + 3]!,
        flags: data[offset + 4]!,
        streamId: data.readUInt32BE(offset + 5) & 0x7fffffff,
        bytes: data.subarray(offset, end),
      });
      offset = end;
    }
    // Copy the remainder so it does not pin the (possibly large) chunk it came from.
    this.pending = Buffer.from(data.subarray(offset));
    return frames;
  }
}

/** A GOAWAY frame (stream 0) with the given last stream id, error code and debug data. */
export function goawayFrame(lastStreamId: number, errorCode: number, debugData: string): Buffer {
  const debug = Buffer.from(debugData, 'ascii');
  const frame = Buffer.alloc(FRAME_HEADER_BYTES + 8 + debug.length);
  frame.writeUIntBE(8 + debug.length, 0, 3);
  frame[3] = FrameType.GOAWAY;
  frame[4] = 0;
  frame.writeUInt32BE(0, 5);
  frame.writeUInt32BE(lastStreamId & 0x7fffffff, 9);
  frame.writeUInt32BE(errorCode, 13);
  debug.copy(frame, 17);
  return frame;
}
