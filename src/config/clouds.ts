/** Azure clouds the plugin knows by name (azure.json `cloud`), with their endpoints. */
export interface Cloud {
  readonly name: string;
  readonly authorityHost: string;
  readonly keyVaultSuffix: string;
  /** Undefined where Managed HSM is not offered. */
  readonly managedHsmSuffix?: string;
}

const clouds: readonly Cloud[] = [
  {
    name: "AzurePublicCloud",
    authorityHost: "https://login.microsoftonline.com",
    keyVaultSuffix: "vault.azure.net",
    managedHsmSuffix: "managedhsm.azure.net",
  },
  {
    name: "AzureChinaCloud",
    authorityHost: "https://login.chinacloudapi.cn",
    keyVaultSuffix: "vault.azure.cn",
    managedHsmSuffix: "managedhsm.chinacloudapi.cn",
  },
  {
    name: "AzureUSGovernmentCloud",
    authorityHost: "https://login.microsoftonline.us",
    keyVaultSuffix: "vault.usgovcloudapi.net",
  },
];

/** Names match case-insensitively, as go-autorest's EnvironmentFromName does; empty = public. */
export function cloudByName(name: string): Cloud | undefined {
  const wanted = name === "" ? "azurepubliccloud" : name.toLowerCase();
  return clouds.find((c) => c.name.toLowerCase() === wanted);
}

export const knownCloudNames: readonly string[] = clouds.map((c) => c.name);
