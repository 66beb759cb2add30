import type { IncomingMessage, ServerResponse } from "node:http";
import { createServer, type Server } from "node:https";
import type { AddressInfo } from "node:net";
import type { ServerCertificate } from "./certificates.js";
import type { EmulatorCore, RequestContext } from "./context.js";
import { handleControlApi } from "./control-api.js";
import { KeyVaultError, requestHost, sendJson, sendKeyVaultError } from "./http-io.js";
import { handleKeysApi } from "./keys-api.js";
import { handleTokenApi } from "./token-api.js";

/** Thrown by core.sleep when the emulator closes under a delayed request. */
export class ClosingError extends Error {}

const HANDLERS = [handleControlApi, handleKeysApi, handleTokenApi];

export async function startServer(
  core: EmulatorCore,
  tls: ServerCertificate,
  port: number,
): Promise<{ server: Server; port: number }> {
  const server = createServer(
    { key: tls.keyPem, cert: tls.certPem, minVersion: "TLSv1.2" },
    (req, res) => {
      void dispatch(core, req, res);
    },
  );
  // Node's 5 s default races clients that reuse an idle keep-alive socket just as the server
  // closes it (ECONNRESET with retries off); Azure's front ends keep idle sockets for minutes.
  server.keepAliveTimeout = 600_000;
  server.on("clientError", (_err, socket) => {
    if (socket.writable) socket.end("HTTP/1.1 400 Bad Request\r\nconnection: close\r\n\r\n");
    else socket.destroy();
  });
  server.on("tlsClientError", () => undefined);
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, "127.0.0.1", () => {
      server.off("error", reject);
      resolve();
    });
  });
  return { server, port: (server.address() as AddressInfo).port };
}

async function dispatch(
  core: EmulatorCore,
  req: IncomingMessage,
  res: ServerResponse,
): Promise<void> {
  req.on("error", () => undefined);
  res.on("error", () => undefined);
  try {
    const url = new URL(req.url ?? "/", "https://emulator.invalid");
    const ctx: RequestContext = {
      req,
      res,
      url,
      segments: url.pathname.split("/").slice(1),
      host: requestHost(req, core.defaultHost()),
    };
    for (const handle of HANDLERS) {
      if (await handle(core, ctx)) return;
    }
    throw new KeyVaultError(404, "NotFound", `The emulator does not serve ${url.pathname}.`);
  } catch (err) {
    if (err instanceof ClosingError) {
      res.destroy();
    } else if (err instanceof KeyVaultError) {
      // Drop the connection after an unread oversized body instead of draining it.
      if (err.status === 413) res.setHeader("connection", "close");
      sendKeyVaultError(res, err);
    } else {
      sendJson(res, 500, {
        error: { code: "InternalError", message: `Emulator error: ${String(err)}` },
      });
    }
  }
}
