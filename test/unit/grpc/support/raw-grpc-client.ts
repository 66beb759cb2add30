// A hand-rolled HTTP/2 gRPC client over a unix socket. It sends exactly the :authority it is
// given (grpc-js and Node's http2 client cannot emulate grpc-go byte for byte), waits for the
// server's SETTINGS before its first request like grpc-go does, and can split, pad and
// reorder its output to exercise a server-side parser.
import { connect, type Socket } from "node:net";
import { HpackDecoder } from "../../../../src/grpc/authority-shim/hpack-decoder.js";
import {
  CLIENT_MAGIC,
  FRAME_HEADER_LENGTH,
  Flags,
  FrameType,
  encodeFrame,
  readFrameHeader,
} from "../../../../src/grpc/authority-shim/http2-frames.js";
import {
  HpackTestEncoder,
  type HpackTestEncoderOptions,
  type TestField,
} from "./hpack-test-encoder.js";

export interface RawClientOptions {
  readonly authority: string;
  readonly encoder?: HpackTestEncoderOptions;
  /** Wait for the server's first SETTINGS before sending any request (grpc-go does). */
  readonly waitForServerSettings?: boolean;
  /** Write every byte separately. */
  readonly byteByByte?: boolean;
}

export interface CallOptions {
  /** Overrides the client's :authority for this call. */
  readonly authority?: string;
  readonly metadata?: readonly TestField[];
  readonly timeout?: string;
  /** Pad the HEADERS frame with this many octets. */
  readonly padding?: number;
  /** Send the priority fields on the HEADERS frame. */
  readonly priority?: boolean;
  /** Split the header block into fragments of this size (HEADERS + CONTINUATION). */
  readonly fragmentSize?: number;
  /** Emit a table size update at the start of this call's header block. */
  readonly tableSizeUpdate?: number;
}

export interface CallResult {
  readonly status: number;
  readonly message: string;
  readonly body: Buffer;
  readonly headers: Map<string, string>;
  readonly trailers: Map<string, string>;
}

interface StreamState {
  headers: Map<string, string> | undefined;
  trailers: Map<string, string> | undefined;
  data: Buffer[];
  resolve: (r: CallResult) => void;
  reject: (e: Error) => void;
}

export class RawGrpcClient {
  private readonly encoder: HpackTestEncoder;
  private readonly decoder = new HpackDecoder({ maxHeaderListSize: 1 << 20 });
  private readonly streams = new Map<number, StreamState>();
  private nextStreamId = 1;
  private inbox: Buffer = Buffer.alloc(0);
  private block: { streamId: number; endStream: boolean; parts: Buffer[] } | undefined;
  private serverSettings: Promise<void>;
  private gotServerSettings!: () => void;
  /** Why the connection ended, once it has. */
  closedWith: Error | undefined;
  readonly closed: Promise<void>;
  /** Frame types received, in order. */
  readonly received: number[] = [];

  private constructor(
    private readonly socket: Socket,
    private readonly options: RawClientOptions,
  ) {
    this.encoder = new HpackTestEncoder(options.encoder);
    this.serverSettings = new Promise((resolve) => (this.gotServerSettings = resolve));
    socket.on("data", (chunk: Buffer) => {
      try {
        this.onData(chunk);
      } catch (err) {
        socket.destroy(err as Error);
      }
    });
    this.closed = new Promise((resolve) => {
      socket.on("error", (err) => (this.closedWith ??= err));
      socket.on("close", () => {
        this.closedWith ??= new Error("connection closed");
        for (const s of this.streams.values()) s.reject(this.closedWith);
        this.streams.clear();
        this.gotServerSettings(); // release calls still waiting; they see closedWith
        resolve();
      });
    });
  }

  static async connect(path: string, options: RawClientOptions): Promise<RawGrpcClient> {
    const socket = connect(path);
    await new Promise<void>((resolve, reject) => {
      socket.once("connect", resolve);
      socket.once("error", reject);
    });
    const client = new RawGrpcClient(socket, options);
    client.write(
      Buffer.concat([CLIENT_MAGIC, encodeFrame(FrameType.SETTINGS, 0, 0, Buffer.alloc(0))]),
    );
    return client;
  }

  /** Sends raw bytes (for adversarial tests). */
  write(bytes: Buffer): void {
    if (!this.options.byteByByte) {
      this.socket.write(bytes);
      return;
    }
    for (const b of bytes) this.socket.write(Buffer.from([b]));
  }

