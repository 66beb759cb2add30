/**
 * Token endpoint failures (Entra ID, the proxy in proxy mode, or IMDS), told apart by what
 * @azure/identity and MSAL throw: no answer, a reset, a timeout, a 5xx or an answer that is not
 * OAuth is an outage (counted by the circuit breaker in resilience.ts, and retried there when there
 * was no answer); only a definite
 * OAuth refusal of the identity (invalid_client, unauthorized_client, …) is the operator's to fix.
 *
 * What the SDK throws (@azure/identity 4.14, MSAL Node), observed against the emulator:
 * - connection reset, or a try cut by the request timeout: AuthenticationRequiredError
 *   "network_error: …" caused by a ClientAuthError with errorCode "network_error";
 * - OpenID metadata unreachable: CredentialUnavailableError "endpoints_resolution_error: …";
 * - a 5xx, with an OAuth body or HTML: AuthenticationRequiredError "server_error: …" or
 *   "temporarily_unavailable: …" caused by a ServerError with that errorCode and `status`;
 * - managed identity: CredentialUnavailableError caused by the same ClientAuthError/ServerError;
 * - a refusal: AuthenticationRequiredError "invalid_client: … AADSTS7000215 …", ServerError 401.
 * MSAL's confidential clients ignore the abort signal, so a token endpoint that never answers
 * would hold the Key Vault request for ever: `guardTokenEndpoint` ends the wait on abort, and
 * `tokenTryTimeoutPolicy` bounds the HTTP request itself.
 */
import type { PipelinePolicy } from "@azure/core-rest-pipeline";
import type { AccessToken, GetTokenOptions, TokenCredential } from "@azure/identity";
import type { AdditionalPolicyConfig } from "./proxy-mode.js";

export type TokenOutageKind = "unreachable" | "timeout" | "failing";

export interface TokenOutage {
  readonly kind: TokenOutageKind;
  /** What happened, without secrets: e.g. "502, not an OAuth answer". */
  readonly detail: string;
  readonly retry: boolean;
}

/** A token endpoint outage, naming the endpoint's host. */
export class TokenEndpointError extends Error {
  override readonly name = "TokenEndpointError";

  constructor(
    readonly outage: TokenOutage,
    /** host[:port], or a description such as "IMDS"; never a URL with a tenant or query. */
    readonly endpoint: string,
    options?: { cause?: unknown },
  ) {
    super(`token endpoint ${endpoint}: ${outage.kind} (${outage.detail})`, options);
  }
}

/** One token request try may take this long, like a Key Vault try (resilience.ts). */
export const TOKEN_TRY_TIMEOUT_MS = 5_000;

const identityErrorNames: ReadonlySet<string> = new Set([
  "AuthenticationError",
  "AuthenticationRequiredError",
  "CredentialUnavailableError",
]);
const unreachableCodes: ReadonlySet<string> = new Set([
  "network_error",
  "endpoints_resolution_error",
]);
const failingCodes: ReadonlySet<string> = new Set(["server_error", "temporarily_unavailable"]);
/** What @azure/identity calls an answer that has no OAuth body (HTML from a gateway, say). */
const nonOAuthCodes: ReadonlySet<string> = new Set(["client_error", "unknown_error"]);

interface ErrorShape {
  name?: unknown;
  message?: unknown;
  cause?: unknown;
  errorCode?: unknown;
  status?: unknown;
  statusCode?: unknown;
  errorResponse?: { error?: unknown };
}

/**
 * The outage an identity error stands for, or undefined (a refusal, or not an identity error).
 * Only "no answer" is worth a retry here: the credential already retried a 5xx or 429, and MSAL
 * then holds that token request (isThrottleReplay).
 */
