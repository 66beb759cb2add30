// Cross-checks the HPACK tables against an independent implementation: Node's nghttp2.
// Node's client encodes (with its dynamic table and Huffman) and we decode; we encode (with
// Huffman forced and static name references) and Node's server decodes.
import { connect as h2connect, createServer as h2server, type ServerHttp2Stream } from "node:http2";
import { createServer, type AddressInfo, type Server } from "node:net";
import { HpackDecoder } from "../../../src/grpc/authority-shim/hpack-decoder.js";
import {
  STATIC_TABLE_LENGTH,
  staticEntry,
} from "../../../src/grpc/authority-shim/hpack-static-table.js";
import {
  CLIENT_MAGIC,
  EMPTY_SETTINGS_FRAME,
  FRAME_HEADER_LENGTH,
  Flags,
  FrameType,
  encodeFrame,
  readFrameHeader,
} from "../../../src/grpc/authority-shim/http2-frames.js";
import { connect } from "node:net";
import { tempSocketPath } from "./support/echo-server.js";
import { HpackTestEncoder } from "./support/hpack-test-encoder.js";
import { RawGrpcClient } from "./support/raw-grpc-client.js";

const listenUnix = (server: ReturnType<typeof h2server>, path: string): Promise<void> =>
  new Promise((resolve) =>
    server.listen(path, () => {
      resolve();
    }),
  );

const listen = (server: Server | ReturnType<typeof h2server>): Promise<number> =>
  new Promise((resolve) =>
    server.listen(0, "127.0.0.1", () => {
      resolve((server.address() as AddressInfo).port);
    }),
  );

// Header values Node's client accepts: HTAB, SP..~, and 0x80..0xff (sent as latin1 octets).
const valueOctets = [
  0x09,
  ...Array.from({ length: 0x7e - 0x20 + 1 }, (_, i) => 0x20 + i),
  ...Array.from({ length: 128 }, (_, i) => 0x80 + i),
];

describe("HPACK decoder vs Node's client encoder", () => {
  it("decodes every request header block Node sends, dynamic table and Huffman included", async () => {
    const blocks: Buffer[] = [];
    let inbox = Buffer.alloc(0);
    let pending: Buffer[] = [];
    const server = createServer((socket) => {
      socket.write(EMPTY_SETTINGS_FRAME);
      socket.on("data", (chunk: Buffer) => {
        inbox = Buffer.concat([inbox, chunk]);
        if (inbox.subarray(0, CLIENT_MAGIC.length).equals(CLIENT_MAGIC))
          inbox = inbox.subarray(CLIENT_MAGIC.length);
        while (inbox.length >= FRAME_HEADER_LENGTH) {
          const h = readFrameHeader(inbox);
          if (inbox.length < FRAME_HEADER_LENGTH + h.length) break;
          const payload = inbox.subarray(FRAME_HEADER_LENGTH, FRAME_HEADER_LENGTH + h.length);
          inbox = inbox.subarray(FRAME_HEADER_LENGTH + h.length);
          if (h.type === FrameType.SETTINGS && !(h.flags & Flags.ACK)) {
            socket.write(encodeFrame(FrameType.SETTINGS, Flags.ACK, 0, Buffer.alloc(0)));
          }
          if (h.type === FrameType.HEADERS || h.type === FrameType.CONTINUATION) {
            let frag = payload;
            if (h.type === FrameType.HEADERS) {
              const pad = h.flags & Flags.PADDED ? payload[0]! : 0;
              const from = (h.flags & Flags.PADDED ? 1 : 0) + (h.flags & Flags.PRIORITY ? 5 : 0);
              frag = payload.subarray(from, payload.length - pad);
            }
            pending.push(Buffer.from(frag));
            if (h.flags & Flags.END_HEADERS) {
              blocks.push(Buffer.concat(pending));
              pending = [];
              // Answer with a trailers-only 200 so the client stream completes.
              socket.write(
                encodeFrame(
                  FrameType.HEADERS,
                  Flags.END_HEADERS | Flags.END_STREAM,
                  h.streamId,
                  Buffer.from([0x88]),
                ),
              );
            }
          }
        }
      });
    });
    const port = await listen(server);
    const session = h2connect(`http://127.0.0.1:${port}`);
    const sent: Record<string, string>[] = [];
    for (let i = 0; i < 60; i++) {
      // Rotate through all octets, repeat some values so nghttp2 indexes and reuses them.
      const start = (i * 37) % valueOctets.length;
      const value = Buffer.from(
        [...valueOctets.slice(start), ...valueOctets.slice(0, start)].slice(0, 20 + (i % 200)),
      )
        .toString("latin1")
        .trim();
      const headers = {
        ":path": `/p/${i % 7}`,
        "x-all": value,
        "x-repeat": `r${i % 5}`,
        "x-n": String(i),
      };
      sent.push(headers);
      await new Promise<void>((resolve, reject) => {
        const req = session.request(headers);
        req.on("response", () => undefined);
        req.on("close", resolve);
        req.on("error", reject);
        req.end();
      });
    }
    session.close();
    server.close();
    const decoder = new HpackDecoder();
    expect(blocks).toHaveLength(60);
    blocks.forEach((block, i) => {
      const got = new Map(
        decoder.decode(block).map((f) => [f.name.toString("latin1"), f.value.toString("latin1")]),
      );
      for (const [k, v] of Object.entries(sent[i]!)) expect([k, got.get(k)]).toEqual([k, v]);
    });
    expect(decoder.dynamicTableSize).toBeGreaterThan(0); // nghttp2 really used its table
  });
});

