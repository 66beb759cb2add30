/**
 * Node's codes for a server certificate it does not trust (OpenSSL's verify errors, plus Node's
 * own for a wrong host name). Behind a private CA or a TLS-inspecting proxy without --ca-file,
 * every Key Vault and token request fails with one of these.
 */
const untrustedCodes: ReadonlySet<string> = new Set([
  "UNABLE_TO_VERIFY_LEAF_SIGNATURE",
  "UNABLE_TO_GET_ISSUER_CERT",
  "UNABLE_TO_GET_ISSUER_CERT_LOCALLY",
  "SELF_SIGNED_CERT_IN_CHAIN",
  "DEPTH_ZERO_SELF_SIGNED_CERT",
  "CERT_UNTRUSTED",
  "CERT_SIGNATURE_FAILURE",
  "CERT_HAS_EXPIRED",
  "CERT_NOT_YET_VALID",
  "ERR_TLS_CERT_ALTNAME_INVALID",
]);

/**
 * The same failures as OpenSSL and Node word them, for errors that keep only the text (the
 * identity library folds a credential's failure into its own message).
 */
const untrustedMessages: readonly (readonly [RegExp, string])[] = [
  [/unable to verify the first certificate/i, "UNABLE_TO_VERIFY_LEAF_SIGNATURE"],
  [/self[- ]signed certificate in certificate chain/i, "SELF_SIGNED_CERT_IN_CHAIN"],
  [/self[- ]signed certificate/i, "DEPTH_ZERO_SELF_SIGNED_CERT"],
  [/unable to get local issuer certificate/i, "UNABLE_TO_GET_ISSUER_CERT_LOCALLY"],
  [/certificate has expired/i, "CERT_HAS_EXPIRED"],
  [/does not match certificate's altnames/i, "ERR_TLS_CERT_ALTNAME_INVALID"],
];

export interface UntrustedCertificate {
  readonly code: string;
  /** The host whose certificate failed, when the error says. */
  readonly host: string | undefined;
}

/**
 * The TLS verification failure somewhere in `err` (its code, its cause chain, or the errors of an
 * aggregate, as the identity library wraps them), or undefined.
 */
export function untrustedCertificate(err: unknown, depth = 0): UntrustedCertificate | undefined {
  if (typeof err !== "object" || err === null || depth > 6) return undefined;
  const e = err as {
    code?: unknown;
    cause?: unknown;
    errors?: unknown;
    request?: { url?: unknown };
    host?: unknown;
  };
  if (typeof e.code === "string" && untrustedCodes.has(e.code)) {
    return { code: e.code, host: hostOf(e) };
  }
  const nested = [e.cause, ...(Array.isArray(e.errors) ? (e.errors as unknown[]) : [])];
  for (const inner of nested) {
    const found = untrustedCertificate(inner, depth + 1);
    if (found !== undefined) return { code: found.code, host: found.host ?? hostOf(e) };
  }
  const message = (err as { message?: unknown }).message;
  if (typeof message !== "string") return undefined;
  const worded = untrustedMessages.find(([re]) => re.test(message));
  return worded === undefined ? undefined : { code: worded[1], host: hostOf(e) };
}

function hostOf(e: { request?: { url?: unknown }; host?: unknown }): string | undefined {
  if (typeof e.request?.url === "string") {
    try {
      return new URL(e.request.url).host;
    } catch {
      return undefined;
    }
  }
  return typeof e.host === "string" ? e.host : undefined;
}
