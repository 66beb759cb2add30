// HTTP/2 framing constants and helpers (RFC 9113 §3.4, §4.1, §6).

export const CLIENT_MAGIC = Buffer.from("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", "latin1");
export const FRAME_HEADER_LENGTH = 9;
/** SETTINGS_MAX_FRAME_SIZE initial value; Node's server never raises it for grpc-js. */
export const DEFAULT_MAX_FRAME_SIZE = 16384;

export const FrameType = {
  DATA: 0x0,
  HEADERS: 0x1,
  PRIORITY: 0x2,
  RST_STREAM: 0x3,
  SETTINGS: 0x4,
  PUSH_PROMISE: 0x5,
  PING: 0x6,
  GOAWAY: 0x7,
  WINDOW_UPDATE: 0x8,
  CONTINUATION: 0x9,
} as const;

export const Flags = {
  END_STREAM: 0x1,
  ACK: 0x1,
  END_HEADERS: 0x4,
  PADDED: 0x8,
  PRIORITY: 0x20,
} as const;

export interface FrameHeader {
  readonly length: number;
  readonly type: number;
  readonly flags: number;
  readonly streamId: number;
}

export function readFrameHeader(buf: Uint8Array, offset = 0): FrameHeader {
  const b = (i: number): number => buf[offset + i] ?? 0;
  return {
    length: (b(0) << 16) | (b(1) << 8) | b(2),
    type: b(3),
    flags: b(4),
    streamId: (b(5) & 0x7f) * 2 ** 24 + ((b(6) << 16) | (b(7) << 8) | b(8)),
  };
}

export function writeFrameHeader(out: Buffer, offset: number, h: FrameHeader): void {
  out[offset] = (h.length >>> 16) & 0xff;
  out[offset + 1] = (h.length >>> 8) & 0xff;
  out[offset + 2] = h.length & 0xff;
  out[offset + 3] = h.type;
  out[offset + 4] = h.flags;
  out.writeUInt32BE(h.streamId & 0x7fffffff, offset + 5);
}

export function encodeFrame(
  type: number,
  flags: number,
  streamId: number,
  payload: Uint8Array,
): Buffer {
  const out = Buffer.allocUnsafe(FRAME_HEADER_LENGTH + payload.length);
  writeFrameHeader(out, 0, { length: payload.length, type, flags, streamId });
  out.set(payload, FRAME_HEADER_LENGTH);
  return out;
}

/** An empty SETTINGS frame: "all defaults", a valid server connection preface (RFC 9113 §3.4). */
export const EMPTY_SETTINGS_FRAME = encodeFrame(FrameType.SETTINGS, 0, 0, Buffer.alloc(0));

export interface HeaderBlockFrame {
  readonly streamId: number;
  readonly endStream: boolean;
  /** The 5 priority octets of the original HEADERS frame, kept as they were. */
  readonly priority: Buffer | undefined;
  readonly block: Buffer;
}

/** HEADERS (+ CONTINUATION) frames carrying `block`, unpadded, each at most `maxFrameSize`. */
export function encodeHeaderFrames(
  f: HeaderBlockFrame,
  maxFrameSize = DEFAULT_MAX_FRAME_SIZE,
): Buffer {
  const prio = f.priority?.length ?? 0;
  const firstRoom = maxFrameSize - prio;
  const rest = Math.max(0, f.block.length - firstRoom);
  const continuations = Math.ceil(rest / maxFrameSize);
  const out = Buffer.allocUnsafe(prio + f.block.length + FRAME_HEADER_LENGTH * (1 + continuations));
  const firstLength = Math.min(f.block.length, firstRoom);
  let flags = f.endStream ? Flags.END_STREAM : 0;
  if (f.priority) flags |= Flags.PRIORITY;
  if (continuations === 0) flags |= Flags.END_HEADERS;
  writeFrameHeader(out, 0, {
    length: prio + firstLength,
    type: FrameType.HEADERS,
    flags,
    streamId: f.streamId,
  });
  let pos = FRAME_HEADER_LENGTH;
  if (f.priority) pos += f.priority.copy(out, pos);
  pos += f.block.copy(out, pos, 0, firstLength);
  let taken = firstLength;
  for (let i = 0; i < continuations; i++) {
    const length = Math.min(maxFrameSize, f.block.length - taken);
    const last = i === continuations - 1;
    writeFrameHeader(out, pos, {
      length,
      type: FrameType.CONTINUATION,
      flags: last ? Flags.END_HEADERS : 0,
      streamId: f.streamId,
    });
    pos += FRAME_HEADER_LENGTH;
    pos += f.block.copy(out, pos, taken, taken + length);
    taken += length;
  }
  return out;
}
