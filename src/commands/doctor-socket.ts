/** The doctor's socket-path check: what `serve` would find at --listen-addr, changing nothing. */
import { constants } from "node:fs";
import { access, lstat, stat } from "node:fs/promises";
import { dirname, join } from "node:path";
import {
  ListenAddressError,
  MAX_SOCKET_PATH_BYTES,
  parseListenAddress,
  probeSocket,
} from "../grpc/index.js";
import type { Verdict } from "./doctor-verdict.js";

function codeOf(error: unknown): string {
  return (error as NodeJS.ErrnoException).code ?? "error";
}

export async function checkSocketPath(listenAddr: string): Promise<Verdict> {
  let path: string;
  try {
    path = parseListenAddress(listenAddr);
  } catch (err) {
    if (!(err instanceof ListenAddressError)) throw err;
    return {
      status: "FAIL",
      detail: err.message,
      fix: "use an absolute path socket such as unix:///opt/azurekms.socket (the same path as the endpoint in the EncryptionConfiguration)",
    };
  }
  const dir = dirname(path);
  // serve binds in a temporary directory beside the socket first (server.ts): that name must fit.
  const tempBytes = Buffer.byteLength(join(dir, ".kms-XXXXXX", "s"), "utf8");
  if (tempBytes > MAX_SOCKET_PATH_BYTES) {
    return {
      status: "FAIL",
      detail: `the socket directory ${dir} is too long: the temporary socket beside it needs ${tempBytes} bytes (max ${MAX_SOCKET_PATH_BYTES})`,
      fix: "choose a shorter --listen-addr path",
    };
  }
  try {
    const found = await stat(dir);
    if (!found.isDirectory()) {
      return {
        status: "FAIL",
        detail: `${dir} is not a directory`,
        fix: "choose another --listen-addr",
      };
    }
  } catch (err) {
    return {
      status: "FAIL",
      detail: `socket directory ${dir} does not exist (${codeOf(err)})`,
      fix: `create it (mkdir -p ${dir}) and share it with kube-apiserver (hostPath volume), or choose another --listen-addr`,
    };
  }
  try {
    await access(dir, constants.W_OK | constants.X_OK);
  } catch (err) {
    return {
      status: "FAIL",
      detail: `socket directory ${dir} is not writable by this user (${codeOf(err)})`,
      fix: "run the plugin as a user that may create files there, or choose another --listen-addr",
    };
  }
  let isSocket: boolean;
  try {
    isSocket = (await lstat(path)).isSocket();
  } catch (err) {
    if (codeOf(err) !== "ENOENT") {
      return {
        status: "FAIL",
        detail: `cannot inspect ${path} (${codeOf(err)})`,
        fix: "check the permissions of the socket directory",
      };
    }
    return { status: "ok", detail: `${path}: directory writable, nothing there yet` };
  }
  if (!isSocket) {
    return {
      status: "FAIL",
      detail: `${path} exists and is not a socket; serve refuses to replace it`,
      fix: `remove ${path} or choose another --listen-addr`,
    };
  }
  const answer = await probeSocket(path);
  if (answer === "gone") {
    return { status: "ok", detail: `${path}: directory writable, nothing there yet` };
  }
  if (answer === "live") {
    return {
      status: "warn",
      detail: `${path}: a plugin is already serving here`,
      fix: "fine if it is the running plugin; a second serve on this path refuses to start: stop the first or choose another --listen-addr",
    };
  }
  if (answer === "ECONNREFUSED") {
    return {
      status: "warn",
      detail: `${path}: a stale socket file (nobody listens); serve removes it at start-up`,
    };
  }
  return {
    status: "FAIL",
    detail: `cannot tell whether ${path} is in use (connecting failed with ${answer})`,
    fix: `remove ${path} if it is stale, or choose another --listen-addr`,
  };
}
