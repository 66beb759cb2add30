import {
  AuthenticationError,
  AuthenticationRequiredError,
  CredentialUnavailableError,
} from "@azure/identity";
import { KmsError } from "../kms/errors.js";
import { IdentitySetupError } from "./client-certificate.js";
import { untrustedCertificate } from "./tls-trust.js";
import { TokenEndpointError, tokenOutage } from "./token-endpoint.js";

/** What a Key Vault failure looks like through @azure/core-rest-pipeline, read by shape. */
interface RestErrorLike {
  name: string;
  statusCode?: number;
  code?: string;
  details?: unknown;
}

/** Error codes of a request that never got an answer: an outage, worth a retry. */
export const networkErrorCodes: ReadonlySet<string> = new Set([
  "REQUEST_SEND_ERROR",
  "ECONNREFUSED",
  "ECONNRESET",
  "ETIMEDOUT",
  "ESOCKETTIMEDOUT",
  "ENOTFOUND",
  "EAI_AGAIN",
  "EPIPE",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "UND_ERR_SOCKET",
]);

/** Key Vault puts the specific reason (ForbiddenByRbac, KeyDisabled, …) in error.innererror.code. */
function innerCode(details: unknown): string | undefined {
  if (typeof details !== "object" || details === null) return undefined;
  const error = (
    details as { error?: { innererror?: { code?: unknown }; innerError?: { code?: unknown } } }
  ).error;
  const code = error?.innererror?.code ?? error?.innerError?.code;
  return typeof code === "string" ? code : undefined;
}

const keyStateCodes = new Set(["KeyDisabled", "KeyExpired", "KeyNotYetValid"]);

/**
 * One table from Azure SDK failures to KmsError (docs/architecture.md, "Errors → gRPC status").
 * `what` names the operation and key for the message, e.g. `unwrapKey on mykey/0123…`; Key Vault's
 * own text is kept only as the cause, for logs.
 */
