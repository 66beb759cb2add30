import { connect, createServer, type Server, type Socket } from "node:net";
import type { Duplex } from "node:stream";
import {
  prepareConnection,
  type PrepareConnectionOptions,
} from "../../../src/grpc/authority-shim/authority-rewrite.js";
import {
  CLIENT_MAGIC,
  EMPTY_SETTINGS_FRAME,
  Flags,
  FrameType,
  encodeFrame,
} from "../../../src/grpc/authority-shim/http2-frames.js";
import { tempSocketPath } from "./support/echo-server.js";
import { HpackTestEncoder } from "./support/hpack-test-encoder.js";

const ack = encodeFrame(FrameType.SETTINGS, Flags.ACK, 0, Buffer.alloc(0));
const headers = (authority: string): Buffer =>
  encodeFrame(
    FrameType.HEADERS,
    Flags.END_HEADERS,
    1,
    new HpackTestEncoder().encode([
      [":method", "POST"],
      [":scheme", "http"],
      [":path", "/x"],
      [":authority", authority],
    ]),
  );
const data = (body: Buffer): Buffer => encodeFrame(FrameType.DATA, 0, 1, body);
const preface = Buffer.concat([CLIENT_MAGIC, EMPTY_SETTINGS_FRAME]);

let sock: ReturnType<typeof tempSocketPath>;
let server: Server;
let accepted: { socket: Socket; result: Promise<Duplex> }[];
let clients: Socket[];

const start = async (opts: PrepareConnectionOptions = {}): Promise<void> => {
  server = createServer((socket) => {
    accepted.push({ socket, result: prepareConnection(socket, { sniffTimeoutMs: 500, ...opts }) });
  });
  await new Promise<void>((resolve) => server.listen(sock.path, resolve));
};

const client = async (): Promise<{ socket: Socket; received: () => Buffer }> => {
  const socket = connect(sock.path);
  clients.push(socket);
  const got: Buffer[] = [];
  socket.on("data", (b: Buffer) => got.push(b));
  socket.on("error", () => undefined);
  await new Promise((resolve) => socket.once("connect", resolve));
  return { socket, received: () => Buffer.concat(got) };
};

const acceptedConnection = async (): Promise<{ socket: Socket; result: Promise<Duplex> }> => {
  while (accepted.length === 0) await new Promise((r) => setTimeout(r, 5));
  return accepted[0]!;
};

const readAll = (stream: Duplex, bytes: number): Promise<Buffer> =>
  new Promise((resolve) => {
    const got: Buffer[] = [];
    let n = 0;
    const onData = (b: Buffer): void => {
      got.push(b);
      n += b.length;
      if (n >= bytes) {
        stream.off("data", onData);
        stream.pause();
        resolve(Buffer.concat(got));
      }
    };
    stream.on("data", onData);
    stream.resume(); // a raw socket comes back explicitly paused
  });

beforeEach(() => {
  sock = tempSocketPath();
  accepted = [];
  clients = [];
});

afterEach(async () => {
  for (const c of clients) c.destroy();
  for (const a of accepted) a.socket.destroy();
  await new Promise((resolve) => server.close(resolve));
  sock.cleanup();
});