describe("Node's server decoder vs our encoding", () => {
  let server: ReturnType<typeof h2server>;
  let port: number;
  const seen: Record<string, string | string[] | undefined>[] = [];

  beforeAll(async () => {
    server = h2server();
    server.on("stream", (stream: ServerHttp2Stream, headers) => {
      seen.push({ ...headers });
      stream.respond({ ":status": 200 }, { endStream: true });
    });
    port = await listen(server);
  });

  afterAll(
    () =>
      new Promise<void>((resolve) =>
        server.close(() => {
          resolve();
        }),
      ),
  );

  /** Sends header blocks on one connection and returns what Node's server decoded. */
  const send = async (blocks: Buffer[]): Promise<typeof seen> => {
    seen.length = 0;
    const socket = connect(port, "127.0.0.1");
    await new Promise((resolve) => socket.once("connect", resolve));
    socket.write(Buffer.concat([CLIENT_MAGIC, EMPTY_SETTINGS_FRAME]));
    blocks.forEach((b, i) =>
      socket.write(
        encodeFrame(FrameType.HEADERS, Flags.END_HEADERS | Flags.END_STREAM, 2 * i + 1, b),
      ),
    );
    const deadline = Date.now() + 5000;
    while (seen.length < blocks.length && Date.now() < deadline)
      await new Promise((r) => setTimeout(r, 10));
    socket.destroy();
    return [...seen];
  };

  const base = (enc: HpackTestEncoder, extra: [string, string][]): Buffer =>
    enc.encode([
      [":method", "GET"],
      [":scheme", "http"],
      [":path", "/"],
      [":authority", "localhost"],
      ...extra,
    ]);

  it("decodes our Huffman coding of every octet it allows in a value", async () => {
    // Node drops values with control octets (other than HTAB), so those 32 symbols are covered
    // only by the canonical-code and Kraft checks in hpack-huffman.test.ts.
    const allowed = valueOctets;
    const enc = new HpackTestEncoder({ huffman: "always" });
    const values = allowed.map((b) => `<${String.fromCharCode(b)}${String.fromCharCode(b)}>`);
    values.push(`<${Buffer.from(allowed).toString("latin1")}>`);
    const got = await send(values.map((v) => base(enc, [["x-v", v]])));
    expect(got.map((h) => Buffer.from(String(h["x-v"]), "latin1").toString("latin1"))).toEqual(
      values,
    );
  });

  it("agrees on the names of static entries 15..61 used as name references", async () => {
    const enc = new HpackTestEncoder({ huffman: "never" });
    const names: string[] = [];
    const blocks: Buffer[] = [];
    for (let i = 15; i <= STATIC_TABLE_LENGTH; i++) {
      const name = staticEntry(i)!.name.toString("latin1");
      if (name === "transfer-encoding") continue; // refused in HTTP/2 requests whatever its value
      names.push(name);
      const literal = Buffer.from([0x0f, i - 15, 0x01, 0x30]); // literal w/o indexing, name index i, value "0"
      blocks.push(Buffer.concat([base(enc, []), literal]));
    }
    const got = await send(blocks);
    expect(got).toHaveLength(names.length);
    got.forEach((h, i) => {
      const value = h[names[i]!];
      expect([names[i], Array.isArray(value) ? value.join() : value]).toEqual([names[i], "0"]);
    });
  });
});

describe("HPACK decoder vs Node's server encoder", () => {
  it("decodes the :status values Node sends from static entries 8..14", async () => {
    const sock = tempSocketPath();
    const server = h2server();
    server.on("stream", (stream: ServerHttp2Stream, headers) => {
      stream.respond({ ":status": Number(String(headers[":path"]).slice(1)) }, { endStream: true });
    });
    await listenUnix(server, sock.path);
    const client = await RawGrpcClient.connect(sock.path, { authority: "localhost" });
    const statuses = ["200", "204", "206", "304", "400", "404", "500", "302"];
    const got: (string | undefined)[] = [];
    for (const status of statuses)
      got.push((await client.call(`/${status}`, Buffer.alloc(0))).headers.get(":status"));
    client.destroy();
    await new Promise((resolve) => server.close(resolve));
    sock.cleanup();
    expect(got).toEqual(statuses);
  });
});
