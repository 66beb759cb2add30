import { HpackDecoder, type HeaderField } from "./hpack-decoder.js";
import { encodeLiteralBlock } from "./hpack-encoder.js";
import {
  Http2FramingError,
  checkFrameHeader,
  checkFramePayload,
  needsPayloadCheck,
} from "./http2-frame-rules.js";
import {
  CLIENT_MAGIC,
  DEFAULT_MAX_FRAME_SIZE,
  FRAME_HEADER_LENGTH,
  Flags,
  FrameType,
  encodeHeaderFrames,
  readFrameHeader,
  type FrameHeader,
} from "./http2-frames.js";

export { Http2FramingError };

export interface HeaderRewriterOptions {
  /** Bound on one header block as received (frame payloads incl. padding). */
  readonly maxHeaderBlockBytes: number;
  /** Bound on one header block as decoded (name + value + 32 per field); default as received. */
  readonly maxDecodedBytes?: number;
  /** Largest dynamic table the client may switch to. */
  readonly maxTableSize: number;
  /** Drop the client's first SETTINGS ACK: it answers a SETTINGS the server never sent. */
  readonly dropFirstSettingsAck: boolean;
  /** Maps each decoded field to the field the server should see. */
  readonly rewriteField: (field: HeaderField) => HeaderField;
}

/** Absolute byte range [start, end) of the client stream. */
export interface ByteRange {
  readonly start: number;
  readonly end: number;
}

/**
 * Bounds on one header block, no looser than Node's own path (seen with Node 24 / nghttp2 1.70:
 * 16 CONTINUATIONs pass and 17 get GOAWAY; blocks of 140 KB pass and 154 KB get GOAWAY).
 * Empty CONTINUATIONs would otherwise cost nothing against the byte bound (the "CONTINUATION
 * flood"). The decoded bound is the same because the block is re-encoded as literals, at least
 * as long as decoded: a larger one would reach Node beyond what it accepts.
 */
export const MAX_CONTINUATIONS = 16;
export const MAX_HEADER_BLOCK_BYTES = 128 * 1024;

interface PendingBlock {
  readonly streamId: number;
  readonly endStream: boolean;
  readonly priority: Buffer | undefined;
  readonly fragments: Buffer[];
  size: number;
  continuations: number;
}

/** Forward as is; forward and keep a copy to check; drop; collect to rewrite. */
type Action = "pass" | "check" | "drop" | "collect";

/**
 * Incremental filter for the client-to-server half of an HTTP/2 connection. Every header
 * block is decoded with a decoder that mirrors the client's HPACK encoder, rewritten field by
 * field and re-emitted as stateless literals; all other frames pass through byte for byte.
 * Accepts input split at any byte boundary. Throws on anything malformed.
 */
export class HeaderRewriter {
  private readonly decoder: HpackDecoder;
  private readonly stash = Buffer.alloc(CLIENT_MAGIC.length);
  private stashLength = 0;
  private state: "magic" | "frame-header" | "payload" = "magic";
  private frame: FrameHeader = { length: 0, type: 0, flags: 0, streamId: 0 };
  private action: Action = "pass";
  private remaining = 0;
  private readonly framePayload: Buffer[] = [];
  private block: PendingBlock | undefined;
  private framesSeen = 0;
  private offset = 0;
  private highestStreamId = 0;

  /** The 24-byte magic has arrived and matched. */
  magicReceived = false;
  /** The magic and the complete initial SETTINGS frame have arrived. */
  prefaceReceived = false;
  /** Where the dropped SETTINGS ACK sat in the input, once seen. */
  droppedAck: ByteRange | undefined;
  /** The first complete header block as the client sent it, once seen (until forgotten). */
  firstHeaderBlock: HeaderField[] | undefined;
  /** A complete header block has been seen: the client made a request. */
  sawHeaderBlock = false;

  constructor(private readonly options: HeaderRewriterOptions) {
    this.decoder = new HpackDecoder({
      maxTableSize: options.maxTableSize,
      maxHeaderListSize: options.maxDecodedBytes ?? options.maxHeaderBlockBytes,
    });
  }

