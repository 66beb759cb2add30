import { stat } from "node:fs/promises";
import {
  ClientCertificateCredential,
  ClientSecretCredential,
  ManagedIdentityCredential,
  WorkloadIdentityCredential,
  type AccessToken,
  type GetTokenOptions,
  type TokenCredential,
} from "@azure/identity";
import {
  ClientCertificateError,
  IdentitySetupError,
  loadClientCertificate,
} from "./client-certificate.js";
import { credentialProxyOptions, tlsOptions } from "./client-options.js";
import type { KeyVaultCallObserver } from "./metrics-policy.js";
import { proxyBaseUrl, type ProxyModeSettings } from "./proxy-mode.js";
import { guardTokenEndpoint } from "./token-endpoint.js";

export { ClientCertificateError, IdentitySetupError } from "./client-certificate.js";

export interface ClientSecretSettings {
  readonly kind: "client-secret";
  readonly tenantId: string;
  readonly clientId: string;
  readonly clientSecret: string;
  readonly source?: "environment";
}

export interface ClientCertificateSettings {
  readonly kind: "client-certificate";
  readonly tenantId: string;
  readonly clientId: string;
  /** PKCS#12 or PEM (key + certificate); read at token time, so a rotated file is picked up. */
  readonly certificatePath: string;
  readonly certificatePassword: string;
  readonly source?: "environment";
}

export interface ManagedIdentitySettings {
  readonly kind: "managed-identity";
  /** A user-assigned identity's client ID; absent = system-assigned. */
  readonly clientId?: string;
}

export interface WorkloadIdentitySettings {
  readonly kind: "workload-identity";
  readonly tenantId: string;
  readonly clientId: string;
  readonly tokenFilePath: string;
}

export type IdentitySettings =
  | ClientSecretSettings
  | ClientCertificateSettings
  | ManagedIdentitySettings
  | WorkloadIdentitySettings;

export interface CredentialInput {
  readonly identity: IdentitySettings;
  readonly authorityHost: string;
  readonly caPem?: string;
  /** The Go plugin's proxy mode: Entra ID token requests go to the proxy (IMDS never does). */
  readonly proxyMode?: ProxyModeSettings;
  /** Sees every token request try (operation "token"). */
  readonly callObserver?: KeyVaultCallObserver;
}

// Short retries of their own, so a failure surfaces within the caller's deadline. They must come
// before MSAL sees a 5xx or 429: MSAL then refuses to ask again for 60 s (or the Retry-After), so
// resilience.ts retries only the outages MSAL does not hold (no answer, timeout).
const retryOptions = { maxRetries: 2, retryDelayInMs: 100, maxRetryDelayInMs: 1000 };

/**
 * Instance discovery is off: it is an extra call to the public cloud's discovery endpoint that a
 * known authority host does not need, and it cannot work for sovereign, private or emulated clouds.
 */
export function createCredential(input: CredentialInput): TokenCredential {
  const { identity } = input;
  const credential = createSdkCredential(input);
  if (identity.kind === "managed-identity") return guardTokenEndpoint(credential, "IMDS");
  const endpoint =
    input.proxyMode === undefined
      ? new URL(input.authorityHost).host
      : `${new URL(proxyBaseUrl(input.proxyMode)).host} (proxy mode)`;
  return guardTokenEndpoint(new TenantSpellingCredential(credential, identity.tenantId), endpoint);
}

function createSdkCredential(input: CredentialInput): TokenCredential {
  const entra = {
    authorityHost: input.authorityHost,
    disableInstanceDiscovery: true,
    retryOptions,
    ...tlsOptions(input.caPem),
    ...credentialProxyOptions(input.proxyMode, input.authorityHost, input.callObserver),
  };
  const { identity } = input;
  switch (identity.kind) {
    case "client-secret":
      return new ClientSecretCredential(
        identity.tenantId,
        identity.clientId,
        identity.clientSecret,
        entra,
      );
    case "client-certificate":
      return new CertificateFileCredential(identity, entra);
    case "workload-identity":
      // Every setting explicit: the SDK would otherwise fill gaps from AZURE_* variables.
      return new WorkloadIdentityCredential({
        ...entra,
        tenantId: identity.tenantId,
        clientId: identity.clientId,
        tokenFilePath: identity.tokenFilePath,
      });
    case "managed-identity":
      return new ImdsOnlyCredential(
        new ManagedIdentityCredential({
          ...(identity.clientId === undefined ? {} : { clientId: identity.clientId }),
          retryOptions: { maxRetries: retryOptions.maxRetries },
        }),
      );
  }
}