export function tokenOutage(err: unknown): TokenOutage | undefined {
  if (err instanceof TokenEndpointError) return err.outage;
  if (typeof err !== "object" || err === null) return undefined;
  const top = (err as ErrorShape).name;
  if (!identityErrorNames.has(String(top))) return undefined;
  // The OAuth error code and the HTTP status, from the error or its causes (MSAL's errors).
  let code: string | undefined;
  let status: number | undefined;
  let e: unknown = err;
  for (let depth = 0; depth < 4 && typeof e === "object" && e !== null; depth++) {
    const s = e as ErrorShape;
    if (isThrottleReplay(s)) {
      const detail =
        "it answered 429/5xx; the Azure SDK holds token requests for 60 s or its Retry-After";
      return { kind: "failing", detail, retry: false };
    }
    if (typeof s.errorCode === "string") code ??= s.errorCode;
    if (typeof s.errorResponse?.error === "string") code ??= s.errorResponse.error;
    const prefix = typeof s.message === "string" ? /^([a-z_]+):/.exec(s.message)?.[1] : undefined;
    if (prefix !== undefined) code ??= prefix;
    if (typeof s.status === "number") status ??= s.status;
    if (typeof s.statusCode === "number") status ??= s.statusCode;
    e = s.cause;
  }
  if (code !== undefined && unreachableCodes.has(code)) {
    const detail =
      code === "endpoints_resolution_error"
        ? "its OpenID configuration could not be read"
        : "no answer: connection refused, reset or timed out";
    return { kind: "unreachable", detail, retry: true };
  }
  const answer = status === undefined ? "" : `${status}`;
  if (code !== undefined && nonOAuthCodes.has(code)) {
    return {
      kind: "failing",
      detail: `${answer || "an answer"}, not an OAuth answer`,
      retry: false,
    };
  }
  if ((code !== undefined && failingCodes.has(code)) || (status !== undefined && status >= 500)) {
    return { kind: "failing", detail: answer || (code ?? "5xx"), retry: false };
  }
  if (status === 429 || status === 408) return { kind: "failing", detail: answer, retry: false };
  // Anything but a 4xx is not a refusal (AuthenticationError always has a status).
  if (top === "AuthenticationError" && !(status !== undefined && status >= 400 && status < 500)) {
    return { kind: "failing", detail: answer || "no status", retry: false };
  }
  return undefined;
}

/**
 * After a 429 or 5xx (or any answer with Retry-After), MSAL answers the same token request from its
 * throttling cache without sending it (msal-common ThrottlingUtils.preProcess): a ServerError whose
 * errorCode is the answer's numeric error_codes (often none) and that has no HTTP status.
 */
function isThrottleReplay(s: ErrorShape): boolean {
  return (
    s.name === "ServerError" &&
    s.status === undefined &&
    typeof s.errorCode === "string" &&
    /^[\d ]*$/.test(s.errorCode)
  );
}

/**
 * Ends a token wait when the request's signal aborts (the Key Vault try's time is up), and turns
 * outages into TokenEndpointError naming `endpoint`. Refusals pass through unchanged.
 */
export function guardTokenEndpoint(inner: TokenCredential, endpoint: string): TokenCredential {
  return {
    getToken(scopes: string | string[], options?: GetTokenOptions): Promise<AccessToken | null> {
      const attempt = inner.getToken(scopes, options).catch((err: unknown) => {
        const outage = tokenOutage(err);
        throw outage === undefined ? err : new TokenEndpointError(outage, endpoint, { cause: err });
      });
      const signal = options?.abortSignal;
      if (signal === undefined) return attempt;
      const timedOut = () =>
        new TokenEndpointError(
          { kind: "timeout", detail: "no answer before the request's time ran out", retry: true },
          endpoint,
        );
      if (signal.aborted) {
        attempt.catch(() => undefined);
        return Promise.reject(timedOut());
      }
      return new Promise((resolve, reject) => {
        const onAbort = () => {
          reject(timedOut());
        };
        signal.addEventListener("abort", onAbort, { once: true });
        attempt.then(resolve, reject).finally(() => {
          signal.removeEventListener("abort", onAbort);
        });
      });
    },
  };
}

/** Bounds every token request try, so that a silent endpoint's socket is closed, not kept. */
export function tokenTryTimeoutPolicy(ms = TOKEN_TRY_TIMEOUT_MS): AdditionalPolicyConfig {
  const policy: PipelinePolicy = {
    name: "keyvaultKmsTokenTryTimeout",
    sendRequest(request, next) {
      if (!(request.timeout > 0)) request.timeout = ms;
      return next(request);
    },
  };
  return { policy, position: "perRetry" };
}
