/**
 * The one classification of an Azure SDK failure: a Key Vault answer by HTTP status, or a request
 * that got none (network, deadline, token endpoint, identity setup, an untrusted certificate).
 * Each class says everything the plugin needs: the gRPC code it answers with, whether another try
 * may succeed, whether it counts toward the circuit breaker, and the metric outcome. errors.ts
 * words the message for a class; resilience.ts and metrics-policy.ts read their fields here.
 */
import {
  AuthenticationError,
  AuthenticationRequiredError,
  CredentialUnavailableError,
} from "@azure/identity";
import { KmsError, type KmsErrorCode } from "../kms/errors.js";
import { IdentitySetupError } from "./client-certificate.js";
import { untrustedCertificate } from "./tls-trust.js";
import { tokenOutage } from "./token-endpoint.js";

/** The metric outcome of one try (azurekms_keyvault_requests_total's `outcome`). */
export const keyVaultOutcomes = [
  "ok",
  "throttled",
  "unauthorized",
  "forbidden",
  "not_found",
  "server_error",
  "client_error",
  "network",
  "timeout",
] as const;
export type KeyVaultOutcome = (typeof keyVaultOutcomes)[number];

/** Which message errors.ts words; one per row below. */
export type FailureKind =
  // Key Vault answered
  | "token-rejected"
  | "key-state"
  | "key-operation-forbidden"
  | "forbidden"
  | "not-found"
  | "bad-input"
  | "failing"
  | "unexpected"
  // no answer
  | "plugin"
  | "untrusted-certificate"
  | "identity-setup"
  | "token-outage"
  | "identity-refused"
  | "no-credential"
  | "deadline"
  | "unreachable"
  | "request-failed";

export interface Failure {
  readonly kind: FailureKind;
  readonly code: KmsErrorCode;
  /** Another try may succeed (transient). */
  readonly retry: boolean;
  /** Counts toward opening the circuit: Key Vault or the way to it is not working. */
  readonly outage: boolean;
  /** Key Vault's quota is spent (429): it is there, so not an outage; the limiter slows down. */
  readonly throttled: boolean;
  readonly outcome: KeyVaultOutcome;
  /** Key Vault refused this input (400 for a ciphertext, 404 for a version it names): it is healthy. */
  readonly refusedInput: boolean;
  /** The HTTP status of Key Vault's answer, when the class comes from one. */
  readonly status?: number;
}

const keyStateCodes: ReadonlySet<string> = new Set(["KeyDisabled", "KeyExpired", "KeyNotYetValid"]);

