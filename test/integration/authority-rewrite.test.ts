// Step 2: connections pass through prepareConnection into a grpc-js server. The raw socket
// path as :authority now works (through the rewriter); other authorities get the raw socket.
import * as grpc from "@grpc/grpc-js";
import { connect, type Socket } from "node:net";
import {
  CLIENT_MAGIC,
  encodeFrame,
  FrameType,
} from "../../src/grpc/authority-shim/http2-frames.js";
import {
  ECHO_PATH,
  EchoClient,
  WHOAMI_PATH,
  startInjectedServer,
  tempSocketPath,
  unary,
  type InjectedServer,
  type WhoAmI,
} from "../unit/grpc/support/echo-server.js";
import { RawGrpcClient } from "../unit/grpc/support/raw-grpc-client.js";

let sock: ReturnType<typeof tempSocketPath>;
let srv: InjectedServer;
const clients: { close(): void }[] = [];

beforeEach(async () => {
  sock = tempSocketPath();
  srv = await startInjectedServer(sock.path, {
    sniffTimeoutMs: 300,
    maxHeaderBlockBytes: 16 * 1024,
  });
});

afterEach(async () => {
  for (const c of clients.splice(0)) c.close();
  await srv.stop();
  sock.cleanup();
});

const grpcJs = (authority: string): grpc.Client & InstanceType<typeof EchoClient> => {
  const c = new EchoClient(`unix:${sock.path}`, grpc.credentials.createInsecure(), {
    "grpc.default_authority": authority,
  });
  clients.push(c);
  return c;
};

const raw = async (
  authority: string,
  opts: { byteByByte?: boolean; huffman?: "auto" | "never" | "always" } = {},
) => {
  const c = await RawGrpcClient.connect(sock.path, {
    authority,
    byteByByte: opts.byteByByte ?? false,
    encoder: { huffman: opts.huffman ?? "auto" },
  });
  clients.push({
    close: () => {
      c.destroy();
    },
  });
  return c;
};

const modes = () => srv.admissions.map((a) => a.mode);

/** A plain socket that records when the server closes it. */
const openSocket = async (): Promise<{ socket: Socket; closed: Promise<number> }> => {
  const socket = connect(sock.path);
  const started = Date.now();
  const closed = new Promise<number>((resolve) => {
    socket.on("error", () => undefined);
    socket.on("close", () => {
      resolve(Date.now() - started);
    });
    socket.resume();
  });
  await new Promise((resolve) => socket.once("connect", resolve));
  return { socket, closed };
};

const stillServes = async (): Promise<void> => {
  const res = await unary(grpcJs(sock.path), "echo", Buffer.from("still here"));
  expect(res).toEqual({ ok: true, value: Buffer.from("still here") });
};

