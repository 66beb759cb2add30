import {
  createKmsServer,
  ListenAddressError,
  MAX_SOCKET_PATH_BYTES,
  parseListenAddress,
  type ListenAddressProblem,
} from "../../src/grpc/index.js";
import type { KmsService } from "../../src/kms/index.js";

function problemOf(listenAddr: string): { problem: ListenAddressProblem; message: string } {
  try {
    parseListenAddress(listenAddr);
  } catch (error) {
    if (error instanceof ListenAddressError)
      return { problem: error.problem, message: error.message };
    throw error;
  }
  throw new Error(`${listenAddr} was accepted`);
}

describe("parseListenAddress (as kube-apiserver reads a KMS endpoint)", () => {
  it.each([
    ["unix:///opt/azurekms.socket", "/opt/azurekms.socket"],
    ["UNIX:///var/run/kms.sock", "/var/run/kms.sock"],
    ["Unix:///tmp/kms.sock", "/tmp/kms.sock"],
    ["unix:///tmp/with%20space.sock", "/tmp/with space.sock"],
  ])("%s → %s", (listenAddr, path) => {
    expect(parseListenAddress(listenAddr)).toBe(path);
  });

  it("accepts a path of exactly 107 bytes and refuses 108", () => {
    const at = (n: number): string => `unix:///${"a".repeat(n - 1)}`;
    expect(parseListenAddress(at(MAX_SOCKET_PATH_BYTES))).toHaveLength(107);
    const { problem, message } = problemOf(at(108));
    expect(problem).toBe("too-long");
    expect(message).toMatch(/108 bytes.*at most 107/);
  });

  it("counts bytes, not characters", () => {
    // 54 two-byte characters = 108 bytes after the leading slash's 1.
    expect(problemOf(`unix:///${"é".repeat(54)}`).problem).toBe("too-long");
  });

  it("refuses Linux abstract sockets, saying why and what to use instead", () => {
    const { problem, message } = problemOf("unix:///@kms-plugin");
    expect(problem).toBe("abstract");
    expect(message).toContain('"@kms-plugin"');
    expect(message).toMatch(/pads an abstract name with NUL bytes/);
    expect(message).toMatch(/connection refused/);
    expect(message).toMatch(/Use a path socket instead, e\.g\. unix:\/\/\/opt\/azurekms\.socket/);
  });

  it.each([
    ["tcp://127.0.0.1:8080", "scheme", /unsupported scheme "tcp".*unix sockets only/],
    ["http:///tmp/kms.sock", "scheme", /unsupported scheme "http"/],
    ["/tmp/kms.sock", "scheme", /has no scheme/],
    ["", "scheme", /has no scheme/],
    ["unix://", "empty", /names no socket path/],
    ["unix:///", "empty", /names no socket path/],
    ["unix:kms.sock", "relative", /not an absolute unix:\/\/ URL/],
    ["unix://kms.sock", "relative", /relative path.*"kms\.sock" as a URL host.*dial ""/],
    ["unix://tmp/kms.sock", "relative", /relative path.*would dial "\/kms\.sock"/],
    ["unix:///tmp/kms.sock?x=1", "invalid", /query or fragment/],
    ["unix:///tmp/%zz.sock", "invalid", /percent-encoding/],
    ["unix:///tmp/a%00b.sock", "invalid", /NUL/],
  ] as const)("refuses %j (%s)", (listenAddr, problem, message) => {
    const got = problemOf(listenAddr);
    expect(got.problem).toBe(problem);
    expect(got.message).toMatch(message);
  });
});

describe("createKmsServer validates --listen-addr before touching the filesystem", () => {
  const service: KmsService = {
    status: () => ({ version: "v2", healthz: "ok", keyId: "k" }),
    encrypt: () => ({ ciphertext: new Uint8Array(1), keyId: "k", annotations: new Map() }),
    decrypt: () => Promise.resolve(new Uint8Array(1)),
  };

  it.each([
    ["unix:///@abstract", "abstract"],
    ["tcp://0.0.0.0:9000", "scheme"],
  ])("%s → ListenAddressError(%s)", (listenAddr, problem) => {
    expect(() => createKmsServer({ listenAddr, service, runtimeVersion: "t" })).toThrow(
      expect.objectContaining({ name: "ListenAddressError", problem }) as Error,
    );
  });

  it("refuses a socketMode that is not a permission mode", () => {
    expect(() =>
      createKmsServer({
        listenAddr: "unix:///tmp/x.sock",
        socketMode: 0o1777,
        service,
        runtimeVersion: "t",
      }),
    ).toThrow(RangeError);
  });
});
