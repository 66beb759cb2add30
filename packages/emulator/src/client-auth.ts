import { timingSafeEqual } from "node:crypto";
import type { IncomingHttpHeaders } from "node:http";
import type { EmulatorCore } from "./context.js";

/** An OAuth error in Entra's shape. */
export interface EntraError {
  readonly status: number;
  readonly error: string;
  readonly description: string;
  readonly codes: number[];
}

export type ClientAuthResult = { ok: true; clientId: string } | { ok: false; error: EntraError };

/** What an authenticator sees of a token request. */
export interface ClientAuthRequest {
  readonly form: URLSearchParams;
  readonly headers: IncomingHttpHeaders;
  readonly core: EmulatorCore;
  /** https://HOST/TENANT/oauth2/v2.0/token as the client addressed it (assertion audience). */
  readonly tokenEndpoint: string;
}

/**
 * One way a confidential client proves itself at the token endpoint: client secrets here,
 * client assertions (certificates, federated tokens) in client-assertion.ts.
 */
export interface ClientAuthenticator {
  applies(form: URLSearchParams, headers: IncomingHttpHeaders): boolean;
  authenticate(request: ClientAuthRequest): ClientAuthResult;
}

export function invalidClient(): EntraError {
  return {
    status: 401,
    error: "invalid_client",
    description:
      "AADSTS7000215: Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app.",
    codes: [7000215],
  };
}

function sameString(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

function safeDecode(value: string): string {
  try {
    return decodeURIComponent(value);
  } catch {
    return value;
  }
}

/** client_secret_post, and client_secret_basic (HTTP Basic with id:secret). */
export const clientSecretAuthenticator: ClientAuthenticator = {
  applies(form, headers) {
    return form.has("client_secret") || /^Basic\s/i.test(headers.authorization ?? "");
  },
  authenticate({ form, headers, core }) {
    const { registration } = core;
    let clientId = form.get("client_id") ?? "";
    let secret = form.get("client_secret");
    const basic = /^Basic\s+(\S+)$/i.exec(headers.authorization ?? "")?.[1];
    if (secret === null && basic !== undefined) {
      const decoded = Buffer.from(basic, "base64").toString("utf8");
      const colon = decoded.indexOf(":");
      clientId = safeDecode(decoded.slice(0, Math.max(colon, 0)));
      secret = colon < 0 ? null : safeDecode(decoded.slice(colon + 1));
    }
    const valid =
      secret !== null &&
      sameString(clientId, registration.clientId) &&
      sameString(secret, registration.clientSecret);
    return valid ? { ok: true, clientId } : { ok: false, error: invalidClient() };
  },
};

/** An Entra refusal with its AADSTS code. */
export function entraError(
  code: number,
  message: string,
  error = "invalid_client",
  status = 401,
): EntraError {
  return { status, error, description: `AADSTS${code}: ${message}`, codes: [code] };
}
