// Step 1: a stock grpc-js server on a unix socket refuses the raw socket path as :authority,
// which is what kube-apiserver 1.25–1.28 (grpc-go 1.47–1.56) sends.
import * as grpc from "@grpc/grpc-js";
import { isAcceptableAuthority } from "../../src/grpc/authority-shim/authority-check.js";
import {
  ECHO_PATH,
  EchoClient,
  startStockServer,
  tempSocketPath,
  unary,
  type StockServer,
} from "../unit/grpc/support/echo-server.js";
import { RawGrpcClient } from "../unit/grpc/support/raw-grpc-client.js";

describe("stock grpc-js server on a unix socket", () => {
  let sock: ReturnType<typeof tempSocketPath>;
  let stock: StockServer;

  beforeAll(async () => {
    sock = tempSocketPath();
    stock = await startStockServer(sock.path);
  });

  afterAll(async () => {
    await stock.stop();
    sock.cleanup();
  });

  const grpcJsCall = async (authority: string) => {
    const client = new EchoClient(`unix:${sock.path}`, grpc.credentials.createInsecure(), {
      "grpc.default_authority": authority,
    });
    try {
      return await unary(client, "echo", Buffer.from("hi"));
    } finally {
      client.close();
    }
  };

  it("resets the stream when a grpc-js client sends the socket path as :authority", async () => {
    const res = await grpcJsCall(sock.path);
    expect(res.ok).toBe(false);
    if (!res.ok) {
      expect(res.error.code).toBe(grpc.status.INTERNAL);
      expect(res.error.details).toBe("Received RST_STREAM with code 1"); // PROTOCOL_ERROR
    }
  });

  it.each([["localhost"], ["percent-encoded path"]])("accepts %s", async (kind) => {
    const authority = kind === "localhost" ? "localhost" : encodeURIComponent(sock.path);
    const res = await grpcJsCall(authority);
    expect(res).toEqual({ ok: true, value: Buffer.from("hi") });
  });

  it("resets a grpc-go-like raw client's stream with PROTOCOL_ERROR, keeping the connection", async () => {
    const client = await RawGrpcClient.connect(sock.path, { authority: sock.path });
    try {
      await expect(client.call(ECHO_PATH, Buffer.from("x"))).rejects.toThrow(
        "RST_STREAM with code 1",
      );
      await expect(client.call(ECHO_PATH, Buffer.from("y"))).rejects.toThrow(
        "RST_STREAM with code 1",
      );
    } finally {
      client.destroy();
    }
  });

  // Every octet, alone and at the start, middle and end of a value, and before a port: the rule
  // is per octet today, and this would show a Node whose rule depends on position.
  it("refuses exactly the octets isAcceptableAuthority refuses, in every position", async () => {
    const client = await RawGrpcClient.connect(sock.path, {
      authority: "",
      encoder: { huffman: "never" },
    });
    const shapes = [(c: string) => c, (c: string) => `${c}b`, (c: string) => `a${c}b`];
    shapes.push(
      (c) => `a${c}`,
      (c) => `u${c}h:443`,
    );
    const verdicts: string[] = [];
    try {
      for (let b = 0; b < 256; b++) {
        for (const shape of shapes) {
          const authority = shape(String.fromCharCode(b));
          const accepted = await client.call(ECHO_PATH, Buffer.from("x"), { authority }).then(
            (r) => r.status === 0,
            () => false,
          );
          const expected = isAcceptableAuthority(Buffer.from(authority, "latin1"));
          if (accepted !== expected)
            verdicts.push(`${JSON.stringify(authority)}: node=${accepted}`);
        }
      }
    } finally {
      client.destroy();
    }
    expect(verdicts).toEqual([]);
  });

  // The one octet whose verdict changed between Node 20 (nghttp2 1.61: accepted) and Node 24.
  it("refuses userinfo ('@') in :authority", async () => {
    const client = await RawGrpcClient.connect(sock.path, { authority: "user@localhost" });
    try {
      expect(isAcceptableAuthority(Buffer.from("user@localhost"))).toBe(false);
      await expect(client.call(ECHO_PATH, Buffer.from("x"))).rejects.toThrow("code 1");
    } finally {
      client.destroy();
    }
  });

  it("lets a host header with a slash through next to :authority (so only :authority is rewritten)", async () => {
    const client = await RawGrpcClient.connect(sock.path, { authority: "localhost" });
    try {
      const withHost = (host: string) =>
        client.call(ECHO_PATH, Buffer.from("x"), { metadata: [["host", host]] });
      expect((await withHost("localhost")).status).toBe(0);
      expect((await withHost(sock.path)).status).toBe(0);
      expect((await withHost("user@localhost")).status).toBe(0);
    } finally {
      client.destroy();
    }
  });

  it("also refuses an empty :authority", async () => {
    const client = await RawGrpcClient.connect(sock.path, { authority: "" });
    try {
      expect(isAcceptableAuthority(Buffer.alloc(0))).toBe(false);
      await expect(client.call(ECHO_PATH, Buffer.from("x"))).rejects.toThrow("code 1");
    } finally {
      client.destroy();
    }
  });
});
