import { request } from "node:https";
import { checkServerIdentity as checkTlsIdentity, type PeerCertificate } from "node:tls";
import type { IncomingHttpHeaders } from "node:http";

export interface RawResponse {
  status: number;
  headers: IncomingHttpHeaders;
  text: string;
  json: () => unknown;
}

export interface RawTarget {
  vaultUrl: string;
  caPem: string;
}

/** Keys-API paths get api-version 7.4 unless they name one (as every SDK request does). */
function withApiVersion(path: string): string {
  if (!/^\/(keys|deletedkeys)(\/|$|\?)/.test(path)) return path;
  if (/[?&]api(-|%2D)version=/i.test(path)) return path;
  return `${path}${path.includes("?") ? "&" : "?"}api-version=7.4`;
}

/** One HTTPS request to the emulator, outside any SDK: for the wire-level checks. */
export function rawRequest(
  target: RawTarget,
  method: string,
  path: string,
  options: { headers?: Record<string, string>; body?: string | Buffer } = {},
): Promise<RawResponse> {
  const url = new URL(withApiVersion(path), target.vaultUrl);
  const headers = { ...options.headers };
  // Node frames a GET/DELETE body with neither length nor chunking unless told its length.
  if (options.body !== undefined)
    headers["content-length"] = String(Buffer.byteLength(options.body));
  return new Promise((resolve, reject) => {
    // The certificate is checked against the URL's host, not a Host header a test overrides.
    const checkServerIdentity = (_host: string, cert: PeerCertificate) =>
      checkTlsIdentity(url.hostname, cert);
    const tls = { method, ca: target.caPem, headers, agent: false, checkServerIdentity };
    const req = request(url, tls, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () => {
        const text = Buffer.concat(chunks).toString("utf8");
        resolve({
          status: res.statusCode ?? 0,
          headers: res.headers,
          text,
          json: () => JSON.parse(text) as unknown,
        });
      });
      res.on("error", reject);
    });
    req.on("error", reject);
    req.end(options.body);
  });
}

/** A client-credentials token straight from the emulator's token endpoint. */
export async function fetchToken(
  target: RawTarget & { tenantId: string; clientId: string; clientSecret: string },
  scope = "https://vault.azure.net/.default",
): Promise<string> {
  const form = new URLSearchParams({
    grant_type: "client_credentials",
    client_id: target.clientId,
    client_secret: target.clientSecret,
    scope,
  });
  const res = await rawRequest(target, "POST", `/${target.tenantId}/oauth2/v2.0/token`, {
    headers: { "content-type": "application/x-www-form-urlencoded" },
    body: form.toString(),
  });
  if (res.status !== 200) throw new Error(`token request failed: ${res.status} ${res.text}`);
  return (res.json() as { access_token: string }).access_token;
}