  async call(method: string, payload: Buffer, opts: CallOptions = {}): Promise<CallResult> {
    if (this.options.waitForServerSettings ?? true) await this.serverSettings;
    if (this.closedWith) throw this.closedWith;
    const streamId = this.nextStreamId;
    this.nextStreamId += 2;
    if (opts.tableSizeUpdate !== undefined) this.encoder.setTableSize(opts.tableSizeUpdate);
    const block = this.encoder.encode([
      [":method", "POST"],
      [":scheme", "http"],
      [":path", method],
      [":authority", opts.authority ?? this.options.authority],
      ["content-type", "application/grpc"],
      ["user-agent", "grpc-go/1.47.0"],
      ["te", "trailers"],
      ["grpc-timeout", opts.timeout ?? "4999m"],
      ...(opts.metadata ?? []),
    ]);
    const result = new Promise<CallResult>((resolve, reject) => {
      this.streams.set(streamId, {
        headers: undefined,
        trailers: undefined,
        data: [],
        resolve,
        reject,
      });
    });
    const frames: Buffer[] = [];
    const fragmentSize = opts.fragmentSize ?? 16384;
    const first = block.subarray(0, fragmentSize);
    let flags = block.length <= fragmentSize ? Flags.END_HEADERS : 0;
    const prefix: Buffer[] = [];
    const suffix: Buffer[] = [];
    if (opts.padding !== undefined) {
      flags |= Flags.PADDED;
      prefix.push(Buffer.from([opts.padding]));
      suffix.push(Buffer.alloc(opts.padding));
    }
    if (opts.priority) {
      flags |= Flags.PRIORITY;
      prefix.push(Buffer.from([0x80, 0, 0, 0, 41])); // exclusive on stream 0, weight 42
    }
    frames.push(
      encodeFrame(FrameType.HEADERS, flags, streamId, Buffer.concat([...prefix, first, ...suffix])),
    );
    for (let at = fragmentSize; at < block.length; at += fragmentSize) {
      const part = block.subarray(at, at + fragmentSize);
      const last = at + fragmentSize >= block.length;
      frames.push(
        encodeFrame(FrameType.CONTINUATION, last ? Flags.END_HEADERS : 0, streamId, part),
      );
    }
    const message = Buffer.alloc(5 + payload.length);
    message.writeUInt32BE(payload.length, 1);
    payload.copy(message, 5);
    for (let at = 0; at < message.length || at === 0; at += 16384) {
      const part = message.subarray(at, at + 16384);
      const last = at + 16384 >= message.length;
      frames.push(encodeFrame(FrameType.DATA, last ? Flags.END_STREAM : 0, streamId, part));
    }
    this.write(Buffer.concat(frames));
    return result;
  }

  close(): void {
    this.socket.end();
  }

  destroy(): void {
    this.socket.destroy();
  }

  private onData(chunk: Buffer): void {
    this.inbox = this.inbox.length === 0 ? chunk : Buffer.concat([this.inbox, chunk]);
    while (this.inbox.length >= FRAME_HEADER_LENGTH) {
      const h = readFrameHeader(this.inbox);
      if (this.inbox.length < FRAME_HEADER_LENGTH + h.length) break;
      const payload = this.inbox.subarray(FRAME_HEADER_LENGTH, FRAME_HEADER_LENGTH + h.length);
      this.inbox = this.inbox.subarray(FRAME_HEADER_LENGTH + h.length);
      this.received.push(h.type);
      this.onFrame(h.type, h.flags, h.streamId, payload);
    }
  }

  private onFrame(type: number, flags: number, streamId: number, payload: Buffer): void {
    switch (type) {
      case FrameType.SETTINGS:
        if (!(flags & Flags.ACK)) {
          this.socket.write(encodeFrame(FrameType.SETTINGS, Flags.ACK, 0, Buffer.alloc(0)));
          this.gotServerSettings();
        }
        return;
      case FrameType.PING:
        if (!(flags & Flags.ACK))
          this.socket.write(encodeFrame(FrameType.PING, Flags.ACK, 0, payload));
        return;
      case FrameType.DATA: {
        this.streams.get(streamId)?.data.push(Buffer.from(payload));
        if (payload.length > 0) {
          const inc = Buffer.alloc(4);
          inc.writeUInt32BE(payload.length);
          this.socket.write(
            Buffer.concat([
              encodeFrame(FrameType.WINDOW_UPDATE, 0, 0, inc),
              encodeFrame(FrameType.WINDOW_UPDATE, 0, streamId, inc),
            ]),
          );
        }
        if (flags & Flags.END_STREAM) this.finish(streamId);
        return;
      }
      case FrameType.HEADERS:
      case FrameType.CONTINUATION: {
        let fragment = payload;
        if (type === FrameType.HEADERS) {
          let from = 0;
          let pad = 0;
          if (flags & Flags.PADDED) {
            pad = payload[0]!;
            from = 1;
          }
          if (flags & Flags.PRIORITY) from += 5;
          fragment = payload.subarray(from, payload.length - pad);
          this.block = { streamId, endStream: (flags & Flags.END_STREAM) !== 0, parts: [] };
        }
        this.block!.parts.push(Buffer.from(fragment));
        if (!(flags & Flags.END_HEADERS)) return;
        const { endStream, parts } = this.block!;
        this.block = undefined;
        const fields = new Map<string, string>();
        for (const f of this.decoder.decode(Buffer.concat(parts))) {
          fields.set(f.name.toString("latin1"), f.value.toString("latin1"));
        }
        const s = this.streams.get(streamId);
        if (s) {
          if (s.headers === undefined && !fields.has("grpc-status")) s.headers = fields;
          else s.trailers = fields;
        }
        if (endStream) this.finish(streamId);
        return;
      }
      case FrameType.RST_STREAM: {
        const s = this.streams.get(streamId);
        this.streams.delete(streamId);
        s?.reject(new Error(`RST_STREAM with code ${payload.readUInt32BE(0)}`));
        return;
      }
      case FrameType.GOAWAY:
        this.closedWith ??= new Error(`GOAWAY with code ${payload.readUInt32BE(4)}`);
        return;
      default:
        return;
    }
  }

  private finish(streamId: number): void {
    const s = this.streams.get(streamId);
    if (!s) return;
    this.streams.delete(streamId);
    const trailers = s.trailers ?? s.headers ?? new Map<string, string>();
    const body = Buffer.concat(s.data);
    s.resolve({
      status: Number(trailers.get("grpc-status") ?? -1),
      message: decodeURIComponent(trailers.get("grpc-message") ?? ""),
      body: body.length >= 5 ? body.subarray(5, 5 + body.readUInt32BE(1)) : body,
      headers: s.headers ?? new Map<string, string>(),
      trailers,
    });
  }
}
