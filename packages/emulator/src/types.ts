/** Key types the emulator can hold. oct-HSM exists only on Managed HSM in Azure. */
export type EmulatorKeyType = "RSA" | "RSA-HSM" | "oct-HSM";

export interface EmulatorKeySpec {
  name: string;
  kty: EmulatorKeyType;
  /** RSA: 2048 (default) | 3072 | 4096. oct-HSM: 256 (default) | 128 | 192. */
  size?: number;
  /** Defaults to every operation the key type supports. */
  keyOps?: string[];
  tags?: Record<string, string>;
}

export type EmulatorFlavor = "vault" | "managedhsm";

export interface EmulatorOptions {
  /** 0 or absent: a random free port. The server always binds 127.0.0.1. */
  port?: number;
  /** Writes ca.pem and azure.json here and persists CA, credentials and keys (state.json, 0600). */
  stateDir?: string;
  flavor?: EmulatorFlavor;
  tenantId?: string;
  clientId?: string;
  clientSecret?: string;
  /** Created at start unless a key of that name already exists. */
  keys?: EmulatorKeySpec[];
  /** PEM certificates registered on the emulator's app, for certificate client assertions. */
  clientCertificates?: string[];
  /** Plain-HTTP IMDS port on 127.0.0.1; 0 or absent: a random free port. */
  imdsPort?: number;
  /** api-versions the keys API accepts, oldest first (default: every published one). */
  apiVersions?: string[];
  /** Access-policy key permissions of every identity (default: all), e.g. ["get", "list"]. */
  keyPermissions?: string[];
  /**
   * Managed identities IMDS serves. Default: a system-assigned identity, no user-assigned ones.
   * Client IDs of user-assigned identities are registered (and created) as given.
   */
  managedIdentities?: { systemAssigned?: boolean; userAssigned?: string[] };
}

export interface FederatedTokenOptions {
  /** e.g. system:serviceaccount:kube-system:keyvault-kms */
  subject: string;
  /** Default api://AzureADTokenExchange; any other is refused at the token endpoint. */
  audience?: string;
  /** Default 3600; zero or negative gives an expired token. */
  lifetimeSeconds?: number;
  /** Also write the token to this file (as the kubelet projects it). */
  file?: string;
}

export interface ClientCertificateOptions {
  /** File names NAME.pem and NAME.pfx; default "client". */
  name?: string;
  /** PFX password; "" (the default) makes a password-less PFX. */
  password?: string;
  /** Default: the state dir (required when the emulator has none). */
  dir?: string;
  /** Register it on the emulator's app (default true); false makes an "unknown" certificate. */
  register?: boolean;
}

export interface ClientCertificateInfo {
  readonly certPem: string;
  readonly keyPem: string;
  readonly x5tS256: string;
  /** Private key then certificate, unencrypted. */
  readonly pemFile: string;
  /** PKCS#12, protected by `password` ("" = none). */
  readonly pfxFile: string;
  readonly password: string;
}

/**
 * "emptyPage" (list only): a page with no items and a nextLink, as real vaults send.
 * "quota": the real 429 to requests beyond `limit` per `windowSeconds` (default 10), until cleared.
 */
export type FaultKind =
  "latency" | "429" | "500" | "503" | "reset" | "hang" | "html502" | "emptyPage" | "quota";

export interface FaultSpec {
  /** An operation name (see counters) or "*" for every operation. */
  operation: string;
  kind: FaultKind;
  /** How many requests it hits; absent = until cleared. */
  count?: number;
  /** Delay for "latency". */
  ms?: number;
  /** Seconds for the Retry-After header; no header when absent. */
  retryAfter?: number;
  /** quota: requests let through per window. */
  limit?: number;
  /** quota: the window, in seconds (default 10, as Key Vault's). */
  windowSeconds?: number;
}

export interface KeyVersionRef {
  /** https://127.0.0.1:PORT/keys/NAME/VERSION */
  kid: string;
  version: string;
}

export interface KeyVersionUpdate {
  enabled?: boolean;
  /** Unix seconds; null clears. */
  nbf?: number | null;
  exp?: number | null;
  /** Replaces the version's permitted operations. */
  keyOps?: string[];
}

export interface Emulator {
  readonly vaultUrl: string;
  readonly authorityHost: string;
  readonly port: number;
  readonly flavor: EmulatorFlavor;
  readonly tenantId: string;
  readonly clientId: string;
  readonly clientSecret: string;
  readonly caPem: string;
  readonly caFile?: string;
  readonly azureJsonFile?: string;
  /** Base URL of the plain-HTTP IMDS (set AZURE_POD_IDENTITY_AUTHORITY_HOST to it). */
  readonly imdsUrl: string;
  /** Client ID of the system-assigned managed identity, if there is one. */
  readonly systemAssignedClientId: string | undefined;
  /** Registers a user-assigned managed identity; returns its client ID (random when absent). */
  addUserAssignedIdentity(clientId?: string): string;
  /** Registers a PEM certificate on an app (default: the emulator's client ID). */
  registerClientCertificate(certPem: string, clientId?: string): void;
  /** Generates an RSA key and a self-signed certificate, writes PEM and PKCS#12, registers it. */
  createClientCertificate(options?: ClientCertificateOptions): Promise<ClientCertificateInfo>;
  /** A service account token the token endpoint accepts as a federated client assertion. */
  issueFederatedToken(options: FederatedTokenOptions): string;
  counters(): Record<string, number>;
  resetCounters(): void;
  /** Test-only: the last (up to 100) access tokens issued, oldest first. */
  issuedTokens(): string[];
  addFault(fault: FaultSpec): void;
  clearFaults(): void;
  /** Per quota fault, what each window served and refused (429). */
  quotaUsage(): {
    spec: FaultSpec;
    windows: { startMs: number; served: number; refused: number }[];
  }[];
  /** Replaces the access policy's key permissions; undefined restores all. */
  setKeyPermissions(permissions: string[] | undefined): void;
  createKey(spec: EmulatorKeySpec): Promise<KeyVersionRef>;
  rotateKey(name: string): Promise<KeyVersionRef>;
  updateKeyVersion(name: string, version: string, update: KeyVersionUpdate): void;
  /** Deletes the key; with purge (the default) the name is free again at once. */
  deleteKey(name: string, options?: { purge?: boolean }): void;
  close(): Promise<void>;
}