describe("prepareConnection", () => {
  it("answers the magic with an empty SETTINGS, then hands back the raw socket minus our ACK", async () => {
    await start();
    const c = await client();
    c.socket.write(preface);
    const { socket, result } = await acceptedConnection();
    // grpc-go sends nothing more until it sees the server's SETTINGS.
    while (c.received().length < 9) await new Promise((r) => setTimeout(r, 5));
    expect(c.received()).toEqual(EMPTY_SETTINGS_FRAME);
    // Headers before the ACK: the decision waits for the ACK so it can be removed.
    const h = headers("localhost");
    const body = data(Buffer.from("payload"));
    c.socket.write(h);
    await new Promise((r) => setTimeout(r, 30));
    c.socket.write(Buffer.concat([ack, body]));
    const conn = await result;
    expect(conn).toBe(socket);
    expect(await readAll(conn, preface.length + h.length + body.length)).toEqual(
      Buffer.concat([preface, h, body]),
    );
  });

  it("returns a rewriting stream for a path authority, which emits stateless headers", async () => {
    await start();
    const c = await client();
    c.socket.write(Buffer.concat([preface, headers("/opt/azurekms.socket"), ack]));
    const { socket, result } = await acceptedConnection();
    const conn = await result;
    expect(conn).not.toBe(socket);
    const out = await readAll(conn, preface.length + 9);
    expect(out.subarray(0, preface.length)).toEqual(preface);
    expect(out.includes(Buffer.from("localhost"))).toBe(true);
    expect(out.includes(Buffer.from("/opt/azurekms.socket"))).toBe(false);
    // Server-to-client bytes pass untouched.
    conn.write(Buffer.from("server bytes"));
    await new Promise((r) => setTimeout(r, 30));
    expect(c.received().subarray(9).toString()).toBe("server bytes");
  });

  it("falls back to rewriting when the ACK never comes", async () => {
    await start({ sniffTimeoutMs: 100 });
    const c = await client();
    c.socket.write(Buffer.concat([preface, headers("localhost")]));
    const { socket, result } = await acceptedConnection();
    expect(await result).not.toBe(socket);
  });

  it("falls back to rewriting when too much arrives before the decision", async () => {
    await start({ maxHeaderBlockBytes: 1024 });
    const c = await client();
    c.socket.write(Buffer.concat([preface, headers("localhost")]));
    for (let i = 0; i < 8; i++) c.socket.write(data(Buffer.alloc(16000)));
    const { socket, result } = await acceptedConnection();
    expect(await result).not.toBe(socket);
  });

  it("serves a client that half-closes right after its preface through the rewriter", async () => {
    await start();
    const c = await client();
    c.socket.end(preface);
    const { result } = await acceptedConnection();
    const conn = await result;
    expect(await readAll(conn, preface.length)).toEqual(preface);
  });

  it.each([
    ["garbage", Buffer.from("hello there, this is not h2")],
    ["an end before the preface", CLIENT_MAGIC.subarray(0, 5)],
  ])("rejects and destroys on %s", async (_name, bytes) => {
    await start();
    const c = await client();
    c.socket.end(bytes);
    const { socket, result } = await acceptedConnection();
    await expect(result).rejects.toThrow(/HTTP\/2|preface/);
    expect(socket.destroyed).toBe(true);
  });

  it("rejects a short wrong prefix at once, without waiting for 24 bytes", async () => {
    await start({ sniffTimeoutMs: 5000 });
    const c = await client();
    c.socket.write("GET");
    const { socket, result } = await acceptedConnection();
    const t0 = Date.now();
    await expect(result).rejects.toThrow(/malformed/);
    expect(Date.now() - t0).toBeLessThan(1000);
    expect(socket.destroyed).toBe(true);
  });

  it("rejects a silent client at the sniff timeout", async () => {
    await start({ sniffTimeoutMs: 50 });
    await client();
    const { socket, result } = await acceptedConnection();
    await expect(result).rejects.toThrow(/timeout/);
    expect(socket.destroyed).toBe(true);
  });

  it("applies backpressure both ways on a rewritten connection", async () => {
    await start();
    const c = await client();
    c.socket.write(Buffer.concat([preface, headers("/a/b"), ack]));
    const { socket, result } = await acceptedConnection();
    const conn = await result;
    // Client to server: nobody reads `conn`, so the socket must end up paused.
    const chunk = data(Buffer.alloc(16000, 1));
    for (let i = 0; i < 64; i++) c.socket.write(chunk);
    await new Promise((r) => setTimeout(r, 100));
    expect(socket.isPaused()).toBe(true);
    expect(conn.readableLength).toBeLessThan(256 * 1024);
    const all = await readAll(conn, preface.length + 64 * chunk.length);
    expect(all.length).toBeGreaterThanOrEqual(64 * chunk.length);
    // Server to client: the client stops reading, so writes must report a full buffer.
    c.socket.pause();
    c.socket.removeAllListeners("data");
    let accepting = true;
    for (let i = 0; i < 2000 && accepting; i++) accepting = conn.write(Buffer.alloc(64 * 1024));
    expect(accepting).toBe(false);
    await new Promise((r) => setTimeout(r, 50));
    expect(conn.writableNeedDrain).toBe(true);
    const drained = new Promise((resolve) => conn.once("drain", resolve));
    c.socket.resume();
    await drained;
  });

  it("destroys the rewritten stream on a later framing error, and the socket with it", async () => {
    await start();
    const c = await client();
    c.socket.write(Buffer.concat([preface, headers("/a/b"), ack]));
    const { socket, result } = await acceptedConnection();
    const conn = await result;
    conn.resume();
    const closed = new Promise((resolve) => conn.once("close", resolve));
    c.socket.write(encodeFrame(FrameType.CONTINUATION, Flags.END_HEADERS, 9, Buffer.from([0x82])));
    await closed;
    expect(socket.destroyed).toBe(true);
  });
});
