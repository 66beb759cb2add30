import fc from "fast-check";
import { rewriteAuthority } from "../../../src/grpc/authority-shim/authority-check.js";
import { HpackDecoder, type HeaderField } from "../../../src/grpc/authority-shim/hpack-decoder.js";
import {
  CLIENT_MAGIC,
  EMPTY_SETTINGS_FRAME,
  FRAME_HEADER_LENGTH,
  Flags,
  FrameType,
  encodeFrame,
  readFrameHeader,
} from "../../../src/grpc/authority-shim/http2-frames.js";
import {
  HeaderRewriter,
  Http2FramingError,
  type HeaderRewriterOptions,
} from "../../../src/grpc/authority-shim/http2-header-rewriter.js";
import { HpackTestEncoder, type TestField } from "./support/hpack-test-encoder.js";

const SOCK = "/opt/azurekms.socket";
const options = (over: Partial<HeaderRewriterOptions> = {}): HeaderRewriterOptions => ({
  maxHeaderBlockBytes: 64 * 1024,
  maxTableSize: 4096,
  dropFirstSettingsAck: true,
  rewriteField: rewriteAuthority,
  ...over,
});

const request = (path: string, extra: TestField[] = []): TestField[] => [
  [":method", "POST"],
  [":scheme", "http"],
  [":path", path],
  [":authority", SOCK],
  ["content-type", "application/grpc"],
  ["user-agent", "grpc-go/1.47.0"],
  ["te", "trailers"],
  ["grpc-timeout", "4999m"],
  ...extra,
];

interface Frame {
  type: number;
  flags: number;
  streamId: number;
  payload: Buffer;
}

function parseFrames(stream: Buffer, skipMagic = true): Frame[] {
  let rest = skipMagic ? stream.subarray(CLIENT_MAGIC.length) : stream;
  const frames: Frame[] = [];
  while (rest.length > 0) {
    const h = readFrameHeader(rest);
    frames.push({
      ...h,
      payload: Buffer.from(rest.subarray(FRAME_HEADER_LENGTH, FRAME_HEADER_LENGTH + h.length)),
    });
    rest = rest.subarray(FRAME_HEADER_LENGTH + h.length);
  }
  return frames;
}

const ack = encodeFrame(FrameType.SETTINGS, Flags.ACK, 0, Buffer.alloc(0));
const windowUpdate = encodeFrame(FrameType.WINDOW_UPDATE, 0, 0, Buffer.from([0, 0x0f, 0, 0]));
const ping = encodeFrame(FrameType.PING, 0, 0, Buffer.from("12345678"));
const data = (id: number, body: string, end = true): Buffer =>
  encodeFrame(FrameType.DATA, end ? Flags.END_STREAM : 0, id, Buffer.from(body));

/** A realistic client stream: preface, an ACK, three requests (one split, padded, prioritised). */
function clientStream(): { bytes: Buffer; blocks: TestField[][]; passthrough: Buffer[] } {
  const enc = new HpackTestEncoder();
  const b1 = request("/v2.KeyManagementService/Status");
  const b2 = request("/v2.KeyManagementService/Encrypt", [["x-big", "z".repeat(300)]]);
  const b3 = request("/v2.KeyManagementService/Decrypt", [
    ["authorization", "s3cret", "never-index"],
  ]);
  const h1 = enc.encode(b1);
  const h2 = enc.encode(b2);
  enc.setTableSize(200);
  const h3 = enc.encode(b3);
  const paddedPrio = Buffer.concat([Buffer.from([4, 0x80, 0, 0, 1, 15]), h3, Buffer.alloc(4)]);
  const settings = encodeFrame(FrameType.SETTINGS, 0, 0, Buffer.from([0, 2, 0, 0, 0, 0]));
  const passthrough = [settings, windowUpdate, data(1, "one"), ping, data(3, "two"), data(5, "")];
  const bytes = Buffer.concat([
    CLIENT_MAGIC,
    settings,
    windowUpdate,
    encodeFrame(FrameType.HEADERS, Flags.END_HEADERS, 1, h1),
    ack,
    data(1, "one"),
    encodeFrame(FrameType.HEADERS, 0, 3, h2.subarray(0, 10)),
    encodeFrame(FrameType.CONTINUATION, 0, 3, h2.subarray(10, 11)),
    encodeFrame(FrameType.CONTINUATION, Flags.END_HEADERS, 3, h2.subarray(11)),
    ping,
    data(3, "two"),
    encodeFrame(
      FrameType.HEADERS,
      Flags.END_HEADERS | Flags.PADDED | Flags.PRIORITY | Flags.END_STREAM,
      5,
      paddedPrio,
    ),
    data(5, ""),
  ]);
  return { bytes, blocks: [b1, b2, b3], passthrough };
}