/**
 * Key Vault's challenge names the vault's tenant in lower case, and @azure/identity compares it
 * with the configured tenant case-sensitively (processMultiTenantRequest), so an upper-case
 * tenantId was refused. Tenant IDs are case-insensitive (Azure/azure-sdk-for-net#51693): a
 * challenge for the configured tenant in another spelling asks for the configured spelling.
 */
class TenantSpellingCredential implements TokenCredential {
  constructor(
    private readonly inner: TokenCredential,
    private readonly tenantId: string,
  ) {}

  getToken(scopes: string | string[], options?: GetTokenOptions): Promise<AccessToken | null> {
    const asked = options?.tenantId;
    if (asked === undefined || asked.toLowerCase() !== this.tenantId.toLowerCase()) {
      return this.inner.getToken(scopes, options);
    }
    return this.inner.getToken(scopes, { ...options, tenantId: this.tenantId });
  }
}

/**
 * Reads the certificate file (PKCS#12 or PEM) itself, since the SDK takes only PEM, and again
 * whenever the file changes, so a renewed certificate is used without a restart.
 */
class CertificateFileCredential implements TokenCredential {
  private current: { stamp: string; credential: ClientCertificateCredential } | undefined;

  constructor(
    private readonly identity: ClientCertificateSettings,
    private readonly options: ConstructorParameters<typeof ClientCertificateCredential>[3],
  ) {}

  async getToken(
    scopes: string | string[],
    options?: GetTokenOptions,
  ): Promise<AccessToken | null> {
    return (await this.credential()).getToken(scopes, options);
  }

  private async credential(): Promise<ClientCertificateCredential> {
    const { certificatePath, certificatePassword, tenantId, clientId } = this.identity;
    let stamp: string;
    try {
      const s = await stat(certificatePath);
      stamp = `${s.ino}:${s.size}:${s.mtimeMs}`;
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code ?? "error";
      throw new ClientCertificateError(
        `cannot read the client certificate ${certificatePath} (${code})`,
      );
    }
    if (this.current?.stamp === stamp) return this.current.credential;
    const certificate = await loadClientCertificate(certificatePath, certificatePassword);
    const credential = new ClientCertificateCredential(
      tenantId,
      clientId,
      { certificate },
      this.options,
    );
    this.current = { stamp, credential };
    return credential;
  }
}

const takeoverVars = ["AZURE_FEDERATED_TOKEN_FILE", "AZURE_CLIENT_ID", "AZURE_TENANT_ID"];

/**
 * ManagedIdentityCredential switches to workload identity by itself when the three AZURE_*
 * variables are set (read at token time). The configuration asked for IMDS: refuse instead of
 * logging in as someone else. (parseConfig refuses this too; this covers a changed environment.)
 */
class ImdsOnlyCredential implements TokenCredential {
  constructor(private readonly inner: ManagedIdentityCredential) {}

  getToken(scopes: string | string[], options?: GetTokenOptions): Promise<AccessToken | null> {
    if (takeoverVars.every((name) => (process.env[name] ?? "") !== "")) {
      return Promise.reject(
        new IdentitySetupError(
          `managed identity is configured, but ${takeoverVars.join(", ")} are set and would make the Azure SDK use workload identity; unset them`,
        ),
      );
    }
    return this.inner.getToken(scopes, options);
  }
}

/** For the startup log: which identity is in use, never a secret. */
export function describeIdentity(identity: IdentitySettings): string {
  switch (identity.kind) {
    case "client-secret":
      return `service principal ${identity.clientId} (client secret from ${identity.source ?? "azure.json"}) in tenant ${identity.tenantId}`;
    case "client-certificate":
      return `service principal ${identity.clientId} (client certificate ${identity.certificatePath} from ${identity.source ?? "azure.json"}) in tenant ${identity.tenantId}`;
    case "managed-identity":
      return identity.clientId === undefined
        ? "system-assigned managed identity (IMDS)"
        : `user-assigned managed identity ${identity.clientId} (IMDS)`;
    case "workload-identity":
      return `workload identity: client ${identity.clientId} in tenant ${identity.tenantId}, federated token from ${identity.tokenFilePath}`;
  }
}
