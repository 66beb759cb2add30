/**
 * Counts every try the Azure SDK sends (Key Vault and Entra ID), by operation and outcome class,
 * and reports it to a plain callback: the metrics layer implements it, so this folder stays the
 * only importer of @azure and never sees prom-client. URLs never leave this file.
 */
import type { PipelinePolicy, PipelineRequest, PipelineResponse } from "@azure/core-rest-pipeline";
import type { AdditionalPolicyConfig } from "./proxy-mode.js";
import { classifyFailure, classifyStatus, type KeyVaultOutcome } from "./failures.js";

export const keyVaultOperations = [
  "get",
  "list",
  "wrapkey",
  "unwrapkey",
  "encrypt",
  "decrypt",
  "token",
  "other",
] as const;
export type KeyVaultOperation = (typeof keyVaultOperations)[number];

// The outcome labels belong to the one classification of failures.
export { keyVaultOutcomes, type KeyVaultOutcome } from "./failures.js";

/** Sees every try sent on the wire. Must not throw (a throw is swallowed). */
export interface KeyVaultCallObserver {
  onRequest(
    operation: KeyVaultOperation,
    outcome: KeyVaultOutcome,
    durationSeconds: number,
    /** A second or later try of the same logical request (the retry policy resent it). */
    isRetry: boolean,
  ): void;
  /** A request waited for its turn at the rate limiter ("delayed") or was refused unsent ("rejected"). */
  onRateLimited?(outcome: "delayed" | "rejected"): void;
  /** Requests per 10 s the rate limiter allows now. */
  onAllowance?(perWindow: number): void;
  /** The circuit breaker changed state: 0 closed, 1 half-open, 2 open. */
  onCircuitState?(state: 0 | 1 | 2): void;
}

const cryptoOps: ReadonlySet<string> = new Set(["wrapkey", "unwrapkey", "encrypt", "decrypt"]);

/**
 * The operation a request URL stands for. Works on the client URL and on the proxy-mode wire
 * URL (`http://proxy/<vault host>/keys/…`) alike, since it only looks after `/keys`.
 */
export function operationFromRequest(method: string, url: string): KeyVaultOperation {
  let path: string;
  try {
    path = new URL(url).pathname.toLowerCase();
  } catch {
    return "other";
  }
  if (
    path.includes("/oauth2/") ||
    path.includes("/.well-known/openid-configuration") ||
    path.includes("/metadata/identity/")
  ) {
    return "token";
  }
  const segments = path.split("/");
  const at = segments.lastIndexOf("keys");
  if (at < 0) return "other";
  const rest = segments.slice(at + 1);
  while (rest.length > 0 && rest[rest.length - 1] === "") rest.pop();
  const last = rest[rest.length - 1];
  if (method === "POST" && last !== undefined && cryptoOps.has(last)) {
    return last as KeyVaultOperation;
  }
  if (method !== "GET") return "other";
  // GET /keys, GET /keys/{name}/versions → list; GET /keys/{name}[/{version}] → get.
  if (rest.length === 0 || (rest.length === 2 && rest[1] === "versions")) return "list";
  return rest.length <= 2 ? "get" : "other";
}

export function outcomeFromStatus(status: number): KeyVaultOutcome {
  return status < 400 ? "ok" : classifyStatus(status).outcome;
}

/** A try that got no HTTP response: a deadline or abort is `timeout`, anything else `network`. */
export function outcomeFromError(error: unknown): KeyVaultOutcome {
  return classifyFailure(error).outcome;
}

export interface MetricsPolicyOptions {
  /**
   * Key Vault clients send each client's first request without a token to learn the challenge;
   * its 401 is part of authenticating, not a failure, so it is neither counted nor a "try".
   */
  readonly skipChallenge: boolean;
  readonly name: string;
}

/** Tries seen per logical request: the retry policy resends the same request object. */
const triesByRequest = new WeakMap<PipelineRequest, number>();

function isChallenge(request: PipelineRequest, response: PipelineResponse): boolean {
  return response.status === 401 && !request.headers.has("authorization");
}

/** A "perRetry" policy: runs once per try, after authentication, before the wire. */
export function metricsPolicy(
  observer: KeyVaultCallObserver,
  options: MetricsPolicyOptions,
): AdditionalPolicyConfig {
  const policy: PipelinePolicy = {
    name: options.name,
    async sendRequest(request, next) {
      const started = performance.now();
      let outcome: KeyVaultOutcome;
      let response: PipelineResponse;
      try {
        response = await next(request);
      } catch (error) {
        outcome = outcomeFromError(error);
        report(observer, request, outcome, started);
        throw error;
      }
      if (options.skipChallenge && isChallenge(request, response)) return response;
      outcome = outcomeFromStatus(response.status);
      report(observer, request, outcome, started);
      return response;
    },
  };
  return { policy, position: "perRetry" };
}

function report(
  observer: KeyVaultCallObserver,
  request: PipelineRequest,
  outcome: KeyVaultOutcome,
  started: number,
): void {
  const tries = (triesByRequest.get(request) ?? 0) + 1;
  triesByRequest.set(request, tries);
  try {
    observer.onRequest(
      operationFromRequest(request.method, request.url),
      outcome,
      (performance.now() - started) / 1000,
      tries > 1,
    );
  } catch {
    // Reporting must never change what the SDK does.
  }
}

/** For every Key Vault client (KeyClient, CryptographyClient). */
export function keyVaultMetricsPolicy(observer: KeyVaultCallObserver): AdditionalPolicyConfig {
  return metricsPolicy(observer, { name: "keyvaultKmsMetricsKeyVault", skipChallenge: true });
}

/** For credentials whose pipeline takes `additionalPolicies` (Entra ID token requests). */
export function credentialMetricsPolicy(observer: KeyVaultCallObserver): AdditionalPolicyConfig {
  return metricsPolicy(observer, { name: "keyvaultKmsMetricsToken", skipChallenge: false });
}
