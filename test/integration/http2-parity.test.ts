/**
 * One behaviour whichever path a connection takes: the same client input, sent on a
 * connection Node's HTTP/2 server reads directly (acceptable :authority), on one the shim rewrites
 * (the raw socket path as :authority), and while the shim is still sniffing (before the first
 * request), ends the same way: served, the stream reset, or the connection closed within a second.
 * The expectations are what Node 24's own path does (the "raw" column); the shim must agree.
 */
import { encodeFrame, FrameType } from "../../src/grpc/authority-shim/http2-frames.js";
import {
  ECHO_PATH,
  startInjectedServer,
  tempSocketPath,
  type InjectedServer,
} from "../unit/grpc/support/echo-server.js";
import { RawGrpcClient } from "../unit/grpc/support/raw-grpc-client.js";
import type { TestField } from "../unit/grpc/support/hpack-test-encoder.js";

type Outcome = "served" | "reset" | "failed" | "closed";
type Send = (c: RawGrpcClient) => Promise<unknown> | undefined;

const x = Buffer.from("x");
const frame =
  (type: number, flags: number, stream: number, payload: Buffer) => (c: RawGrpcClient) => {
    c.write(encodeFrame(type, flags, stream, payload));
    return undefined;
  };
const header = (bytes: number[]) => (c: RawGrpcClient) => {
  c.write(Buffer.from(bytes));
  return undefined;
};
/** One header field spread over `frames` frames of `size` bytes (HEADERS + CONTINUATIONs). */
const continued = (frames: number, size: number) => (c: RawGrpcClient) =>
  c.call(ECHO_PATH, x, {
    metadata: [["x-a", "a".repeat(size * frames - 300), "no-index"]],
    fragmentSize: size,
  });
const fields = (n: number, size: number): TestField[] =>
  Array.from({ length: n }, (_, i) => [`x-${i}`, "v".repeat(size), "no-index"] as const);
const setting = (id: number, value: number) => {
  const b = Buffer.alloc(6);
  b.writeUInt16BE(id, 0);
  b.writeUInt32BE(value, 2);
  return b;
};

const cases: [string, Outcome, Send][] = [
  [
    "a DATA frame header claiming 16,385 bytes",
    "closed",
    header([0, 0x40, 0x01, 0, 0, 0, 0, 0, 1]),
  ],
  ["a frame header claiming 6.7 MB", "closed", header([0x66, 0x66, 0x66, 0, 0, 0, 0, 0, 1])],
  [
    "a 30 KB HEADERS frame",
    "closed",
    (c) =>
      c.call(ECHO_PATH, x, { metadata: [["x-big", "b".repeat(30_000)]], fragmentSize: 40_000 }),
  ],
  [
    "an HPACK table size of 64 KiB",
    "closed",
    (c) => c.call(ECHO_PATH, x, { tableSizeUpdate: 65_536 }),
  ],
  ["an HPACK table size of 4097", "closed", (c) => c.call(ECHO_PATH, x, { tableSizeUpdate: 4097 })],
  ["an HPACK table size of 4096", "served", (c) => c.call(ECHO_PATH, x, { tableSizeUpdate: 4096 })],
  ["a SETTINGS frame of 5 bytes", "closed", frame(FrameType.SETTINGS, 0, 0, Buffer.alloc(5))],
  ["SETTINGS_ENABLE_PUSH = 2", "closed", frame(FrameType.SETTINGS, 0, 0, setting(2, 2))],
  ["SETTINGS_MAX_FRAME_SIZE = 100", "closed", frame(FrameType.SETTINGS, 0, 0, setting(5, 100))],
  ["a PING of 7 bytes", "closed", frame(FrameType.PING, 0, 0, Buffer.alloc(7))],
  [
    "a connection WINDOW_UPDATE of 0",
    "closed",
    frame(FrameType.WINDOW_UPDATE, 0, 0, Buffer.alloc(4)),
  ],
  ["HEADERS on stream 0", "closed", frame(FrameType.HEADERS, 4, 0, Buffer.from([0x82]))],
  [
    "HEADERS on an even stream",
    "closed",
    frame(FrameType.HEADERS, 4, 2, Buffer.from([0x83, 0x86])),
  ],
  ["DATA on a stream never opened", "closed", frame(FrameType.DATA, 0, 101, Buffer.alloc(3))],
  [
    "RST_STREAM on a stream never opened",
    "closed",
    frame(FrameType.RST_STREAM, 0, 101, Buffer.alloc(4)),
  ],
  [
    "PRIORITY on an idle stream, a PING and a connection WINDOW_UPDATE of 1",
    "served",
    (c) => {
      c.write(encodeFrame(FrameType.PRIORITY, 0, 7, Buffer.from([0, 0, 0, 0, 15])));
      c.write(encodeFrame(FrameType.PING, 0, 0, Buffer.alloc(8)));
      c.write(encodeFrame(FrameType.WINDOW_UPDATE, 0, 0, Buffer.from([0, 0, 0, 1])));
      return c.call(ECHO_PATH, x);
    },
  ],
  ["an unknown frame type", "served", frame(0xfa, 0, 0, Buffer.alloc(100))],
  [
    "a 112 KB header block in 16 KB frames",
    "served",
    (c) => c.call(ECHO_PATH, x, { metadata: fields(8, 14_000) }),
  ],
  [
    "a 168 KB header block in 16 KB frames",
    "closed",
    (c) => c.call(ECHO_PATH, x, { metadata: fields(12, 14_000) }),
  ],
  ["a header block in 10 frames", "served", continued(10, 100)],
  ["a header block in 20 frames", "closed", continued(20, 1000)],
  [
    "200 header fields (Node's limit is 128)",
    "reset",
    (c) => c.call(ECHO_PATH, x, { metadata: fields(200, 1) }),
  ],
];

let sock: ReturnType<typeof tempSocketPath>;
let srv: InjectedServer;

beforeAll(async () => {
  sock = tempSocketPath();
  srv = await startInjectedServer(sock.path, { sniffTimeoutMs: 10_000 });
});

afterAll(async () => {
  await srv.stop();
  sock.cleanup();
});

/** How the connection ends after `send`; `warm` makes one call first, so sniffing is over. */
async function outcome(authority: string, send: Send, warm: boolean): Promise<Outcome> {
  const c = await RawGrpcClient.connect(sock.path, { authority, encoder: { huffman: "never" } });
  try {
    if (warm) await c.call(ECHO_PATH, Buffer.from("warm"));
    const call: Promise<"ok" | "reset" | "failed"> =
      send(c)?.then(
        () => "ok" as const,
        (e: unknown) =>
          e instanceof Error && e.message.startsWith("RST_STREAM") ? "reset" : "failed",
      ) ?? Promise.resolve("ok");
    const closed = await Promise.race([
      c.closed.then(() => true),
      new Promise<false>((resolve) => {
        setTimeout(() => {
          resolve(false);
        }, 1_000);
      }),
    ]);
    if (closed) return "closed";
    const answer = await call;
    return answer === "ok" ? "served" : answer;
  } finally {
    c.destroy();
  }
}

describe.each(cases)("%s", (_name, expected, send) => {
  it(`is ${expected} on Node's own path, through the rewriter and while sniffing`, async () => {
    const seen = {
      raw: await outcome("localhost", send, true),
      rewrite: await outcome(sock.path, send, true),
      sniffing: await outcome("localhost", send, false),
    };
    expect(seen).toEqual({ raw: expected, rewrite: expected, sniffing: expected });
  });
});
