import { readFile } from "node:fs/promises";

/** An Azure cloud (azure.json `cloud`) with the endpoints the plugin needs. */
export interface Cloud {
  readonly name: string;
  /** Entra ID (or AD FS) authority host, no trailing slash; the tenant is appended to it. */
  readonly authorityHost: string;
  readonly keyVaultSuffix: string;
  /** Token audience for Key Vault (go-autorest `resourceIdentifiers.keyVault`). */
  readonly keyVaultResource: string;
  /** Undefined where Managed HSM is not offered. */
  readonly managedHsmSuffix?: string;
  readonly managedHsmResource?: string;
  /** Set for a cloud that still parses but no longer exists: logged as a warning at start-up. */
  readonly deprecation?: string;
}

/** The variable go-autorest reads for AzureStackCloud, and we read for custom clouds too. */
export const environmentFileVariable = "AZURE_ENVIRONMENT_FILEPATH";

export class CloudError extends Error {
  override name = "CloudError";
}

const publicCloud: Cloud = {
  name: "AzurePublicCloud",
  authorityHost: "https://login.microsoftonline.com",
  keyVaultSuffix: "vault.azure.net",
  keyVaultResource: "https://vault.azure.net",
  managedHsmSuffix: "managedhsm.azure.net",
  managedHsmResource: "https://managedhsm.azure.net",
};

const builtIn: readonly Cloud[] = [
  publicCloud,
  {
    name: "AzureChinaCloud",
    authorityHost: "https://login.chinacloudapi.cn",
    keyVaultSuffix: "vault.azure.cn",
    keyVaultResource: "https://vault.azure.cn",
    // Documented by docs.azure.cn; go-autorest says N/A, so the Go plugin refuses it (a superset).
    managedHsmSuffix: "managedhsm.chinacloudapi.cn",
    managedHsmResource: "https://managedhsm.chinacloudapi.cn",
  },
  {
    // No Managed HSM suffix is documented for US Government (go-autorest: N/A): refused there.
    name: "AzureUSGovernmentCloud",
    authorityHost: "https://login.microsoftonline.us",
    keyVaultSuffix: "vault.usgovcloudapi.net",
    keyVaultResource: "https://vault.usgovcloudapi.net",
  },
  {
    // Accepted as the Go plugin accepts it (same values, same key_ids), with a warning.
    name: "AzureGermanCloud",
    authorityHost: "https://login.microsoftonline.de",
    keyVaultSuffix: "vault.microsoftazure.de",
    keyVaultResource: "https://vault.microsoftazure.de",
    deprecation:
      "AzureGermanCloud (Microsoft Cloud Deutschland) closed in October 2021; its endpoints no longer answer",
  },
];

/** go-autorest's alternative spellings. */
const aliases: Readonly<Record<string, string>> = {
  azurecloud: "azurepubliccloud",
  azureusgovernment: "azureusgovernmentcloud",
};

/** Built-in clouds by name, case-insensitively as go-autorest's EnvironmentFromName; empty = public. */
export function cloudByName(name: string): Cloud | undefined {
  const lower = name.trim().toLowerCase();
  const wanted = lower === "" ? "azurepubliccloud" : (aliases[lower] ?? lower);
  return builtIn.find((c) => c.name.toLowerCase() === wanted);
}

export const knownCloudNames: readonly string[] = [
  ...builtIn.map((c) => c.name),
  "AzureStackCloud",
];

/**
 * The cloud named in azure.json. AzureStackCloud (as go-autorest does) and any other name that is
 * not built in come from the go-autorest Environment JSON file named by AZURE_ENVIRONMENT_FILEPATH;
 * a custom name must equal the file's `name`.
 */
export async function resolveCloud(name: string, env: NodeJS.ProcessEnv): Promise<Cloud> {
  const known = cloudByName(name);
  if (known !== undefined) return known;
  const isStack = name.trim().toLowerCase() === "azurestackcloud";
  const path = (env[environmentFileVariable] ?? "").trim();
  if (path === "") {
    throw new CloudError(
      isStack
        ? `cloud "${name}" needs ${environmentFileVariable} naming its environment JSON file`
        : `unknown cloud "${name}" (known: ${knownCloudNames.join(", ")}; others need ${environmentFileVariable})`,
    );
  }
  const cloud = await cloudFromEnvironmentFile(path);
  if (!isStack && cloud.name.toLowerCase() !== name.trim().toLowerCase()) {
    throw new CloudError(
      `unknown cloud "${name}": ${path} (${environmentFileVariable}) describes "${cloud.name}"`,
    );
  }
  return cloud;
}

