/**
 * A plain-HTTP front that plays the AKS proxy the Go plugin's `--proxy-mode` talks to: it reads
 * `x-azure-proxy-target`, and forwards to the emulator itself.
 *
 * - `KeyVault`: `GET /<vault host>/keys/…` → the emulator's `/keys/…` with `Host: <vault host>`,
 *   so kids carry the vault host the client meant.
 * - `AzureActiveDirectory`: the path as is (`/<tenant>/oauth2/v2.0/token`, OpenID metadata) with
 *   `Host` = the authority host (the emulator's own by default).
 * A request without a known target header is answered 400 and counted under "(none)".
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { request as httpsRequest } from "node:https";
import type { AddressInfo } from "node:net";

export const PROXY_TARGET_HEADER = "x-azure-proxy-target";

export interface ProxyFrontOptions {
  /** The emulator to forward to (its https port on 127.0.0.1 and its CA). */
  readonly emulatorPort: number;
  readonly caPem: string;
  /** Host header for token requests; default `127.0.0.1:<emulatorPort>` (the emulator's authority). */
  readonly authorityHost?: string;
  /** 0 or absent: a free port. Binds 127.0.0.1. */
  readonly port?: number;
}

export interface ProxiedRequest {
  readonly target: string;
  readonly method: string;
  /** The path as the proxy received it. */
  readonly path: string;
}

export interface ProxyFront {
  readonly address: string;
  readonly port: number;
  /** Requests received, by `x-azure-proxy-target` value ("(none)" when absent). */
  counts(): Record<string, number>;
  requests(): readonly ProxiedRequest[];
  close(): Promise<void>;
}

function reject(res: ServerResponse, status: number, message: string): void {
  const body = Buffer.from(JSON.stringify({ error: { code: "BadProxyRequest", message } }));
  res.writeHead(status, {
    "content-type": "application/json; charset=utf-8",
    "content-length": String(body.length),
  });
  res.end(body);
}

export async function startProxyFront(options: ProxyFrontOptions): Promise<ProxyFront> {
  const seen: ProxiedRequest[] = [];
  const authorityHost = options.authorityHost ?? `127.0.0.1:${options.emulatorPort}`;

  function forward(req: IncomingMessage, res: ServerResponse, host: string, path: string): void {
    // Everything but the proxy's own header, with the Host the client meant.
    const headers = Object.fromEntries(
      Object.entries({ ...req.headers, host }).filter(([k]) => k !== PROXY_TARGET_HEADER),
    );
    const upstream = httpsRequest(
      {
        host: "127.0.0.1",
        port: options.emulatorPort,
        method: req.method ?? "GET",
        path,
        headers,
        ca: options.caPem,
        // The Host header names the emulated vault; the certificate is checked as localhost.
        servername: "localhost",
      },
      (up) => {
        res.writeHead(up.statusCode ?? 502, up.headers);
        up.pipe(res);
      },
    );
    upstream.on("error", (err) => {
      if (!res.headersSent) reject(res, 502, `emulator unreachable: ${err.message}`);
      else res.destroy();
    });
    req.pipe(upstream);
  }

  const server: Server = createServer((req, res) => {
    req.on("error", () => undefined);
    res.on("error", () => undefined);
    const raw = req.headers[PROXY_TARGET_HEADER];
    const target = typeof raw === "string" ? raw : "(none)";
    const path = req.url ?? "/";
    seen.push({ target, method: req.method ?? "GET", path });
    if (target === "KeyVault") {
      // /<vault host>/<rest>: the first segment is where the Go plugin put the vault's host.
      const m = /^\/([^/?#]+)(\/.*)?$/.exec(path);
      if (m === null || m[1] === undefined) {
        reject(res, 400, "KeyVault requests must start with /<vault host>/");
        return;
      }
      forward(req, res, m[1], m[2] ?? "/");
    } else if (target === "AzureActiveDirectory") {
      forward(req, res, authorityHost, path);
    } else {
      reject(res, 400, `missing or unknown ${PROXY_TARGET_HEADER} header`);
    }
  });
  await new Promise<void>((resolve, rejectListen) => {
    server.once("error", rejectListen);
    server.listen(options.port ?? 0, "127.0.0.1", () => {
      server.off("error", rejectListen);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  let closed: Promise<void> | undefined;
  return {
    address: "127.0.0.1",
    port,
    counts() {
      const out: Record<string, number> = {};
      for (const r of seen) out[r.target] = (out[r.target] ?? 0) + 1;
      return out;
    },
    requests: () => [...seen],
    close() {
      closed ??= new Promise<void>((resolve) => {
        server.close(() => {
          resolve();
        });
        server.closeAllConnections();
      });
      return closed;
    },
  };
}
