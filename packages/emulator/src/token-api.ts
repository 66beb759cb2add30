import { randomUUID } from "node:crypto";
import type { ServerResponse } from "node:http";
import { clientAssertionAuthenticator } from "./client-assertion.js";
import {
  clientSecretAuthenticator,
  invalidClient,
  type ClientAuthenticator,
  type EntraError,
} from "./client-auth.js";
import { enterOperation, type EmulatorCore, type RequestContext } from "./context.js";
import { readBody, sendJson } from "./http-io.js";
import { TOKEN_LIFETIME_SECONDS } from "./tokens.js";

const TENANT = /^[A-Za-z0-9._-]{1,128}$/;

const CLIENT_AUTHENTICATORS: readonly ClientAuthenticator[] = [
  clientAssertionAuthenticator,
  clientSecretAuthenticator,
];

/**
 * Entra ID's endpoints for MSAL confidential clients, under the authority
 * https://HOST:PORT/{tenant}. Returns false for any other path.
 */
export async function handleTokenApi(core: EmulatorCore, ctx: RequestContext): Promise<boolean> {
  const [tenant, ...rest] = ctx.segments;
  if (tenant === undefined || !TENANT.test(tenant)) return false;
  const path = rest.join("/");
  const method = ctx.req.method;
  if (path === "v2.0/.well-known/openid-configuration" && method === "GET") {
    if (await enterOperation(core, ctx, "openid", "entra")) return true;
    sendJson(ctx.res, 200, openIdConfiguration(`https://${ctx.host}`, tenant));
    return true;
  }
  if (path === "discovery/v2.0/keys" && method === "GET") {
    // Tokens are opaque to the clients; nobody verifies them but the emulator.
    sendJson(ctx.res, 200, { keys: [] });
    return true;
  }
  if (path === "oauth2/v2.0/token" && method === "POST") {
    if (await enterOperation(core, ctx, "token", "entra")) return true;
    await issueToken(core, ctx, tenant);
    return true;
  }
  return false;
}

function openIdConfiguration(base: string, tenant: string): unknown {
  return {
    token_endpoint: `${base}/${tenant}/oauth2/v2.0/token`,
    token_endpoint_auth_methods_supported: [
      "client_secret_post",
      "private_key_jwt",
      "client_secret_basic",
    ],
    jwks_uri: `${base}/${tenant}/discovery/v2.0/keys`,
    response_modes_supported: ["query", "fragment", "form_post"],
    subject_types_supported: ["pairwise"],
    id_token_signing_alg_values_supported: ["RS256"],
    response_types_supported: ["code", "id_token", "code id_token", "id_token token"],
    scopes_supported: ["openid", "profile", "email", "offline_access"],
    issuer: `${base}/${tenant}/v2.0`,
    request_uri_parameter_supported: false,
    userinfo_endpoint: `${base}/oidc/userinfo`,
    authorization_endpoint: `${base}/${tenant}/oauth2/v2.0/authorize`,
    device_authorization_endpoint: `${base}/${tenant}/oauth2/v2.0/devicecode`,
    http_logout_supported: true,
    frontchannel_logout_supported: true,
    end_session_endpoint: `${base}/${tenant}/oauth2/v2.0/logout`,
    claims_supported: ["sub", "iss", "aud", "exp", "iat", "nbf", "tid", "ver"],
    tenant_region_scope: null,
    cloud_instance_name: "microsoftonline.com",
    cloud_graph_host_name: "graph.windows.net",
    msgraph_host: "graph.microsoft.com",
  };
}

async function issueToken(core: EmulatorCore, ctx: RequestContext, tenant: string): Promise<void> {
  const form = new URLSearchParams((await readBody(ctx.req)).toString("utf8"));
  const grantType = form.get("grant_type");
  if (grantType !== "client_credentials") {
    sendEntraError(ctx.res, {
      status: 400,
      error: "unsupported_grant_type",
      description: `AADSTS70003: The app requested an unsupported grant type '${grantType ?? ""}'.`,
      codes: [70003],
    });
    return;
  }
  const authenticator = CLIENT_AUTHENTICATORS.find((a) => a.applies(form, ctx.req.headers));
  if (authenticator === undefined) {
    sendEntraError(ctx.res, {
      status: 401,
      error: "invalid_client",
      description:
        "AADSTS7000216: 'client_assertion', 'client_secret' or 'request' is required for the 'client_credentials' grant type.",
      codes: [7000216],
    });
    return;
  }
  const auth = authenticator.authenticate({
    form,
    headers: ctx.req.headers,
    core,
    tokenEndpoint: `https://${ctx.host}/${tenant}/oauth2/v2.0/token`,
  });
  if (!auth.ok) {
    sendEntraError(ctx.res, auth.error);
    return;
  }
  // Tenant IDs (GUIDs, domain names) compare case-insensitively by definition (RFC 9562 §4,
  // RFC 4343). No recording shows what Entra does with a differently cased tenant in the path.
  if (tenant.toLowerCase() !== core.registration.tenantId.toLowerCase()) {
    sendEntraError(ctx.res, invalidClient());
    return;
  }
  const audience = scopeResource(form.get("scope"));
  if (audience === undefined) {
    sendEntraError(ctx.res, {
      status: 400,
      error: "invalid_scope",
      description:
        "AADSTS1002012: The provided value for scope is not valid. Client credential flows must have a scope value with /.default suffixed to the resource identifier.",
      codes: [1002012],
    });
    return;
  }
  sendJson(ctx.res, 200, {
    token_type: "Bearer",
    expires_in: TOKEN_LIFETIME_SECONDS,
    ext_expires_in: TOKEN_LIFETIME_SECONDS,
    access_token: core.tokens.issue(core.registration.tenantId, auth.clientId, audience),
  });
}

/** "https://vault.azure.net/.default openid" → "https://vault.azure.net". */
function scopeResource(scope: string | null): string | undefined {
  const resourceScope = scope?.split(/\s+/).find((s) => s.endsWith("/.default"));
  return resourceScope?.slice(0, -"/.default".length);
}

function sendEntraError(res: ServerResponse, err: EntraError): void {
  const traceId = randomUUID();
  const correlationId = randomUUID();
  const timestamp = new Date()
    .toISOString()
    .replace("T", " ")
    .replace(/\.\d+Z$/, "Z");
  sendJson(res, err.status, {
    error: err.error,
    error_description: `${err.description} Trace ID: ${traceId} Correlation ID: ${correlationId} Timestamp: ${timestamp}`,
    error_codes: err.codes,
    timestamp,
    trace_id: traceId,
    correlation_id: correlationId,
  });
}