export async function cloudFromEnvironmentFile(path: string): Promise<Cloud> {
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? "error";
    throw new CloudError(`cannot read ${environmentFileVariable} file ${path} (${code})`);
  }
  return cloudFromEnvironmentJson(text, path);
}

type JsonObject = Record<string, unknown>;

function isObject(v: unknown): v is JsonObject {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/** Go's encoding/json matches field names case-insensitively; so do we. */
function field(obj: JsonObject, key: string, path: string): string | undefined {
  const entry = Object.entries(obj).find(([k]) => k.toLowerCase() === key.toLowerCase());
  if (entry === undefined || entry[1] === null) return undefined;
  if (typeof entry[1] !== "string") throw new CloudError(`${path}: "${key}" must be a string`);
  const value = entry[1].trim();
  // go-autorest writes "N/A" for endpoints a cloud does not offer.
  return value === "" || value === "N/A" ? undefined : value;
}

function objectField(obj: JsonObject, key: string, path: string): JsonObject {
  const entry = Object.entries(obj).find(([k]) => k.toLowerCase() === key.toLowerCase());
  if (entry === undefined || entry[1] === null) return {};
  if (!isObject(entry[1])) throw new CloudError(`${path}: "${key}" must be an object`);
  return entry[1];
}

function dnsSuffix(value: string, key: string, path: string): string {
  const suffix = value.replace(/^\./, "").toLowerCase();
  if (
    !/^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)+(:\d{1,5})?$/.test(suffix)
  ) {
    throw new CloudError(`${path}: "${key}" ${JSON.stringify(value)} is not a DNS suffix`);
  }
  return suffix;
}

function httpsUrl(value: string, key: string, path: string): string {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new CloudError(`${path}: "${key}" ${JSON.stringify(value)} is not a URL`);
  }
  if (url.protocol !== "https:") throw new CloudError(`${path}: "${key}" must use https://`);
  if (url.search !== "" || url.hash !== "" || url.username !== "") {
    throw new CloudError(`${path}: "${key}" must be a plain https:// URL`);
  }
  return url.href.replace(/\/+$/, "");
}

/** A go-autorest Environment JSON (Azure Stack Hub, or any custom cloud). */
export function cloudFromEnvironmentJson(text: string, path: string): Cloud {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw new CloudError(`${path} (${environmentFileVariable}) is not valid JSON`);
  }
  if (!isObject(parsed)) throw new CloudError(`${path} must hold a JSON object`);
  const name = field(parsed, "name", path);
  if (name === undefined) throw new CloudError(`${path}: "name" is required`);
  const ad = field(parsed, "activeDirectoryEndpoint", path);
  if (ad === undefined) throw new CloudError(`${path}: "activeDirectoryEndpoint" is required`);
  const kvSuffix = field(parsed, "keyVaultDNSSuffix", path);
  if (kvSuffix === undefined) throw new CloudError(`${path}: "keyVaultDNSSuffix" is required`);
  const keyVaultSuffix = dnsSuffix(kvSuffix, "keyVaultDNSSuffix", path);
  const ids = objectField(parsed, "resourceIdentifiers", path);
  const kvResource = field(ids, "keyVault", path);
  const hsmSuffixRaw = field(parsed, "managedHSMDNSSuffix", path);
  const hsmResource = field(ids, "managedHSM", path);
  const cloud: Cloud = {
    name,
    authorityHost: httpsUrl(ad, "activeDirectoryEndpoint", path),
    keyVaultSuffix,
    // Absent: the audience go-autorest would derive, https://<suffix>.
    keyVaultResource:
      kvResource === undefined
        ? `https://${keyVaultSuffix}`
        : httpsUrl(kvResource, "resourceIdentifiers.keyVault", path),
  };
  if (hsmSuffixRaw === undefined) return Object.freeze(cloud);
  const managedHsmSuffix = dnsSuffix(hsmSuffixRaw, "managedHSMDNSSuffix", path);
  return Object.freeze({
    ...cloud,
    managedHsmSuffix,
    managedHsmResource:
      hsmResource === undefined
        ? `https://${managedHsmSuffix}`
        : httpsUrl(hsmResource, "resourceIdentifiers.managedHSM", path),
  });
}
