import { AuthenticationError } from "@azure/identity";
import { KmsError } from "../kms/errors.js";
import { classifyFailure, innerCode } from "./failures.js";
import { untrustedCertificate } from "./tls-trust.js";
import { TokenEndpointError, tokenOutage } from "./token-endpoint.js";

/** What a Key Vault failure looks like through @azure/core-rest-pipeline, read by shape. */
interface RestErrorLike {
  name: string;
  statusCode?: number;
  code?: string;
  details?: unknown;
}

/**
 * An Azure SDK failure as the KmsError the plugin answers with (docs/architecture.md, "Errors →
 * gRPC status"): the class, code included, from failures.ts; here only its words. `what` names the
 * operation and key, e.g. `unwrapKey on mykey/0123…`; Key Vault's own text is kept only as the
 * cause, for logs.
 */
export function kmsErrorFromAzure(err: unknown, what: string): KmsError {
  if (err instanceof KmsError) return err;
  const failure = classifyFailure(err);
  const { code } = failure;
  const options = { cause: err, refusedInput: failure.refusedInput };
  const e = err as RestErrorLike;
  const status = typeof e.statusCode === "number" ? e.statusCode : 0;
  const reason = innerCode(e.details) ?? e.code ?? String(status);
  // Each message is written out with its KmsError, where docs/troubleshooting.md's test finds it.
  switch (failure.kind) {
    case "untrusted-certificate": {
      const untrusted = untrustedCertificate(err);
      return new KmsError(
        code,
        `${what}: the TLS certificate of ${untrusted?.host ?? "the server"} is not trusted ` +
          `(${untrusted?.code ?? "unknown"}); give --ca-file with the CA that signed it (a ` +
          "private CA, or the TLS-inspecting proxy's CA)",
        options,
      );
    }
    case "identity-setup":
      return new KmsError(code, `${what}: ${(err as Error).message}`, options);
    case "token-outage":
      return new KmsError(code, `${what}: ${tokenOutageText(err)}`, options);
    case "identity-refused":
      return err instanceof AuthenticationError
        ? new KmsError(
            code,
            `${what}: the identity could not get a token (${err.statusCode} from the token endpoint); check azure.json credentials`,
            options,
          )
        : new KmsError(
            code,
            `${what}: the token endpoint refused the identity; check azure.json credentials`,
            options,
          );
    case "no-credential":
      return new KmsError(code, `${what}: no credential could get a token`, options);
    case "deadline":
      return new KmsError(code, `${what}: Key Vault did not answer in time`, options);
    case "unreachable":
      return new KmsError(
        code,
        `${what}: Key Vault unreachable (${e.code ?? "no answer"})`,
        options,
      );
    case "request-failed":
    case "plugin":
      return new KmsError(code, `${what}: Key Vault request failed`, options);
    case "token-rejected":
      return new KmsError(code, `${what}: Key Vault rejected the token (401 ${reason})`, options);
    case "key-state":
      return new KmsError(code, `${what}: the key version is not usable (${reason})`, options);
    case "key-operation-forbidden":
      return new KmsError(
        code,
        `${what}: Key Vault refused the operation on this key version (403 KeyOperationForbidden): ` +
          "its permitted operations (key_ops) must include wrapKey and unwrapKey; set them on the " +
          "version (az keyvault key set-attributes --ops) or rotate to a version that has them",
        options,
      );
    case "forbidden":
      return new KmsError(code, `${what}: ${forbiddenAdvice(e, reason)}`, options);
    case "not-found":
      return new KmsError(code, `${what}: key or key version not found in Key Vault`, options);
    case "bad-input":
      return new KmsError(code, `${what}: Key Vault refused the input (400 ${reason})`, options);
    case "failing":
      return new KmsError(code, `${what}: Key Vault is throttling or failing (${status})`, options);
    case "unexpected":
      return new KmsError(code, `${what}: unexpected Key Vault answer (${status})`, options);
  }
}

function tokenOutageText(err: unknown): string {
  const outage = tokenOutage(err);
  const at = err instanceof TokenEndpointError ? err.endpoint : "the authority host";
  const reach = "check DNS, firewall, proxy (HTTPS_PROXY/NO_PROXY) toward it";
  switch (outage?.kind) {
    case "unreachable":
      return `the token endpoint is unreachable at ${at} (${outage.detail}); ${reach}`;
    case "timeout":
      return `the token endpoint did not answer in time (${at}); ${reach}`;
    case "failing":
    case undefined:
      return `the token endpoint is failing at ${at} (${outage?.detail ?? "no detail"})`;
  }
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
