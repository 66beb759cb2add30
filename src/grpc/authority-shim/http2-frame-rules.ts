// What Node's own HTTP/2 server (nghttp2) treats as a connection error in a client's frames
// (RFC 9113 §4.2, §5.1, §6), so the rewriter closes on the same input whichever path a
// connection took. Stream errors are left to Node: it sees every non-header frame as sent.
import { Flags, FrameType, type FrameHeader } from "./http2-frames.js";

export class Http2FramingError extends Error {
  override name = "Http2FramingError";
}

/** Per-type payload lengths that are fixed (FRAME_SIZE_ERROR otherwise). */
const FIXED_LENGTH: Partial<Record<number, number>> = {
  [FrameType.RST_STREAM]: 4,
  [FrameType.PING]: 8,
  [FrameType.WINDOW_UPDATE]: 4,
};

/** Frames that only exist on stream 0, and frames that never do. */
const CONNECTION_ONLY = new Set<number>([FrameType.SETTINGS, FrameType.PING, FrameType.GOAWAY]);
const STREAM_ONLY = new Set<number>([
  FrameType.DATA,
  FrameType.HEADERS,
  FrameType.PRIORITY,
  FrameType.RST_STREAM,
  FrameType.CONTINUATION,
]);
/** Frames that may name a stream the client has not opened yet (§5.1 "idle"). */
const ALLOWED_ON_IDLE = new Set<number>([FrameType.HEADERS, FrameType.PRIORITY]);

/**
 * Checks a client frame header. `maxFrameSize` is what the server advertised (Node: 16,384);
 * `highestStreamId` is the highest stream the client opened so far.
 */
export function checkFrameHeader(
  f: FrameHeader,
  maxFrameSize: number,
  highestStreamId: number,
): void {
  if (f.length > maxFrameSize) {
    throw new Http2FramingError(
      `a frame of ${f.length} bytes exceeds the maximum frame size ${maxFrameSize}`,
    );
  }
  if (f.type > FrameType.CONTINUATION) return; // unknown types are ignored (§4.1)
  const fixed = FIXED_LENGTH[f.type];
  if (fixed !== undefined && f.length !== fixed) {
    throw new Http2FramingError(`frame type ${f.type} must be ${fixed} bytes, got ${f.length}`);
  }
  if (
    f.type === FrameType.SETTINGS &&
    (f.flags & Flags.ACK ? f.length !== 0 : f.length % 6 !== 0)
  ) {
    throw new Http2FramingError(`a SETTINGS frame of ${f.length} bytes`);
  }
  if (f.type === FrameType.GOAWAY && f.length < 8) {
    throw new Http2FramingError(`a GOAWAY frame of ${f.length} bytes`);
  }
  if (CONNECTION_ONLY.has(f.type) && f.streamId !== 0) {
    throw new Http2FramingError(`frame type ${f.type} on stream ${f.streamId}`);
  }
  if (STREAM_ONLY.has(f.type) && f.streamId === 0) {
    throw new Http2FramingError(`frame type ${f.type} on stream 0`);
  }
  if (f.type === FrameType.HEADERS && f.streamId % 2 === 0) {
    throw new Http2FramingError(`HEADERS on server stream ${f.streamId}`);
  }
  if (f.streamId > highestStreamId && !ALLOWED_ON_IDLE.has(f.type)) {
    throw new Http2FramingError(`frame type ${f.type} on idle stream ${f.streamId}`);
  }
}

const SETTINGS_ENABLE_PUSH = 0x2;
const SETTINGS_INITIAL_WINDOW_SIZE = 0x4;
const SETTINGS_MAX_FRAME_SIZE = 0x5;

/** Checks the payload of a SETTINGS (non-ACK) or WINDOW_UPDATE frame (RFC 9113 §6.5.2, §6.9). */
export function checkFramePayload(f: FrameHeader, payload: Buffer): void {
  if (f.type === FrameType.WINDOW_UPDATE) {
    if (f.streamId === 0 && (payload.readUInt32BE(0) & 0x7fffffff) === 0) {
      throw new Http2FramingError("a connection WINDOW_UPDATE of 0");
    }
    return;
  }
  if (f.type !== FrameType.SETTINGS) return;
  for (let at = 0; at + 6 <= payload.length; at += 6) {
    const id = payload.readUInt16BE(at);
    const value = payload.readUInt32BE(at + 2);
    const bad =
      (id === SETTINGS_ENABLE_PUSH && value > 1) ||
      (id === SETTINGS_INITIAL_WINDOW_SIZE && value > 0x7fffffff) ||
      (id === SETTINGS_MAX_FRAME_SIZE && (value < 16384 || value > 0xffffff));
    if (bad) throw new Http2FramingError(`SETTINGS ${id} = ${value} is out of range`);
  }
}

/** Whether the rewriter must see this frame's payload to check it. */
export function needsPayloadCheck(f: FrameHeader): boolean {
  return (
    (f.type === FrameType.SETTINGS && !(f.flags & Flags.ACK)) ||
    (f.type === FrameType.WINDOW_UPDATE && f.streamId === 0)
  );
}
