import type { KeyClientOptions } from "@azure/keyvault-keys";
import { createSecureContext, rootCertificates, type SecureContext } from "node:tls";
import {
  authorityProxyPolicy,
  keyVaultProxyPolicy,
  type AdditionalPolicyConfig,
  type ProxyModeSettings,
} from "./proxy-mode.js";
import {
  credentialMetricsPolicy,
  keyVaultMetricsPolicy,
  type KeyVaultCallObserver,
} from "./metrics-policy.js";
import type { ApiVersionPolicy } from "./api-version.js";
import { createResilience, type KeyVaultResilience } from "./resilience.js";
import { tokenTryTimeoutPolicy } from "./token-endpoint.js";
import { LRUCache } from "lru-cache";

export interface ClientOptionsInput {
  readonly vaultHost: string;
  /** Extra PEM CA bundle (e.g. a TLS-inspecting proxy, or the emulator's CA). */
  readonly caPem?: string;
  readonly userAgent: string;
  /** The Go plugin's `--proxy-mode`: absent = direct (HTTPS_PROXY / NO_PROXY still apply). */
  readonly proxyMode?: ProxyModeSettings;
  /** Sees every try sent to Key Vault (metrics, reachability). */
  readonly callObserver?: KeyVaultCallObserver;
  /** Retries, rate limit and circuit breaker shared by every client (default: their defaults). */
  readonly resilience?: KeyVaultResilience;
  /** The api-version every request asks for (pinned, or learned from Key Vault's 400). */
  readonly apiVersion?: ApiVersionPolicy;
}

/** Loopback hosts: an explicitly configured local endpoint, never a real vault. */
export function isLoopbackHost(host: string): boolean {
  const name = host.replace(/:\d+$/, "").replace(/^\[|\]$/g, "");
  return name === "localhost" || name === "::1" || /^127(\.\d{1,3}){3}$/.test(name);
}

/**
 * Options shared by every Key Vault client. The extra CA is added to the system roots instead of
 * replacing them (a `ca` option replaces Node's defaults). The challenge-resource check stays on
 * except for a loopback vault, whose host can never end in `.vault.azure.net`.
 */
export function keyVaultClientOptions(input: ClientOptionsInput) {
  return {
    disableChallengeResourceVerification: isLoopbackHost(input.vaultHost),
    ...tlsOptions(input.caPem),
    // The SDK's retry (1 s..64 s, and none for a 429 without Retry-After) is replaced by the
    // deadline-aware one in resilience.ts.
    retryOptions: { maxRetries: 0 },
    userAgentOptions: { userAgentPrefix: input.userAgent },
    ...policies(
      // Outermost: a retry with an older api-version is a new request to the limiter too.
      input.apiVersion?.config,
      // perCall: runs once per logical request, around the auth policy and every try.
      (input.resilience ?? createResilience()).policy,
      // First, so it times the whole try and sees the client URL, not the proxy-mode rewrite.
      input.callObserver === undefined ? undefined : keyVaultMetricsPolicy(input.callObserver),
      input.proxyMode === undefined
        ? undefined
        : keyVaultProxyPolicy(input.proxyMode, input.vaultHost),
    ),
  };
}

function policies(...configs: (AdditionalPolicyConfig | undefined)[]): {
  additionalPolicies?: AdditionalPolicyConfig[];
} {
  const list = configs.filter((c): c is AdditionalPolicyConfig => c !== undefined);
  return list.length === 0 ? {} : { additionalPolicies: list };
}

/**
 * Credential pipeline policies: each token request try is bounded in time and counted (operation
 * "token"), and in proxy mode it goes through the proxy. (ManagedIdentityCredential replaces
 * `additionalPolicies` with its own, so IMDS requests are neither bounded nor counted.)
 */
export function credentialProxyOptions(
  proxyMode: ProxyModeSettings | undefined,
  authorityHost: string,
  callObserver?: KeyVaultCallObserver,
): { additionalPolicies?: AdditionalPolicyConfig[] } {
  return policies(
    tokenTryTimeoutPolicy(),
    callObserver === undefined ? undefined : credentialMetricsPolicy(callObserver),
    proxyMode === undefined ? undefined : authorityProxyPolicy(proxyMode, authorityHost),
  );
}

/**
 * TLS settings for the SDK, which spreads them into its https.Agent. A `ca` option would make
 * Node parse every root certificate again for each new connection (≈ 10 ms of CPU on the event
 * loop and native memory that is not given back: RSS grew by hundreds of MiB in a soak with
 * reconnects), so the context is built once per CA bundle and shared by every connection.
 */
export function tlsOptions(caPem: string | undefined): { tlsOptions?: TlsSettings } {
  if (caPem === undefined) return {};
  // `secureContext` is a Node TLS option the SDK's type does not list; it reaches the agent.
  const settings: TlsSettings = {};
  return { tlsOptions: Object.assign(settings, { secureContext: sharedSecureContext(caPem) }) };
}

type TlsSettings = NonNullable<KeyClientOptions["tlsOptions"]>;

/** Bound: CA files are few and rarely change; a changed file adds one entry. */
const secureContexts = new LRUCache<string, SecureContext>({ max: 4 });

function sharedSecureContext(caPem: string): SecureContext {
  let context = secureContexts.get(caPem);
  if (context === undefined) {
    // The extra CA is added to the system roots: a `ca` option replaces Node's defaults.
    context = createSecureContext({ ca: [...rootCertificates, caPem] });
    secureContexts.set(caPem, context);
  }
  return context;
}
