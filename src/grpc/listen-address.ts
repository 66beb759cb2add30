/** Longest unix socket path: sun_path is 108 bytes on Linux, one of them the closing NUL. */
export const MAX_SOCKET_PATH_BYTES = 107;

export type ListenAddressProblem =
  | "scheme"
  | "empty"
  | "relative"
  | "abstract"
  | "too-long"
  | "invalid"
  // Found when the socket is created (server.ts):
  | "in-use"
  | "not-a-socket"
  | "no-directory"
  | "permission";

/** `--listen-addr` cannot be served; the message says why and what to write instead. */
export class ListenAddressError extends Error {
  override name = "ListenAddressError";
  readonly problem: ListenAddressProblem;

  constructor(problem: ListenAddressProblem, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.problem = problem;
  }
}

const example = "unix:///opt/azurekms.socket";

/**
 * The socket path of a `--listen-addr`, read the way kube-apiserver reads its KMS endpoint
 * (k8s.io/kms `util.ParseEndpoint`): scheme `unix` (any case), the dial address is the URL's
 * percent-decoded path. Where that reading would make kube-apiserver dial something other than
 * what was meant, or something Node cannot serve, this refuses with a ListenAddressError.
 */
export function parseListenAddress(listenAddr: string): string {
  const match = /^([A-Za-z][A-Za-z0-9+.-]*):(.*)$/s.exec(listenAddr);
  if (match === null) {
    throw new ListenAddressError(
      "scheme",
      `--listen-addr ${quote(listenAddr)} has no scheme: write ${example}`,
    );
  }
  const scheme = match[1] ?? "";
  const rest = match[2] ?? "";
  if (scheme.toLowerCase() !== "unix") {
    throw new ListenAddressError(
      "scheme",
      `--listen-addr ${quote(listenAddr)}: unsupported scheme "${scheme}"; kube-apiserver dials ` +
        `KMS plugins over unix sockets only: write ${example}`,
    );
  }
  if (!rest.startsWith("//")) {
    throw new ListenAddressError(
      "relative",
      `--listen-addr ${quote(listenAddr)} is not an absolute unix:// URL (kube-apiserver would ` +
        `dial an empty path): write ${example}`,
    );
  }
  if (/[?#]/.test(rest)) {
    throw new ListenAddressError(
      "invalid",
      `--listen-addr ${quote(listenAddr)} has a query or fragment, which kube-apiserver drops ` +
        `from the socket path: remove it`,
    );
  }
  const slash = rest.indexOf("/", 2);
  const host = slash === -1 ? rest.slice(2) : rest.slice(2, slash);
  const rawPath = slash === -1 ? "" : rest.slice(slash);
  if (host !== "") {
    // The Go plugin would listen on the relative path `${host}${rawPath}`, while kube-apiserver
    // drops the URL host and dials `${rawPath}`: refuse rather than serve where nobody dials.
    throw new ListenAddressError(
      "relative",
      `--listen-addr ${quote(listenAddr)} is a relative path: kube-apiserver reads "${host}" as ` +
        `a URL host, drops it and would dial ${quote(rawPath)}. Use an absolute path with three ` +
        `slashes, e.g. ${example}`,
    );
  }
  let path: string;
  try {
    path = decodeURIComponent(rawPath);
  } catch (cause) {
    throw new ListenAddressError(
      "invalid",
      `--listen-addr ${quote(listenAddr)} has an invalid percent-encoding in its path`,
      { cause },
    );
  }
  if (path === "" || path === "/") {
    throw new ListenAddressError(
      "empty",
      `--listen-addr ${quote(listenAddr)} names no socket path: write ${example}`,
    );
  }
  if (path.startsWith("/@")) {
    throw new ListenAddressError(
      "abstract",
      `--listen-addr ${quote(listenAddr)} asks for the Linux abstract socket ` +
        `"${path.slice(1)}", which this plugin cannot serve: Node.js pads an abstract name with ` +
        `NUL bytes to the full sun_path length, so kube-apiserver, which dials the exact name, ` +
        `gets "connection refused". Use a path socket instead, e.g. ${example}, in a directory ` +
        `shared with kube-apiserver`,
    );
  }
  if (path.includes("\0")) {
    throw new ListenAddressError(
      "invalid",
      `--listen-addr ${quote(listenAddr)} has a NUL byte in its path`,
    );
  }
  const bytes = Buffer.byteLength(path, "utf8");
  if (bytes > MAX_SOCKET_PATH_BYTES) {
    throw new ListenAddressError(
      "too-long",
      `--listen-addr socket path is ${bytes} bytes; unix sockets allow at most ` +
        `${MAX_SOCKET_PATH_BYTES}: choose a shorter path`,
    );
  }
  return path;
}

function quote(value: string): string {
  return JSON.stringify(value);
}
