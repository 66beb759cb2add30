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
}

export type FaultKind = "latency" | "429" | "500" | "503" | "reset";

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
  counters(): Record<string, number>;
  resetCounters(): void;
  addFault(fault: FaultSpec): void;
  clearFaults(): void;
  createKey(spec: EmulatorKeySpec): Promise<KeyVersionRef>;
  rotateKey(name: string): Promise<KeyVersionRef>;
  updateKeyVersion(name: string, version: string, update: KeyVersionUpdate): void;
  /** Deletes the key; with purge (the default) the name is free again at once. */
  deleteKey(name: string, options?: { purge?: boolean }): void;
  close(): Promise<void>;
}