  /** Drops the first header block once it has been looked at (it may be 128 KiB). */
  forgetFirstHeaderBlock(): void {
    this.firstHeaderBlock = undefined;
  }

  /** Total bytes consumed so far. */
  get bytesIn(): number {
    return this.offset;
  }

  /** Consumes a chunk; returns the bytes to forward, in order (slices of `chunk` where possible). */
  push(chunk: Buffer): Buffer[] {
    const out: Buffer[] = [];
    let i = 0;
    let passFrom = -1; // start of a run of `chunk` to forward unchanged
    const flush = (end: number): void => {
      if (passFrom >= 0 && end > passFrom) out.push(chunk.subarray(passFrom, end));
      passFrom = -1;
    };
    while (i < chunk.length) {
      if (this.state === "payload") {
        const n = Math.min(this.remaining, chunk.length - i);
        if (this.action === "pass" || this.action === "check") {
          if (passFrom < 0) passFrom = i;
        }
        if (this.action === "collect" || this.action === "check") {
          this.framePayload.push(chunk.subarray(i, i + n));
        }
        i += n;
        this.remaining -= n;
        if (this.remaining === 0) {
          const rewritten = this.endFrame();
          if (rewritten) {
            flush(i);
            out.push(rewritten);
          }
        }
        continue;
      }
      // Magic or frame header: read in place when whole, else gather in the stash.
      const need = this.state === "magic" ? CLIENT_MAGIC.length : FRAME_HEADER_LENGTH;
      let bytes: Buffer;
      let inPlace: boolean;
      if (this.stashLength === 0 && chunk.length - i >= need) {
        bytes = chunk.subarray(i, i + need);
        inPlace = true;
      } else {
        flush(i); // these bytes are not forwarded as they stand
        const n = Math.min(need - this.stashLength, chunk.length - i);
        chunk.copy(this.stash, this.stashLength, i, i + n);
        this.stashLength += n;
        if (
          this.state === "magic" &&
          !this.stash
            .subarray(0, this.stashLength)
            .equals(CLIENT_MAGIC.subarray(0, this.stashLength))
        ) {
          throw new Http2FramingError("not an HTTP/2 client preface"); // fail fast on a short prefix
        }
        if (this.stashLength < need) {
          i += n;
          continue;
        }
        // Rewind so `i - need` below is where these bytes began (possibly in an earlier chunk).
        bytes = Buffer.from(this.stash.subarray(0, need));
        this.stashLength = 0;
        inPlace = false;
        i += n - need;
      }
      const start = i;
      i += need;
      const isMagic = this.state === "magic";
      const forward = isMagic ? this.onMagic(bytes) : this.onFrameHeader(bytes, start);
      if (forward) {
        if (inPlace) {
          if (passFrom < 0) passFrom = start;
        } else {
          flush(Math.max(start, 0));
          out.push(bytes);
        }
      } else {
        flush(Math.max(start, 0));
      }
      if (!isMagic && this.remaining === 0) {
        const rewritten = this.endFrame();
        if (rewritten) out.push(rewritten); // nothing of this frame was pending in `passFrom`
      }
    }
    flush(chunk.length);
    this.offset += chunk.length;
    return out;
  }

  private onMagic(bytes: Buffer): boolean {
    if (!bytes.equals(CLIENT_MAGIC)) throw new Http2FramingError("not an HTTP/2 client preface");
    this.magicReceived = true;
    this.state = "frame-header";
    return true;
  }

