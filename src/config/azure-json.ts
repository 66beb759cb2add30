import { readFile } from "node:fs/promises";

/** The azure.json fields the plugin reads; everything else in the file is ignored. */
export interface AzureJson {
  /** False when no file exists at the path: identities then come from the environment. */
  readonly found: boolean;
  readonly cloud: string;
  readonly tenantId: string;
  readonly aadClientId: string;
  readonly aadClientSecret: string;
  readonly useManagedIdentityExtension: boolean;
  /** Client ID of a user-assigned managed identity; empty = system-assigned. */
  readonly userAssignedIdentityID: string;
  readonly aadClientCertPath: string;
  readonly aadClientCertPassword: string;
}

const stringFields = [
  "cloud",
  "tenantId",
  "aadClientId",
  "aadClientSecret",
  "userAssignedIdentityID",
  "aadClientCertPath",
  "aadClientCertPassword",
] as const;

export class AzureJsonError extends Error {
  override name = "AzureJsonError";
}

/** The Go plugin reads a YAML bool (JSON true/false); some generators write it as a string. */
function boolField(value: unknown, path: string, field: string): boolean {
  if (value === undefined || value === null) return false;
  if (typeof value === "boolean") return value;
  if (typeof value === "string") {
    const text = value.trim().toLowerCase();
    if (text === "true") return true;
    if (text === "false" || text === "") return false;
  }
  throw new AzureJsonError(`${path}: "${field}" must be true or false`);
}

/**
 * Where JSON.parse stopped, as a line and column. Only the position is taken from its message:
 * the rest may quote the file, and azure.json holds a client secret.
 */
function whereInvalid(text: string, err: unknown): string {
  const message = err instanceof Error ? err.message : "";
  const at = /at position (\d+)/.exec(message)?.[1];
  if (at === undefined) return /end of JSON input/.test(message) ? " (it ends too early)" : "";
  const before = text.slice(0, Number(at));
  const line = before.split("\n").length;
  const column = Number(at) - before.lastIndexOf("\n");
  return ` (line ${line}, column ${column})`;
}

/** Key names match case-insensitively: the Go plugin's own docs write `aadClientID`. */
export function azureJsonFromText(text: string, path: string): AzureJson {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (err) {
    throw new AzureJsonError(`${path} is not valid JSON${whereInvalid(text, err)}`);
  }
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) {
    throw new AzureJsonError(`${path} must hold a JSON object`);
  }
  const lower = new Map<string, unknown>(
    Object.entries(parsed as Record<string, unknown>).map(([k, v]) => [k.toLowerCase(), v]),
  );
  const out: Record<string, string | boolean> = { found: true };
  for (const field of stringFields) {
    const value: unknown = lower.get(field.toLowerCase());
    if (value !== undefined && value !== null && typeof value !== "string") {
      throw new AzureJsonError(`${path}: "${field}" must be a string`);
    }
    out[field] = typeof value === "string" ? value.trim() : "";
  }
  out["useManagedIdentityExtension"] = boolField(
    lower.get("usemanagedidentityextension"),
    path,
    "useManagedIdentityExtension",
  );
  return out as unknown as AzureJson;
}

/** No azure.json at all: every field empty, `found: false`. */
export const absentAzureJson: AzureJson = Object.freeze({
  found: false,
  cloud: "",
  tenantId: "",
  aadClientId: "",
  aadClientSecret: "",
  useManagedIdentityExtension: false,
  userAssignedIdentityID: "",
  aadClientCertPath: "",
  aadClientCertPassword: "",
});

/**
 * A missing file (ENOENT only) is not an error: workload identity and environment credentials
 * need no azure.json. Any other read failure, and invalid content, is.
 */
export async function readAzureJson(path: string): Promise<AzureJson> {
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? "error";
    if (code === "ENOENT") return absentAzureJson;
    throw new AzureJsonError(`cannot read ${path} (${code}); set --config-file-path`);
  }
  return azureJsonFromText(text, path);
}
