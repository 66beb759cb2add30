import { ClientSecretCredential, type TokenCredential } from "@azure/identity";
import { tlsOptions } from "./client-options.js";

export interface ClientSecretSettings {
  readonly kind: "client-secret";
  readonly tenantId: string;
  readonly clientId: string;
  readonly clientSecret: string;
}

export type IdentitySettings = ClientSecretSettings;

export interface CredentialInput {
  readonly identity: IdentitySettings;
  readonly authorityHost: string;
  readonly caPem?: string;
}

/**
 * Instance discovery is off: it is an extra call to the public cloud's discovery endpoint that a
 * known authority host does not need, and it cannot work for sovereign, private or emulated clouds.
 */
export function createCredential(input: CredentialInput): TokenCredential {
  const common = {
    authorityHost: input.authorityHost,
    disableInstanceDiscovery: true,
    // Like the Key Vault clients: short retries, so a failure surfaces within the caller's deadline.
    retryOptions: { maxRetries: 2, retryDelayInMs: 100, maxRetryDelayInMs: 1000 },
    ...tlsOptions(input.caPem),
  };
  const { identity } = input;
  return new ClientSecretCredential(
    identity.tenantId,
    identity.clientId,
    identity.clientSecret,
    common,
  );
}

/** For the startup log: which identity is in use, never a secret. */
export function describeIdentity(identity: IdentitySettings): string {
  return `service principal ${identity.clientId} (client secret) in tenant ${identity.tenantId}`;
}
