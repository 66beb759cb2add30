import { readFile } from "node:fs/promises";

/** The azure.json fields the plugin reads; everything else in the file is ignored. */
export interface AzureJson {
  readonly cloud: string;
  readonly tenantId: string;
  readonly aadClientId: string;
  readonly aadClientSecret: string;
}

const fields = ["cloud", "tenantId", "aadClientId", "aadClientSecret"] as const;

export class AzureJsonError extends Error {
  override name = "AzureJsonError";
}

/** Key names match case-insensitively: the Go plugin's own docs write `aadClientID`. */
export function azureJsonFromText(text: string, path: string): AzureJson {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw new AzureJsonError(`${path} is not valid JSON`);
  }
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) {
    throw new AzureJsonError(`${path} must hold a JSON object`);
  }
  const lower = new Map<string, unknown>(
    Object.entries(parsed as Record<string, unknown>).map(([k, v]) => [k.toLowerCase(), v]),
  );
  const out: Record<string, string> = {};
  for (const field of fields) {
    const value: unknown = lower.get(field.toLowerCase());
    if (value !== undefined && typeof value !== "string") {
      throw new AzureJsonError(`${path}: "${field}" must be a string`);
    }
    out[field] = typeof value === "string" ? value.trim() : "";
  }
  return out as unknown as AzureJson;
}

export async function readAzureJson(path: string): Promise<AzureJson> {
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? "error";
    throw new AzureJsonError(`cannot read ${path} (${code}); set --config-file-path`);
  }
  return azureJsonFromText(text, path);
}
