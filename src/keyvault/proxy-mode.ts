/**
 * The Go plugin's proxy mode (its PR #119, for AKS, where the plugin runs beside kube-apiserver
 * without direct egress): Key Vault and Entra ID calls go over plain HTTP to one proxy, which
 * picks the real destination from the `x-azure-proxy-target` header.
 *
 * - Key Vault: `https://<vault host>/keys/…` → `http://<proxy>/<vault host>/keys/…`, header `KeyVault`.
 * - Entra ID: `<authority host>/<tenant>/…` → `http://<proxy>/<tenant>/…` (the authority host is
 *   replaced, as the Go plugin replaces the environment's ActiveDirectoryEndpoint), header
 *   `AzureActiveDirectory`.
 *
 * The clients keep the real https URLs (so kids, challenge checks and key_ids are unchanged); only
 * the wire request is rewritten, as the last policy before sending, and put back afterwards.
 */
import type { PipelinePolicy, PipelineRequest } from "@azure/core-rest-pipeline";

/** The shape of an SDK client's `additionalPolicies` entry (@azure/core-client). */
export interface AdditionalPolicyConfig {
  readonly policy: PipelinePolicy;
  readonly position: "perCall" | "perRetry";
}

export const proxyTargetHeader = "x-azure-proxy-target";
export type ProxyTarget = "KeyVault" | "AzureActiveDirectory";

export interface ProxyModeSettings {
  /** Host name or IP address, without scheme or port. */
  readonly address: string;
  readonly port: number;
}

/** `http://address:port`, IPv6 literals bracketed. */
export function proxyBaseUrl(settings: ProxyModeSettings): string {
  const bare = settings.address.replace(/^\[(.*)\]$/, "$1");
  const host = bare.includes(":") ? `[${bare}]` : bare;
  return `http://${host}:${settings.port}`;
}

/** `https://host:443/…` → `https://host/…`: one spelling of the same origin. */
function withoutDefaultPort(url: string): string {
  return url.replace(/^(https:\/\/[^/?#:]+|https:\/\/\[[^\]]+\]):443(?=[/?#]|$)/i, "$1");
}

/**
 * Rewrites requests whose URL starts with `upstream` (an https origin, optionally with a path) to
 * `http://proxy/` + `keepPrefix` + the rest. Other requests (e.g. IMDS) pass untouched.
 */
function rewritingPolicy(
  name: string,
  settings: ProxyModeSettings,
  target: ProxyTarget,
  upstream: string,
  keepPrefix: string,
): PipelinePolicy {
  const base = proxyBaseUrl(settings);
  const from = withoutDefaultPort(upstream.replace(/\/+$/, "")).toLowerCase();
  const matches = (url: string) =>
    url.toLowerCase() === from ||
    url.toLowerCase().startsWith(`${from}/`) ||
    url.toLowerCase().startsWith(`${from}?`);
  return {
    name,
    async sendRequest(request: PipelineRequest, next) {
      // Key Vault's nextLinks name the port: https://<vault>:443/keys/…/versions?…
      const url = withoutDefaultPort(request.url);
      if (!matches(url)) return next(request);
      const original = { url: request.url, insecure: request.allowInsecureConnection };
      const rest = url.slice(from.length);
      request.url = `${base}${keepPrefix}${rest.startsWith("/") || rest === "" ? rest : `/${rest}`}`;
      // Plain HTTP is allowed for this one request, and only toward the proxy.
      request.allowInsecureConnection = true;
      request.headers.set(proxyTargetHeader, target);
      try {
        return await next(request);
      } finally {
        // The challenge policy re-reads request.url (resource check) and retries reuse it.
        request.url = original.url;
        if (original.insecure === undefined) delete request.allowInsecureConnection;
        else request.allowInsecureConnection = original.insecure;
        request.headers.delete(proxyTargetHeader);
      }
    },
  };
}

/** For every Key Vault client (KeyClient, CryptographyClient) of `vaultHost` (`host[:port]`). */
export function keyVaultProxyPolicy(
  settings: ProxyModeSettings,
  vaultHost: string,
): AdditionalPolicyConfig {
  const host = vaultHost.toLowerCase();
  return {
    policy: rewritingPolicy(
      "keyvaultKmsProxyModeKeyVault",
      settings,
      "KeyVault",
      `https://${host}`,
      `/${host}`,
    ),
    // After authentication and retry: every attempt is rewritten, the token header kept.
    position: "perRetry",
  };
}

/** For credentials: token (and OpenID metadata) requests to the authority host. */
export function authorityProxyPolicy(
  settings: ProxyModeSettings,
  authorityHost: string,
): AdditionalPolicyConfig {
  return {
    policy: rewritingPolicy(
      "keyvaultKmsProxyModeAuthority",
      settings,
      "AzureActiveDirectory",
      authorityHost,
      "",
    ),
    position: "perRetry",
  };
}