describe("raw socket path as :authority (kube-apiserver 1.25–1.28)", () => {
  it("is served through the rewriter for a grpc-go-like client: sequential and concurrent calls", async () => {
    const client = await raw(sock.path);
    // grpc-go indexes every field; changing grpc-timeout and metadata forces inserts and evictions.
    for (let i = 0; i < 300; i++) {
      const r = await client.call(ECHO_PATH, Buffer.from(`seq ${i}`), {
        timeout: `${4000 + (i % 50)}m`,
        metadata: [["x-request-id", `req-${i % 70}-${"p".repeat(i % 40)}`]],
      });
      expect([r.status, r.body.toString()]).toEqual([0, `seq ${i}`]);
    }
    const many = await Promise.all(
      Array.from({ length: 200 }, (_, i) =>
        client.call(ECHO_PATH, Buffer.from(`par ${i}`), {
          timeout: `${i}m`.padStart(6, "9"),
          metadata: [["x-par", String(i)]],
        }),
      ),
    );
    many.forEach((r, i) => {
      expect([r.status, r.body.toString()]).toEqual([0, `par ${i}`]);
    });
    const who = await client.call(WHOAMI_PATH, Buffer.alloc(0), {
      metadata: [
        ["x-trace", "abc"],
        ["authorization", "Bearer secret", "never-index"],
        ["x-plain", "no index here", "no-index"],
      ],
    });
    const seen = JSON.parse(who.body.toString()) as WhoAmI;
    expect(seen.host).toBe("localhost");
    expect(seen.metadata).toMatchObject({
      "x-trace": "abc",
      authorization: "Bearer secret",
      "x-plain": "no index here",
      "user-agent": expect.stringContaining("grpc-go/1.47.0") as unknown,
    });
    expect(modes()).toEqual(["rewrite"]);
  });

  it("survives CONTINUATION, padding, priority, table size updates and byte-by-byte writes", async () => {
    const client = await raw(sock.path, { byteByByte: true });
    const big = "v".repeat(9000);
    const results = [
      await client.call(ECHO_PATH, Buffer.from("a"), { fragmentSize: 7 }),
      await client.call(ECHO_PATH, Buffer.from("b"), { padding: 200, priority: true }),
      await client.call(ECHO_PATH, Buffer.from("c"), { tableSizeUpdate: 0 }),
      await client.call(ECHO_PATH, Buffer.from("d"), { tableSizeUpdate: 1024, fragmentSize: 100 }),
      await client.call(WHOAMI_PATH, Buffer.from("e"), {
        metadata: [["x-big", big]],
        fragmentSize: 4000,
        padding: 3,
      }),
      await client.call(ECHO_PATH, Buffer.from("f"), { tableSizeUpdate: 4096 }),
    ];
    expect(results.map((r) => r.status)).toEqual([0, 0, 0, 0, 0, 0]);
    expect(results.map((r) => r.body.toString()).filter((b) => b.length === 1)).toEqual([
      "a",
      "b",
      "c",
      "d",
      "f",
    ]);
    expect((JSON.parse(results[4]!.body.toString()) as WhoAmI).metadata["x-big"]).toBe(big);
    expect(modes()).toEqual(["rewrite"]);
  });

  it("is served for grpc-js clients (nghttp2's encoder), including large messages both ways", async () => {
    const client = grpcJs(sock.path);
    for (let i = 0; i < 50; i++) {
      expect(await unary(client, "echo", Buffer.from(`n${i}`))).toEqual({
        ok: true,
        value: Buffer.from(`n${i}`),
      });
    }
    const parallel = await Promise.all(
      Array.from({ length: 100 }, (_, i) => unary(client, "echo", Buffer.from(`p${i}`))),
    );
    parallel.forEach((r, i) => {
      expect(r).toEqual({ ok: true, value: Buffer.from(`p${i}`) });
    });
    const large = Buffer.alloc(3 * 1024 * 1024, 7);
    large.write("start");
    const echoed = await unary(client, "echo", large, 20000);
    expect(echoed.ok && echoed.value.equals(large)).toBe(true);
    const who = await unary(client, "whoAmI", Buffer.alloc(0));
    expect(who.ok && (JSON.parse(who.value.toString()) as WhoAmI).host).toBe("localhost");
    expect(modes()).toEqual(["rewrite"]);
  });

  it("keeps each connection's HPACK state apart", async () => {
    const a = await raw(sock.path);
    const b = await raw(sock.path, { huffman: "never" });
    const calls: Promise<{ status: number }>[] = [];
    for (let i = 0; i < 50; i++) {
      calls.push(a.call(ECHO_PATH, Buffer.from("a"), { metadata: [["x-a", `a${i}`]] }));
      calls.push(b.call(ECHO_PATH, Buffer.from("b"), { metadata: [["x-b", `b${i}`]] }));
    }
    expect((await Promise.all(calls)).every((r) => r.status === 0)).toBe(true);
    expect(modes()).toEqual(["rewrite", "rewrite"]);
  });
});

describe("acceptable authorities keep the raw socket (zero overhead)", () => {
  it.each([["localhost"], ["percent-encoded"]])("%s via grpc-js", async (kind) => {
    const authority = kind === "localhost" ? "localhost" : encodeURIComponent(sock.path);
    const client = grpcJs(authority);
    const all = await Promise.all(
      Array.from({ length: 50 }, (_, i) => unary(client, "echo", Buffer.from(String(i)))),
    );
    all.forEach((r, i) => {
      expect(r).toEqual({ ok: true, value: Buffer.from(String(i)) });
    });
    const who = await unary(client, "whoAmI", Buffer.alloc(0));
    expect(who.ok && (JSON.parse(who.value.toString()) as WhoAmI).host).toBe(authority);
    expect(modes()).toEqual(["raw"]);
  });

  it("for a grpc-go-like client too, writing byte by byte", async () => {
    const client = await raw(encodeURIComponent(sock.path), { byteByByte: true });
    for (let i = 0; i < 20; i++) {
      const r = await client.call(ECHO_PATH, Buffer.from(`r${i}`), {
        metadata: [["x-i", String(i)]],
      });
      expect([r.status, r.body.toString()]).toEqual([0, `r${i}`]);
    }
    const who = await client.call(WHOAMI_PATH, Buffer.alloc(0));
    expect((JSON.parse(who.body.toString()) as WhoAmI).host).toBe(encodeURIComponent(sock.path));
    expect(modes()).toEqual(["raw"]);
  });
});

