/** The socket's lifecycle: creation, permissions, stale and live sockets, shutdown. */
import { status } from "@grpc/grpc-js";
import { existsSync, lstatSync } from "node:fs";
import { link, lstat, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import net from "node:net";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import * as v2 from "../../src/gen/v2/api_pb.js";
import {
  createKmsServer,
  ListenAddressError,
  type KmsServer,
  type KmsServerOptions,
} from "../../src/grpc/index.js";
import type { CallContext, DecryptInput, KmsService } from "../../src/kms/index.js";
import { callError, createClient } from "../helpers/grpc-client.js";

/** Decrypt runs `decryptHook` when set (to hold a call in flight), else echoes. */
const service: KmsService & {
  decryptHook?: (input: DecryptInput, ctx: CallContext) => Promise<Uint8Array>;
} = {
  status: () => ({ version: "v2", healthz: "ok", keyId: "key-1" }),
  encrypt: (plaintext) => ({ ciphertext: plaintext, keyId: "key-1", annotations: new Map() }),
  decrypt(input, ctx) {
    return this.decryptHook?.(input, ctx) ?? Promise.resolve(input.ciphertext);
  },
};

let dir: string;
let socketPath: string;
const cleanups: (() => Promise<void> | void)[] = [];

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "kms-sock-"));
  socketPath = join(dir, "kms.sock");
});

afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  delete service.decryptHook;
  await rm(dir, { recursive: true, force: true });
});

function newServer(options: Partial<KmsServerOptions> = {}): KmsServer {
  const server = createKmsServer({
    listenAddr: `unix://${socketPath}`,
    service,
    runtimeVersion: "t",
    ...options,
  });
  cleanups.push(() => server.shutdown(500));
  return server;
}

function v2Client(path = socketPath, timeoutMs = 5_000) {
  const client = createClient(v2.KeyManagementService, path, { timeoutMs });
  cleanups.push(() => {
    client.close();
  });
  return client;
}

/** How connecting to `path` ends: "connected" or the error code. */
function connectResult(path: string): Promise<string> {
  return new Promise((resolve) => {
    const socket = net.connect({ path });
    socket.once("connect", () => {
      socket.destroy();
      resolve("connected");
    });
    socket.once("error", (error: NodeJS.ErrnoException) => {
      resolve(error.code ?? error.message);
    });
  });
}

function listen(server: net.Server, path: string): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(path, resolve);
  });
}

function closeServer(server: net.Server): Promise<void> {
  return new Promise((resolve) => {
    server.close(() => {
      resolve();
    });
  });
}

async function listenError(server: KmsServer): Promise<ListenAddressError> {
  try {
    await server.listen();
  } catch (error) {
    if (error instanceof ListenAddressError) return error;
    throw error;
  }
  throw new Error("listen() succeeded but was expected to fail");
}

async function until(condition: () => boolean, timeoutMs = 2_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > end) throw new Error("condition not met in time");
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

const modeOf = async (path: string): Promise<number> => (await lstat(path)).mode & 0o777;

