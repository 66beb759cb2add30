import { chmod, link, lstat, mkdtemp, rename, rm, stat, unlink } from "node:fs/promises";
import type { Stats } from "node:fs";
import { connect } from "node:net";
import type { Server } from "node:net";
import { dirname, join } from "node:path";
import { ListenAddressError, MAX_SOCKET_PATH_BYTES } from "./listen-address.js";
import type { GrpcLogger } from "./unary.js";

/** Which inode we bound, so shutdown never removes a socket another process put there since. */
export interface SocketIdentity {
  readonly dev: number;
  readonly ino: number;
}

const probeTimeoutMs = 1_000;

/**
 * Makes `path` free to listen on: nothing there, or a stale socket (nobody answers) that is
 * removed. A live socket, or anything that is not a socket, is refused and left alone.
 */
export async function clearSocketPath(path: string, logger?: GrpcLogger): Promise<void> {
  let found: Stats;
  try {
    found = await lstat(path);
  } catch (error) {
    if (codeOf(error) !== "ENOENT") throw error;
    await checkDirectory(dirname(path));
    return;
  }
  if (!found.isSocket()) {
    throw new ListenAddressError(
      "not-a-socket",
      `${path} exists and is not a socket (it is ${kindOf(found)}); refusing to replace it: ` +
        `remove it yourself or choose another --listen-addr`,
    );
  }
  const answer = await probeSocket(path);
  if (answer === "gone") return;
  if (answer === "live") {
    throw new ListenAddressError(
      "in-use",
      `another process is serving on ${path}; stop it or choose another --listen-addr`,
    );
  }
  if (answer !== "ECONNREFUSED") {
    throw new ListenAddressError(
      "in-use",
      `cannot tell whether ${path} is in use (connecting to it failed with ${answer}); ` +
        `remove it if it is stale, or choose another --listen-addr`,
    );
  }
  // Nobody listens: a socket left by a process that died. Remove it unless it was just replaced.
  if (await sameInode(path, found)) {
    await unlink(path).catch(ignoreMissing);
    logger?.warn({ socketPath: path }, "removed a stale socket left by an earlier run");
  }
}

/**
 * Listens on `path` with permissions `mode` such that the socket is never reachable with wider
 * ones: bind inside a fresh 0700 directory beside `path`, chmod, then hard-link it onto `path`
 * (link, unlike rename, never replaces what another process created meanwhile). A unix socket
 * is served through any name of its inode, so the link serves as the original did.
 */
export async function listenOnSocketPath(
  server: Server,
  path: string,
  mode: number,
): Promise<SocketIdentity> {
  const dir = dirname(path);
  let privateDir: string;
  try {
    privateDir = await mkdtemp(join(dir, ".kms-"));
  } catch (error) {
    throw new ListenAddressError(
      "permission",
      `cannot create the socket in ${dir} (${codeOf(error) ?? "error"}): ` +
        `the plugin needs write access to that directory`,
      { cause: error },
    );
  }
  try {
    const tempPath = join(privateDir, "s");
    const tempBytes = Buffer.byteLength(tempPath, "utf8");
    if (tempBytes > MAX_SOCKET_PATH_BYTES) {
      throw new ListenAddressError(
        "too-long",
        `the socket directory ${dir} is too long: creating the socket safely needs a temporary ` +
          `name of ${tempBytes} bytes beside it (max ${MAX_SOCKET_PATH_BYTES}); use a shorter path`,
      );
    }
    await listen(server, tempPath);
    try {
      await chmod(tempPath, mode);
      await publish(tempPath, path);
      const bound = await lstat(path);
      return { dev: bound.dev, ino: bound.ino };
    } catch (error) {
      server.close();
      throw error;
    }
  } finally {
    await rm(privateDir, { recursive: true, force: true });
  }
}

/** Removes the socket file if it is still the one we bound. */
export async function removeSocketFile(path: string, identity: SocketIdentity): Promise<void> {
  if (await sameInode(path, identity)) await unlink(path).catch(ignoreMissing);
}

async function publish(tempPath: string, path: string): Promise<void> {
  try {
    await link(tempPath, path);
  } catch (error) {
    const code = codeOf(error);
    if (code === "EEXIST") {
      throw new ListenAddressError(
        "in-use",
        `${path} was created by another process while this one was starting; ` +
          `stop it or choose another --listen-addr`,
      );
    }
    // A filesystem without hard links: rename is atomic too, only not exclusive.
    if (code === "EPERM" || code === "ENOTSUP" || code === "EOPNOTSUPP") {
      await rename(tempPath, path);
      return;
    }
    throw error;
  }
}

async function checkDirectory(dir: string): Promise<void> {
  let found: Stats;
  try {
    found = await stat(dir);
  } catch (error) {
    if (codeOf(error) !== "ENOENT") throw error;
    throw new ListenAddressError(
      "no-directory",
      `directory ${dir} does not exist: create it (kube-apiserver must see it too, e.g. through ` +
        `a shared hostPath volume) or choose another --listen-addr`,
    );
  }
  if (!found.isDirectory()) {
    throw new ListenAddressError(
      "no-directory",
      `${dir} is not a directory: choose another --listen-addr`,
    );
  }
}

/** "live", "gone", or the error code connecting failed with (ECONNREFUSED: stale). */
export function probeSocket(path: string): Promise<string> {
  return new Promise((resolve) => {
    const socket = connect({ path });
    const timer = setTimeout(() => {
      socket.destroy();
      resolve("a timeout");
    }, probeTimeoutMs);
    socket.once("connect", () => {
      clearTimeout(timer);
      socket.destroy();
      resolve("live");
    });
    socket.once("error", (error) => {
      clearTimeout(timer);
      const code = codeOf(error);
      resolve(code === "ENOENT" ? "gone" : (code ?? error.message));
    });
  });
}

function listen(server: Server, path: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const onError = (error: Error): void => {
      reject(error);
    };
    server.once("error", onError);
    server.listen(path, () => {
      server.removeListener("error", onError);
      resolve();
    });
  });
}

async function sameInode(path: string, expected: SocketIdentity): Promise<boolean> {
  try {
    const now = await lstat(path);
    return now.dev === expected.dev && now.ino === expected.ino;
  } catch {
    return false;
  }
}

function kindOf(found: Stats): string {
  if (found.isFile()) return "a regular file";
  if (found.isDirectory()) return "a directory";
  if (found.isSymbolicLink()) return "a symbolic link";
  if (found.isFIFO()) return "a FIFO";
  return "a device or other special file";
}

function codeOf(error: unknown): string | undefined {
  if (typeof error === "object" && error !== null && "code" in error) {
    return typeof error.code === "string" ? error.code : undefined;
  }
  return undefined;
}

function ignoreMissing(error: unknown): void {
  if (codeOf(error) !== "ENOENT") throw error;
}
