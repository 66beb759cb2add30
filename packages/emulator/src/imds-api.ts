import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { enterOperation, type EmulatorCore, type RequestContext } from "./context.js";
import { requestHost, sendJson } from "./http-io.js";
import { nowSeconds } from "./key-store.js";
import { TOKEN_LIFETIME_SECONDS } from "./tokens.js";

const TOKEN_PATHS = new Set([
  "/metadata/identity/oauth2/token",
  "/metadata/identity/oauth2/token/",
]);

/**
 * The Azure Instance Metadata Service's managed identity endpoint, on plain HTTP like the real
 * one (169.254.169.254); clients reach it through AZURE_POD_IDENTITY_AUTHORITY_HOST.
 */
export async function startImdsServer(
  core: EmulatorCore,
  port: number,
): Promise<{ server: Server; port: number }> {
  const server = createServer((req, res) => {
    req.on("error", () => undefined);
    res.on("error", () => undefined);
    void handleImds(core, req, res).catch((err: unknown) => {
      sendJson(res, 500, { error: "server_error", error_description: String(err) });
    });
  });
  server.keepAliveTimeout = 600_000;
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, "127.0.0.1", () => {
      server.off("error", reject);
      resolve();
    });
  });
  return { server, port: (server.address() as AddressInfo).port };
}

function invalidRequest(res: ServerResponse, description: string): void {
  sendJson(res, 400, { error: "invalid_request", error_description: description });
}

async function handleImds(
  core: EmulatorCore,
  req: IncomingMessage,
  res: ServerResponse,
): Promise<void> {
  const url = new URL(req.url ?? "/", "http://imds.invalid");
  if (!TOKEN_PATHS.has(url.pathname)) {
    sendJson(res, 404, { error: "not_found", error_description: "Not found" });
    return;
  }
  const ctx: RequestContext = {
    req,
    res,
    url,
    segments: url.pathname.split("/").slice(1),
    host: requestHost(req, "169.254.169.254"),
  };
  if (await enterOperation(core, ctx, "imds", "entra")) return;
  if (req.method !== "GET") {
    sendJson(res, 405, { error: "invalid_request", error_description: "Method not allowed" });
    return;
  }
  // IMDS refuses requests without it: a guard against SSRF through proxies.
  if (req.headers["metadata"]?.toString().toLowerCase() !== "true") {
    invalidRequest(res, "Required metadata header not specified");
    return;
  }
  const query = url.searchParams;
  if (!query.get("api-version")) {
    invalidRequest(res, "Required query variable 'api-version' is missing");
    return;
  }
  const resource = query.get("resource") ?? "";
  if (resource === "") {
    invalidRequest(res, "Required query variable 'resource' is missing");
    return;
  }
  const clientId = identityOf(core, query);
  if (clientId === undefined) {
    invalidRequest(res, "Identity not found");
    return;
  }
  const now = nowSeconds();
  sendJson(res, 200, {
    access_token: core.tokens.issue(core.registration.tenantId, clientId, resource),
    client_id: clientId,
    expires_in: String(TOKEN_LIFETIME_SECONDS),
    expires_on: String(now + TOKEN_LIFETIME_SECONDS),
    ext_expires_in: String(TOKEN_LIFETIME_SECONDS),
    not_before: String(now),
    resource,
    token_type: "Bearer",
  });
}

/** The managed identity asked for: client_id (user-assigned) or none (system-assigned). */
function identityOf(core: EmulatorCore, query: URLSearchParams): string | undefined {
  // Resource and object IDs exist in Azure; the emulator knows identities by client ID only.
  if (query.has("msi_res_id") || query.has("mi_res_id") || query.has("object_id")) return undefined;
  const clientId = query.get("client_id");
  if (clientId !== null) {
    return core.directory.isUserAssigned(clientId) ? clientId.toLowerCase() : undefined;
  }
  return core.directory.systemAssignedClientId;
}