  /** Classifies a frame; returns whether its header is forwarded unchanged. */
  private onFrameHeader(bytes: Buffer, start: number): boolean {
    const f = readFrameHeader(bytes);
    this.frame = f;
    this.framesSeen++;
    if (this.framesSeen === 1 && (f.type !== FrameType.SETTINGS || f.flags & Flags.ACK)) {
      throw new Http2FramingError("client preface must end with a SETTINGS frame");
    }
    if (this.block && f.type !== FrameType.CONTINUATION) {
      throw new Http2FramingError("header block interrupted by another frame");
    }
    checkFrameHeader(f, DEFAULT_MAX_FRAME_SIZE, this.highestStreamId);
    if (f.type === FrameType.HEADERS) {
      this.highestStreamId = Math.max(this.highestStreamId, f.streamId);
    }
    this.state = "payload";
    this.remaining = f.length;
    switch (f.type) {
      case FrameType.HEADERS:
      case FrameType.CONTINUATION: {
        if (f.type === FrameType.CONTINUATION) {
          if (this.block?.streamId !== f.streamId) {
            throw new Http2FramingError("CONTINUATION without a matching HEADERS");
          }
          if (++this.block.continuations > MAX_CONTINUATIONS) {
            throw new Http2FramingError("too many CONTINUATION frames");
          }
        }
        const used = this.block?.size ?? 0;
        if (f.length > this.options.maxHeaderBlockBytes - used) {
          throw new Http2FramingError("header block too large");
        }
        this.action = "collect";
        return false;
      }
      case FrameType.PUSH_PROMISE:
        throw new Http2FramingError("PUSH_PROMISE from a client");
      case FrameType.SETTINGS:
        if (f.flags & Flags.ACK && this.options.dropFirstSettingsAck && !this.droppedAck) {
          if (f.length !== 0) throw new Http2FramingError("SETTINGS ACK with a payload");
          // `start` is relative to the current chunk; it may be negative for a split header.
          const abs = this.offset + start;
          this.droppedAck = { start: abs, end: abs + FRAME_HEADER_LENGTH };
          this.action = "drop";
          return false;
        }
        this.action = needsPayloadCheck(f) ? "check" : "pass";
        return true;
      default:
        this.action = needsPayloadCheck(f) ? "check" : "pass";
        return true;
    }
  }

  /** Completes the current frame; returns the re-encoded frames when a header block ends. */
  private endFrame(): Buffer | undefined {
    this.state = "frame-header";
    if (this.framesSeen === 1) this.prefaceReceived = true;
    if (this.action !== "collect" && this.action !== "check") return undefined;
    const payload = Buffer.concat(this.framePayload);
    this.framePayload.length = 0;
    const f = this.frame;
    if (this.action === "check") {
      checkFramePayload(f, payload);
      return undefined;
    }
    if (f.type === FrameType.HEADERS) {
      let from = 0;
      let to = payload.length;
      let pad = 0;
      if (f.flags & Flags.PADDED) {
        if (payload.length < 1) throw new Http2FramingError("PADDED HEADERS without pad length");
        pad = payload[0] ?? 0;
        from = 1;
      }
      let priority: Buffer | undefined;
      if (f.flags & Flags.PRIORITY) {
        if (to - from < 5) throw new Http2FramingError("HEADERS too short for priority");
        priority = Buffer.from(payload.subarray(from, from + 5));
        from += 5;
      }
      if (pad > to - from) throw new Http2FramingError("padding exceeds HEADERS payload");
      to -= pad;
      this.block = {
        streamId: f.streamId,
        endStream: (f.flags & Flags.END_STREAM) !== 0,
        priority,
        fragments: [payload.subarray(from, to)],
        size: payload.length,
        continuations: 0,
      };
    } else {
      const block = this.block;
      if (!block) throw new Http2FramingError("CONTINUATION without HEADERS"); // checked earlier
      block.fragments.push(payload);
      block.size += payload.length;
    }
    if (!(f.flags & Flags.END_HEADERS)) return undefined;
    const block = this.block;
    if (!block) throw new Http2FramingError("END_HEADERS without HEADERS"); // unreachable
    this.block = undefined;
    const fields = this.decoder.decode(Buffer.concat(block.fragments));
    if (!this.sawHeaderBlock) this.firstHeaderBlock = fields;
    this.sawHeaderBlock = true;
    return encodeHeaderFrames(
      {
        streamId: block.streamId,
        endStream: block.endStream,
        priority: block.priority,
        block: encodeLiteralBlock(fields.map(this.options.rewriteField)),
      },
      DEFAULT_MAX_FRAME_SIZE,
    );
  }
}