describe("socket file", () => {
  it("is a socket with mode 0600 by default, and nothing else is left in its directory", async () => {
    const server = newServer();
    await server.listen();
    expect(server.socketPath).toBe(socketPath);
    expect((await lstat(socketPath)).isSocket()).toBe(true);
    expect(await modeOf(socketPath)).toBe(0o600);
    expect(await readdir(dir)).toEqual(["kms.sock"]);
    expect(await v2Client().status({})).toMatchObject({ healthz: "ok" });
  });

  it.each([0o660, 0o666, 0o700])("honours socketMode %d (decimal)", async (socketMode) => {
    const server = newServer({ socketMode });
    await server.listen();
    expect(await modeOf(socketPath)).toBe(socketMode);
    expect(await v2Client().status({})).toMatchObject({ healthz: "ok" });
  });

  it("is bound inside a private 0700 directory, and reaches its path only with its final mode", async () => {
    // Record where the server binds, and what guards that place, at the moment of binding.
    // eslint-disable-next-line @typescript-eslint/unbound-method -- called back with apply()
    const original = net.Server.prototype.listen;
    const binds: { path: string; dirMode: number; finalExists: boolean }[] = [];
    net.Server.prototype.listen = function (this: net.Server, ...args: unknown[]) {
      if (typeof args[0] === "string") {
        const path = args[0];
        const dirMode = lstatSync(dirname(path)).mode & 0o777;
        binds.push({ path, dirMode, finalExists: existsSync(socketPath) });
      }
      return original.apply(this, args as Parameters<typeof original>);
    } as typeof original;
    try {
      const server = newServer({ socketMode: 0o640 });
      await server.listen();
    } finally {
      net.Server.prototype.listen = original;
    }
    expect(binds).toHaveLength(1);
    const [bind] = binds;
    expect(bind!.path).not.toBe(socketPath);
    expect(dirname(dirname(bind!.path))).toBe(dir);
    expect(bind!.dirMode).toBe(0o700);
    expect(bind!.finalExists).toBe(false);
    expect(await modeOf(socketPath)).toBe(0o640);
    expect(existsSync(dirname(bind!.path))).toBe(false);
  });

  it("replaces a stale socket (nobody answers on it) and serves there", async () => {
    // A socket inode nobody listens on, as a crashed plugin leaves behind.
    const holder = net.createServer();
    await listen(holder, join(dir, "old.sock"));
    await link(join(dir, "old.sock"), socketPath);
    await closeServer(holder);
    expect((await lstat(socketPath)).isSocket()).toBe(true);
    expect(await connectResult(socketPath)).toBe("ECONNREFUSED");

    const server = newServer();
    await server.listen();
    expect(await v2Client().status({})).toMatchObject({ healthz: "ok" });
  });

  it("refuses a socket another KMS server is serving on, which keeps serving", async () => {
    const first = newServer();
    await first.listen();
    const second = newServer();
    const error = await listenError(second);
    expect(error.problem).toBe("in-use");
    expect(error.message).toBe(
      `another process is serving on ${socketPath}; stop it or choose another --listen-addr`,
    );
    expect(await v2Client().status({})).toMatchObject({ healthz: "ok" });
    // The refused server's shutdown must not remove the live server's socket.
    await second.shutdown(100);
    expect(await v2Client().status({})).toMatchObject({ healthz: "ok" });
  });

  it("refuses a socket any other process listens on", async () => {
    const other = net.createServer((socket) => socket.destroy());
    await listen(other, socketPath);
    cleanups.push(() => closeServer(other));
    expect((await listenError(newServer())).problem).toBe("in-use");
    expect(await connectResult(socketPath)).toBe("connected");
  });

  it("refuses a regular file at the path and leaves it intact", async () => {
    await writeFile(socketPath, "not yours", { mode: 0o644 });
    const error = await listenError(newServer());
    expect(error.problem).toBe("not-a-socket");
    expect(error.message).toMatch(/exists and is not a socket \(it is a regular file\)/);
    expect(error.message).toMatch(/refusing to replace it/);
    expect(await readFile(socketPath, "utf8")).toBe("not yours");
    expect(await modeOf(socketPath)).toBe(0o644);
  });

  it("refuses a directory at the path", async () => {
    await mkdir(socketPath);
    const error = await listenError(newServer());
    expect(error.problem).toBe("not-a-socket");
    expect(error.message).toMatch(/it is a directory/);
  });

  it("refuses a missing parent directory with a clear error", async () => {
    socketPath = join(dir, "missing", "kms.sock");
    const error = await listenError(newServer());
    expect(error.problem).toBe("no-directory");
    expect(error.message).toMatch(`directory ${join(dir, "missing")} does not exist`);
  });

  it("listen() twice, or after shutdown, is an error", async () => {
    const server = newServer();
    await server.listen();
    await expect(server.listen()).rejects.toThrow(/already called/);
    await server.shutdown(100);
    await expect(server.listen()).rejects.toThrow(/shut down/);
  });
});

describe("shutdown", () => {
  it("lets an in-flight Decrypt finish, then removes the socket and refuses new connections", async () => {
    const server = newServer();
    await server.listen();
    const client = v2Client();
    let release: ((plaintext: Uint8Array) => void) | undefined;
    service.decryptHook = () => new Promise((resolve) => (release = resolve));
    const inFlight = client.decrypt({ ciphertext: Buffer.from("c"), keyId: "key-1", uid: "u" });
    await until(() => release !== undefined);

    let done = false;
    const shutdown = server.shutdown(10_000);
    void shutdown.then(() => (done = true));
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(done).toBe(false);
    // Not accepting any more, while the call in flight goes on.
    expect(await connectResult(socketPath)).toBe("ECONNREFUSED");

    release!(Buffer.from("slow plaintext"));
    const response = await inFlight;
    expect(Buffer.from(response.plaintext).toString()).toBe("slow plaintext");
    await shutdown;
    expect(existsSync(socketPath)).toBe(false);
    expect(await readdir(dir)).toEqual([]);
    expect(await connectResult(socketPath)).toBe("ENOENT");
    const late = await callError(v2Client(socketPath, 300).status({}));
    expect([status.UNAVAILABLE, status.DEADLINE_EXCEEDED]).toContain(late.code);
  });

  it("force-closes calls still running when graceMs is over", async () => {
    const server = newServer();
    await server.listen();
    let entered = false;
    service.decryptHook = () => {
      entered = true;
      return new Promise(() => undefined);
    };
    const stuck = callError(
      v2Client().decrypt({ ciphertext: Buffer.from("c"), keyId: "key-1", uid: "u" }),
    );
    await until(() => entered);
    const started = Date.now();
    await server.shutdown(200);
    const took = Date.now() - started;
    expect(took).toBeGreaterThanOrEqual(190);
    expect(took).toBeLessThan(2_000);
    expect([status.UNAVAILABLE, status.CANCELLED, status.INTERNAL]).toContain((await stuck).code);
    expect(existsSync(socketPath)).toBe(false);
  });

  it("is idempotent, and resolves when the server never listened", async () => {
    const server = newServer();
    await server.listen();
    const first = server.shutdown(100);
    expect(server.shutdown(100)).toBe(first);
    await first;
    const never = newServer();
    await never.shutdown(100);
    expect(existsSync(socketPath)).toBe(false);
  });

  it("leaves alone a file another process put at the path after we bound it", async () => {
    const server = newServer();
    await server.listen();
    await rm(socketPath);
    await writeFile(socketPath, "someone else's");
    await server.shutdown(100);
    expect(await readFile(socketPath, "utf8")).toBe("someone else's");
  });
});
