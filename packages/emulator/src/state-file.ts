import { chmodSync, existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { CaMaterial } from "./certificates.js";
import type { PersistedDirectory } from "./directory.js";
import type { PersistedKey } from "./key-store.js";

/** state.json in the state directory: everything a restart needs. Holds secrets: mode 0600. */
export interface EmulatorState {
  format: 1;
  tenantId: string;
  clientId: string;
  clientSecret: string;
  /** base64 HMAC key for access tokens, so tokens stay valid across restarts. */
  tokenKey: string;
  ca: CaMaterial;
  keys: PersistedKey[];
  /** Client certificates and managed identities; absent in state from older emulators. */
  directory?: PersistedDirectory;
}

export interface PublicFiles {
  caFile: string;
  azureJsonFile: string;
}

const STATE_FILE = "state.json";

export function ensureStateDir(dir: string): void {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
}

export function readState(dir: string): EmulatorState | undefined {
  const file = join(dir, STATE_FILE);
  if (!existsSync(file)) return undefined;
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(file, "utf8"));
  } catch (err) {
    throw new Error(`emulator state file ${file} is not valid JSON`, { cause: err });
  }
  const state = parsed as Partial<EmulatorState> | null;
  if (state?.format !== 1 || !Array.isArray(state.keys) || state.ca === undefined) {
    throw new Error(`emulator state file ${file} has an unknown format`);
  }
  return state as EmulatorState;
}

export function writeState(dir: string, state: EmulatorState): void {
  writeAtomically(join(dir, STATE_FILE), JSON.stringify(state), 0o600);
}

/** ca.pem for clients, azure.json in the Go plugin's format (it carries the secret: 0600). */
export function writePublicFiles(dir: string, state: EmulatorState): PublicFiles {
  const caFile = join(dir, "ca.pem");
  const azureJsonFile = join(dir, "azure.json");
  writeAtomically(caFile, state.ca.certPem, 0o644);
  const azureJson = {
    cloud: "AzurePublicCloud",
    tenantId: state.tenantId,
    aadClientId: state.clientId,
    aadClientSecret: state.clientSecret,
  };
  writeAtomically(azureJsonFile, `${JSON.stringify(azureJson, null, 2)}\n`, 0o600);
  return { caFile, azureJsonFile };
}

function writeAtomically(file: string, data: string, mode: number): void {
  const tmp = `${file}.${process.pid}.tmp`;
  writeFileSync(tmp, data, { mode });
  chmodSync(tmp, mode); // the umask may have narrowed or the file pre-existed
  renameSync(tmp, file);
}