function run(rw: HeaderRewriter, chunks: Buffer[]): Buffer {
  return Buffer.concat(chunks.flatMap((c) => rw.push(c)));
}

const asPairs = (fields: HeaderField[]): [string, string][] =>
  fields.map((f) => [f.name.toString("latin1"), f.value.toString("latin1")]);

describe("HeaderRewriter", () => {
  it("rewrites every header block statelessly and passes other frames byte for byte", () => {
    const { bytes, blocks, passthrough } = clientStream();
    const rw = new HeaderRewriter(options());
    const out = run(rw, [bytes]);
    expect(out.subarray(0, CLIENT_MAGIC.length)).toEqual(CLIENT_MAGIC);
    const frames = parseFrames(out);
    // The ACK is gone; the other non-header frames are identical and in order.
    const others = frames.filter(
      (f) => f.type !== FrameType.HEADERS && f.type !== FrameType.CONTINUATION,
    );
    expect(others.map((f) => encodeFrame(f.type, f.flags, f.streamId, f.payload))).toEqual(
      passthrough,
    );
    const headers = frames.filter((f) => f.type === FrameType.HEADERS);
    expect(headers.map((f) => [f.streamId, f.flags])).toEqual([
      [1, Flags.END_HEADERS],
      [3, Flags.END_HEADERS],
      [5, Flags.END_HEADERS | Flags.END_STREAM | Flags.PRIORITY],
    ]);
    expect(headers[2]!.payload.subarray(0, 5)).toEqual(Buffer.from([0x80, 0, 0, 1, 15]));
    // A decoder with no dynamic table at all can read the output.
    const stateless = new HpackDecoder({ maxTableSize: 0 });
    const decoded = headers.map((f, i) => stateless.decode(f.payload.subarray(i === 2 ? 5 : 0)));
    decoded.forEach((fields, i) => {
      const want = blocks[i]!.map(([n, v]) => [n, n === ":authority" ? "localhost" : v]);
      expect(asPairs(fields)).toEqual(want);
    });
    expect(decoded[2]!.find((f) => f.name.toString() === "authorization")!.neverIndex).toBe(true);
    expect(stateless.dynamicTableSize).toBe(0);
    expect(asPairs(rw.firstHeaderBlock!)[3]).toEqual([":authority", SOCK]);
    expect(rw.prefaceReceived).toBe(true);
    const ackAt = bytes.indexOf(ack, CLIENT_MAGIC.length + 15);
    expect(rw.droppedAck).toEqual({ start: ackAt, end: ackAt + 9 });
  });

  it("gives identical output however the input is split (one byte at a time, random splits)", () => {
    const { bytes } = clientStream();
    const reference = new HeaderRewriter(options());
    const whole = run(reference, [bytes]);
    const byteAtATime = new HeaderRewriter(options());
    expect(
      run(
        byteAtATime,
        [...bytes].map((b) => Buffer.from([b])),
      ),
    ).toEqual(whole);
    expect(byteAtATime.droppedAck).toEqual(reference.droppedAck);
    fc.assert(
      fc.property(
        fc.uniqueArray(fc.integer({ min: 1, max: bytes.length - 1 }), { maxLength: 40 }),
        (cuts) => {
          const points = [0, ...cuts.sort((a, b) => a - b), bytes.length];
          const chunks = points.slice(1).map((end, i) => bytes.subarray(points[i], end));
          const rw = new HeaderRewriter(options());
          expect(run(rw, chunks)).toEqual(whole);
          expect(rw.droppedAck).toEqual(reference.droppedAck);
        },
      ),
      { numRuns: 300 },
    );
  });

  it("passes a DATA payload through as slices of the input, without copying", () => {
    const rw = new HeaderRewriter(options());
    const open = new HpackTestEncoder().encode(request("/a"));
    rw.push(
      Buffer.concat([
        CLIENT_MAGIC,
        EMPTY_SETTINGS_FRAME,
        encodeFrame(FrameType.HEADERS, Flags.END_HEADERS, 1, open),
      ]),
    );
    const chunk = Buffer.concat([data(1, "x".repeat(1000), false), data(1, "y".repeat(1000))]);
    const out = rw.push(chunk);
    expect(out).toHaveLength(1);
    expect(out[0]!.buffer).toBe(chunk.buffer);
    expect(out[0]).toEqual(chunk);
  });

  it("splits a rewritten block over 16384 bytes into HEADERS + CONTINUATION", () => {
    const enc = new HpackTestEncoder({ huffman: "never" });
    const block = enc.encode(request("/big", [["x-big", "q".repeat(40000)]]));
    const rw = new HeaderRewriter(options({ maxHeaderBlockBytes: 128 * 1024 }));
    const input: Buffer[] = [CLIENT_MAGIC, EMPTY_SETTINGS_FRAME];
    for (let at = 0; at < block.length; at += 16384) {
      const last = at + 16384 >= block.length;
      const type = at === 0 ? FrameType.HEADERS : FrameType.CONTINUATION;
      const flags = (last ? Flags.END_HEADERS : 0) | (at === 0 ? Flags.END_STREAM : 0);
      input.push(encodeFrame(type, flags, 7, block.subarray(at, at + 16384)));
    }
    const frames = parseFrames(run(rw, input)).slice(1);
    expect(frames.map((f) => [f.type, f.flags, f.streamId, f.payload.length <= 16384])).toEqual([
      [FrameType.HEADERS, Flags.END_STREAM, 7, true],
      [FrameType.CONTINUATION, 0, 7, true],
      [FrameType.CONTINUATION, Flags.END_HEADERS, 7, true],
    ]);
    const fields = new HpackDecoder({ maxTableSize: 0, maxHeaderListSize: 1 << 20 }).decode(
      Buffer.concat(frames.map((f) => f.payload)),
    );
    expect(fields.find((f) => f.name.toString() === "x-big")!.value.length).toBe(40000);
  });

  it("drops only the first SETTINGS ACK, and none when told not to", () => {
    const input = Buffer.concat([CLIENT_MAGIC, EMPTY_SETTINGS_FRAME, ack, ack]);
    expect(parseFrames(run(new HeaderRewriter(options()), [input]))).toHaveLength(2);
    const keep = new HeaderRewriter(options({ dropFirstSettingsAck: false }));
    expect(run(keep, [input])).toEqual(input);
    expect(keep.droppedAck).toBeUndefined();
  });

  it("reports progress flags as the preface arrives", () => {
    const rw = new HeaderRewriter(options());
    rw.push(CLIENT_MAGIC.subarray(0, 23));
    expect(rw.magicReceived).toBe(false);
    rw.push(Buffer.concat([CLIENT_MAGIC.subarray(23), EMPTY_SETTINGS_FRAME.subarray(0, 5)]));
    expect([rw.magicReceived, rw.prefaceReceived]).toEqual([true, false]);
    rw.push(EMPTY_SETTINGS_FRAME.subarray(5));
    expect(rw.prefaceReceived).toBe(true);
    expect(rw.bytesIn).toBe(CLIENT_MAGIC.length + 9);
  });

  const h = (flags: number, id: number, payload: Buffer | number[]): Buffer =>
    encodeFrame(FrameType.HEADERS, flags, id, Buffer.from(payload));
  const start = Buffer.concat([CLIENT_MAGIC, EMPTY_SETTINGS_FRAME]);

  it.each([
    ["a wrong magic", Buffer.from("PRI * HTTP/1.1\r\n\r\nSM\r\n\r\n")],
    ["HTTP/1.1", Buffer.from("GET / HTTP/1.1\r\nHost: x\r\n\r\n")],
    ["a first frame that is not SETTINGS", Buffer.concat([CLIENT_MAGIC, ping])],
    ["a first frame that is a SETTINGS ACK", Buffer.concat([CLIENT_MAGIC, ack])],
    [
      "CONTINUATION without HEADERS",
      Buffer.concat([start, encodeFrame(FrameType.CONTINUATION, 4, 1, Buffer.from([0x82]))]),
    ],
    [
      "CONTINUATION on another stream",
      Buffer.concat([
        start,
        h(0, 1, [0x82]),
        encodeFrame(FrameType.CONTINUATION, 4, 3, Buffer.from([0x82])),
      ]),
    ],
    ["a block interrupted by DATA", Buffer.concat([start, h(0, 1, [0x82]), data(1, "x")])],
    ["HEADERS inside a block", Buffer.concat([start, h(0, 1, [0x82]), h(4, 3, [0x82])])],
    [
      "PUSH_PROMISE",
      Buffer.concat([start, encodeFrame(FrameType.PUSH_PROMISE, 4, 1, Buffer.alloc(4))]),
    ],
    ["HEADERS on stream 0", Buffer.concat([start, h(4, 0, [0x82])])],
    ["padding longer than the frame", Buffer.concat([start, h(4 | Flags.PADDED, 1, [5, 0x82])])],
    ["PADDED with no pad length", Buffer.concat([start, h(4 | Flags.PADDED, 1, [])])],
    ["PRIORITY too short", Buffer.concat([start, h(4 | Flags.PRIORITY, 1, [0, 0, 0])])],
    [
      "a SETTINGS ACK with a payload",
      Buffer.concat([start, encodeFrame(FrameType.SETTINGS, Flags.ACK, 0, Buffer.alloc(6))]),
    ],
    ["an HPACK error", Buffer.concat([start, h(4, 1, [0x80])])],
    [
      "a header block over the limit",
      Buffer.concat([
        start,
        h(0, 1, Buffer.alloc(600)),
        encodeFrame(FrameType.CONTINUATION, 4, 1, Buffer.alloc(500)),
      ]),
    ],
    [
      "a CONTINUATION flood",
      Buffer.concat([
        start,
        h(0, 1, [0x82]),
        ...Array.from({ length: 65 }, () =>
          encodeFrame(FrameType.CONTINUATION, 0, 1, Buffer.alloc(0)),
        ),
      ]),
    ],
  ])("throws on %s", (_name, input) => {
    const rw = new HeaderRewriter(options({ maxHeaderBlockBytes: 1000 }));
    expect(() => run(rw, [input])).toThrow(Error);
    // Byte by byte it fails too (never silently accepts).
    const slow = new HeaderRewriter(options({ maxHeaderBlockBytes: 1000 }));
    expect(() =>
      run(
        slow,
        [...input].map((b) => Buffer.from([b])),
      ),
    ).toThrow(Error);
  });

  it("throws framing errors as Http2FramingError", () => {
    expect(() => new HeaderRewriter(options()).push(Buffer.from("nope".repeat(6)))).toThrow(
      Http2FramingError,
    );
  });
});