describe("hostile or broken clients lose their connection, the server keeps serving", () => {
  it("garbage instead of a preface", async () => {
    const { socket, closed } = await openSocket();
    socket.write("GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    expect(await closed).toBeLessThan(250);
    await stillServes();
    expect(modes()[0]).toBe("rejected");
  });

  it("a truncated preface (closed at the sniff timeout)", async () => {
    const { socket, closed } = await openSocket();
    socket.write(CLIENT_MAGIC.subarray(0, 10));
    expect(await closed).toBeGreaterThanOrEqual(250);
    await stillServes();
    expect(modes()[0]).toBe("rejected");
  });

  it("nothing at all (closed at the sniff timeout)", async () => {
    const { closed } = await openSocket();
    expect(await closed).toBeGreaterThanOrEqual(250);
    await stillServes();
    expect(modes()[0]).toBe("rejected");
  });

  it("a preface that is not followed by SETTINGS", async () => {
    const { socket, closed } = await openSocket();
    socket.write(Buffer.concat([CLIENT_MAGIC, encodeFrame(FrameType.PING, 0, 0, Buffer.alloc(8))]));
    expect(await closed).toBeLessThan(250);
    await stillServes();
  });

  it("an oversized first header block", async () => {
    const client = await raw(sock.path);
    const call = client.call(ECHO_PATH, Buffer.from("x"), {
      metadata: [["x-huge", "h".repeat(20 * 1024)]],
      fragmentSize: 4096,
      timeout: "1000m",
    });
    await expect(call).rejects.toThrow();
    await client.closed;
    await stillServes();
    expect(modes()).toEqual(["rejected", "rewrite"]);
  });

  it("an oversized header block later on a rewritten connection", async () => {
    const client = await raw(sock.path);
    expect((await client.call(ECHO_PATH, Buffer.from("x"))).status).toBe(0);
    await expect(
      client.call(ECHO_PATH, Buffer.from("x"), { metadata: [["x-huge", "h".repeat(20 * 1024)]] }),
    ).rejects.toThrow();
    await client.closed;
    await stillServes();
  });

  it("a header block interrupted by another frame", async () => {
    const client = await raw(sock.path);
    expect((await client.call(ECHO_PATH, Buffer.from("x"))).status).toBe(0);
    client.write(encodeFrame(FrameType.HEADERS, 0, 99, Buffer.from([0x82])));
    client.write(encodeFrame(FrameType.DATA, 0, 99, Buffer.alloc(1)));
    await client.closed;
    await stillServes();
  });

  it("an HPACK reference past the dynamic table", async () => {
    const client = await raw(sock.path);
    expect((await client.call(ECHO_PATH, Buffer.from("x"))).status).toBe(0);
    client.write(encodeFrame(FrameType.HEADERS, 0x4, 99, Buffer.from([0xff, 0x7f])));
    await client.closed;
    await stillServes();
  });

  it("a quiet client after a valid preface is kept and served through the rewriter", async () => {
    const client = await raw("localhost");
    await new Promise((resolve) => setTimeout(resolve, 400));
    expect(modes()).toEqual(["rewrite"]);
    const r = await client.call(ECHO_PATH, Buffer.from("late"));
    expect([r.status, r.body.toString()]).toEqual([0, "late"]);
  });
});

describe("teardown on rewritten connections", () => {
  it("survives clients vanishing mid-call, half-closing, and a server shutdown with calls in flight", async () => {
    const crashes: unknown[] = [];
    const onCrash = (err: unknown): void => {
      crashes.push(err);
    };
    process.on("uncaughtException", onCrash);
    try {
      const rounds = Array.from({ length: 40 }, async (_, i) => {
        const client = await raw(sock.path);
        const calls = Array.from({ length: 5 }, (_unused, j) =>
          client.call(ECHO_PATH, Buffer.alloc(1000 * j, i)).catch(() => undefined),
        );
        await new Promise((r) => setTimeout(r, i % 7));
        if (i % 3 === 0) client.destroy();
        else if (i % 3 === 1) client.close();
        await Promise.all(calls);
      });
      await Promise.all(rounds);
      // Calls in flight while the server goes away (once the connection is admitted: grpc-js
      // cannot refuse connections injected after its shutdown; server.ts guards that).
      const late = await raw(sock.path);
      expect((await late.call(ECHO_PATH, Buffer.from("admitted"))).status).toBe(0);
      const pending = Array.from({ length: 20 }, () =>
        late.call(ECHO_PATH, Buffer.alloc(30000)).catch(() => undefined),
      );
      srv.server.forceShutdown();
      await Promise.all(pending);
      await late.closed;
      await new Promise((r) => setTimeout(r, 100));
    } finally {
      process.off("uncaughtException", onCrash);
    }
    expect(crashes).toEqual([]);
  });
});