export function kmsErrorFromAzure(err: unknown, what: string): KmsError {
  if (err instanceof KmsError) return err;
  // The identity cannot even ask for a token (unreadable certificate, wrong password, a
  // conflicting environment): the operator must fix the setup, and the message says what.
  if (err instanceof IdentitySetupError) {
    return new KmsError("UNAUTHENTICATED", `${what}: ${err.message}`, { cause: err });
  }
  // Checked first: the identity library and the pipeline wrap it in several ways, and each would
  // otherwise read as a generic outage ("no credential could get a token").
  const untrusted = untrustedCertificate(err);
  if (untrusted !== undefined) {
    const of = untrusted.host === undefined ? "the server" : untrusted.host;
    return new KmsError(
      "UNAVAILABLE",
      `${what}: the TLS certificate of ${of} is not trusted (${untrusted.code}); give --ca-file ` +
        "with the CA that signed it (a private CA, or the TLS-inspecting proxy's CA)",
      { cause: err },
    );
  }
  // The token endpoint's own trouble (no answer, timeout, 5xx, not OAuth) is an outage, whatever
  // error class the SDK used for it (token-endpoint.ts).
  const outage = tokenOutage(err);
  if (outage !== undefined) {
    const at = err instanceof TokenEndpointError ? err.endpoint : "the authority host";
    const reach = "check DNS, firewall, proxy (HTTPS_PROXY/NO_PROXY) toward it";
    switch (outage.kind) {
      case "unreachable":
        return new KmsError(
          "UNAVAILABLE",
          `${what}: the token endpoint is unreachable at ${at} (${outage.detail}); ${reach}`,
          { cause: err },
        );
      case "timeout":
        return new KmsError(
          "UNAVAILABLE",
          `${what}: the token endpoint did not answer in time (${at}); ${reach}`,
          { cause: err },
        );
      case "failing":
        return new KmsError(
          "UNAVAILABLE",
          `${what}: the token endpoint is failing at ${at} (${outage.detail})`,
          { cause: err },
        );
    }
  }
  // What is left of the identity errors with a status is a 4xx: a refusal.
  if (err instanceof AuthenticationError) {
    return new KmsError(
      "UNAUTHENTICATED",
      `${what}: the identity could not get a token (${err.statusCode} from the token endpoint); check azure.json credentials`,
      { cause: err },
    );
  }
  // Every MSAL failure surfaces as AuthenticationRequiredError; past the outages above, what is
  // left is an OAuth refusal of the identity (invalid_client, unauthorized_client, …).
  if (err instanceof AuthenticationRequiredError) {
    return new KmsError(
      "UNAUTHENTICATED",
      `${what}: the token endpoint refused the identity; check azure.json credentials`,
      { cause: err },
    );
  }
  if (err instanceof CredentialUnavailableError) {
    return new KmsError("UNAVAILABLE", `${what}: no credential could get a token`, { cause: err });
  }
  const e = err as RestErrorLike;
  if (e.name === "AbortError") {
    return new KmsError("DEADLINE_EXCEEDED", `${what}: Key Vault did not answer in time`, {
      cause: err,
    });
  }
  const status = typeof e.statusCode === "number" ? e.statusCode : undefined;
  const code = typeof e.code === "string" ? e.code : undefined;
  if (status === undefined) {
    if (code !== undefined && networkErrorCodes.has(code)) {
      return new KmsError("UNAVAILABLE", `${what}: Key Vault unreachable (${code})`, {
        cause: err,
      });
    }
    return new KmsError("UNAVAILABLE", `${what}: Key Vault request failed`, { cause: err });
  }
  const inner = innerCode(e.details);
  const reason = inner ?? code ?? String(status);
  if (status === 401) {
    return new KmsError(
      "UNAUTHENTICATED",
      `${what}: Key Vault rejected the token (401 ${reason})`,
      {
        cause: err,
      },
    );
  }
  if (status === 403 && inner !== undefined && keyStateCodes.has(inner)) {
    return new KmsError(
      "FAILED_PRECONDITION",
      `${what}: the key version is not usable (${inner})`,
      {
        cause: err,
      },
    );
  }
  if (status === 403 && inner === "KeyOperationForbidden") {
    return new KmsError(
      "FAILED_PRECONDITION",
      `${what}: Key Vault refused the operation on this key version (403 KeyOperationForbidden): ` +
        "its permitted operations (key_ops) must include wrapKey and unwrapKey; set them on the " +
        "version (az keyvault key set-attributes --ops) or rotate to a version that has them",
      { cause: err },
    );
  }
  if (status === 403) {
    return new KmsError("PERMISSION_DENIED", `${what}: ${forbiddenAdvice(e, reason)}`, {
      cause: err,
    });
  }
  if (status === 404) {
    return new KmsError(
      "FAILED_PRECONDITION",
      `${what}: key or key version not found in Key Vault`,
      { cause: err, refusedInput: true },
    );
  }
  if (status === 400) {
    return new KmsError(
      "INVALID_ARGUMENT",
      `${what}: Key Vault refused the input (400 ${reason})`,
      { cause: err, refusedInput: true },
    );
  }
  if (status === 429 || status >= 500 || status === 408) {
    return new KmsError("UNAVAILABLE", `${what}: Key Vault is throttling or failing (${status})`, {
      cause: err,
    });
  }
  return new KmsError("UNKNOWN", `${what}: unexpected Key Vault answer (${status})`, {
    cause: err,
  });
}

/**
 * What to grant, from Key Vault's 403: an access-policy vault names the missing permission ("does
 * not have keys list permission on key vault …", inner AccessDenied); an RBAC vault says
 * ForbiddenByRbac. The least that works: get, list, wrapKey, unwrapKey (and decrypt for data of
 * Azure/kubernetes-kms), or the role Key Vault Crypto User.
 */
function forbiddenAdvice(e: RestErrorLike, reason: string): string {
  const missing = /does not have keys (\w+) permission/i.exec(serviceMessageOf(e))?.[1];
  if (missing !== undefined) {
    return (
      `Key Vault denied the request (403 ${reason}): the vault's access policy does not give the ` +
      `identity the keys "${missing}" permission; grant get, list, wrapKey and unwrapKey ` +
      "(az keyvault set-policy --key-permissions)"
    );
  }
  return (
    `Key Vault denied the request (403 ${reason}); grant the identity wrapKey/unwrapKey/get/list ` +
    "(role Key Vault Crypto User, or an access policy with those key permissions)"
  );
}

/**
 * Key Vault's own error text: the RestError message, or, where the SDK replaced it (a failed
 * page: "Pagination failed with unexpected statusCode 400"), the response body.
 */
function serviceMessageOf(e: RestErrorLike): string {
  const { message, response } = e as { message?: unknown; response?: { bodyAsText?: unknown } };
  const body = response?.bodyAsText;
  return [message, body].filter((v): v is string => typeof v === "string").join("\n");
}

/**
 * Key Vault's authoritative "this key does not exist" (deleted, purged or never created). Only this
 * exact answer may revoke; any other 404 (a proxy, a wrong path) stays an error.
 */
export function isKeyNotFound(err: unknown): boolean {
  const e = err as RestErrorLike | null;
  return typeof e === "object" && e !== null && e.statusCode === 404 && e.code === "KeyNotFound";
}