/** Error codes of a request that never got an answer: an outage, worth a retry. */
const networkErrorCodes: ReadonlySet<string> = new Set([
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
const timeoutCodes: ReadonlySet<string> = new Set(["ETIMEDOUT", "ESOCKETTIMEDOUT"]);

function row(
  kind: FailureKind,
  code: KmsErrorCode,
  outcome: KeyVaultOutcome,
  flags: { retry?: boolean; outage?: boolean; throttled?: boolean; refusedInput?: boolean } = {},
): Failure {
  return {
    kind,
    code,
    outcome,
    retry: flags.retry ?? false,
    outage: flags.outage ?? false,
    throttled: flags.throttled ?? false,
    refusedInput: flags.refusedInput ?? false,
  };
}

/**
 * A Key Vault answer of `status` (400 and up); `inner` is Key Vault's error.innererror.code
 * (KeyDisabled, ForbiddenByRbac, …) where it gave one.
 */
export function classifyStatus(status: number, inner?: string): Failure {
  return { ...statusRow(status, inner), status };
}

function statusRow(status: number, inner: string | undefined): Failure {
  if (status === 400) {
    return row("bad-input", "INVALID_ARGUMENT", "client_error", { refusedInput: true });
  }
  if (status === 401) return row("token-rejected", "UNAUTHENTICATED", "unauthorized");
  if (status === 403) {
    if (inner !== undefined && keyStateCodes.has(inner)) {
      return row("key-state", "FAILED_PRECONDITION", "forbidden");
    }
    if (inner === "KeyOperationForbidden") {
      return row("key-operation-forbidden", "FAILED_PRECONDITION", "forbidden");
    }
    return row("forbidden", "PERMISSION_DENIED", "forbidden");
  }
  if (status === 404) {
    return row("not-found", "FAILED_PRECONDITION", "not_found", { refusedInput: true });
  }
  if (status === 408)
    return row("failing", "UNAVAILABLE", "timeout", { retry: true, outage: true });
  // A 429 answers for a quota, not for the service's health: it never opens the circuit.
  if (status === 429) {
    return row("failing", "UNAVAILABLE", "throttled", { retry: true, throttled: true });
  }
  // Not Implemented and HTTP Version Not Supported do not change on a retry.
  if (status === 501 || status === 505) return row("unexpected", "UNKNOWN", "server_error");
  if (status >= 500) {
    return row("failing", "UNAVAILABLE", "server_error", { retry: true, outage: true });
  }
  return row("unexpected", "UNKNOWN", "client_error");
}

/** Any failure the Azure SDK (or this plugin's own policies) throws for a Key Vault request. */
export function classifyFailure(err: unknown): Failure {
  if (err instanceof KmsError) return row("plugin", err.code, "network");
  // Before the identity errors: they wrap it in ways that would read as a generic outage.
  if (untrustedCertificate(err) !== undefined) {
    return row("untrusted-certificate", "UNAVAILABLE", "network", { outage: true });
  }
  // The identity cannot even ask for a token (unreadable certificate, wrong password, a
  // conflicting environment): the operator must fix the setup.
  if (err instanceof IdentitySetupError) return row("identity-setup", "UNAUTHENTICATED", "network");
  // The token endpoint's own trouble (no answer, timeout, 5xx, not OAuth) is an outage, whatever
  // error class the SDK used for it (token-endpoint.ts).
  const outage = tokenOutage(err);
  if (outage !== undefined) {
    return row("token-outage", "UNAVAILABLE", "network", { retry: outage.retry, outage: true });
  }
  // What is left of the identity errors is a refusal of the identity: a 4xx, or MSAL's OAuth error.
  if (err instanceof AuthenticationError || err instanceof AuthenticationRequiredError) {
    return row("identity-refused", "UNAUTHENTICATED", "network");
  }
  if (err instanceof CredentialUnavailableError) {
    return row("no-credential", "UNAVAILABLE", "network", { outage: true });
  }
  const e = (typeof err === "object" && err !== null ? err : {}) as {
    name?: unknown;
    code?: unknown;
    statusCode?: unknown;
    details?: unknown;
  };
  if (typeof e.statusCode === "number") return classifyStatus(e.statusCode, innerCode(e.details));
  if (e.name === "AbortError" || e.name === "TimeoutError") {
    return row("deadline", "DEADLINE_EXCEEDED", "timeout", { retry: true, outage: true });
  }
  const code = typeof e.code === "string" ? e.code : "";
  if (networkErrorCodes.has(code)) {
    const outcome = timeoutCodes.has(code) ? "timeout" : "network";
    return row("unreachable", "UNAVAILABLE", outcome, { retry: true, outage: true });
  }
  return row("request-failed", "UNAVAILABLE", "network", { outage: true });
}

/** Key Vault puts the specific reason (ForbiddenByRbac, KeyDisabled, …) in error.innererror.code. */
export function innerCode(details: unknown): string | undefined {
  if (typeof details !== "object" || details === null) return undefined;
  const error = (
    details as { error?: { innererror?: { code?: unknown }; innerError?: { code?: unknown } } }
  ).error;
  const code = error?.innererror?.code ?? error?.innerError?.code;
  return typeof code === "string" ? code : undefined;
}
