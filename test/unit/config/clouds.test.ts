import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  cloudByName,
  cloudFromEnvironmentJson,
  CloudError,
  resolveCloud,
} from "../../../src/config/clouds.js";
import { parseConfig, UsageError } from "../../../src/config/index.js";
import { keyIdFromUrl } from "../../../src/kms/key-id.js";

let dir: string;
let stackFile: string;
const stackEnvironment = {
  // go-autorest's field names, in the mixed case real files use (read case-insensitively).
  Name: "AzureStackCloud",
  activeDirectoryEndpoint: "https://adfs.local.azurestack.external/adfs/",
  KeyVaultDnsSuffix: "vault.local.azurestack.external",
  resourceManagerEndpoint: "https://management.local.azurestack.external/",
  resourceIdentifiers: { keyVault: "https://vault.local.azurestack.external" },
};

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "kvkms-clouds-"));
  stackFile = join(dir, "azurestackcloud.json");
  await writeFile(stackFile, JSON.stringify(stackEnvironment));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function azureJsonFor(cloud: string): Promise<string> {
  const path = join(dir, `azure-${cloud || "empty"}.json`);
  await writeFile(
    path,
    JSON.stringify({ cloud, tenantId: "t", aadClientId: "c", aadClientSecret: "s" }),
  );
  return path;
}

describe("clouds", () => {
  // cloud name → authority host, Key Vault suffix, Managed HSM suffix (undefined: refused).
  it.each([
    ["", "https://login.microsoftonline.com", "vault.azure.net", "managedhsm.azure.net"],
    [
      "AzurePublicCloud",
      "https://login.microsoftonline.com",
      "vault.azure.net",
      "managedhsm.azure.net",
    ],
    [
      "azurepubliccloud",
      "https://login.microsoftonline.com",
      "vault.azure.net",
      "managedhsm.azure.net",
    ],
    ["AzureCloud", "https://login.microsoftonline.com", "vault.azure.net", "managedhsm.azure.net"],
    [
      "AzureChinaCloud",
      "https://login.chinacloudapi.cn",
      "vault.azure.cn",
      "managedhsm.chinacloudapi.cn",
    ],
    [
      "AzureUSGovernmentCloud",
      "https://login.microsoftonline.us",
      "vault.usgovcloudapi.net",
      undefined,
    ],
    ["AZUREUSGOVERNMENT", "https://login.microsoftonline.us", "vault.usgovcloudapi.net", undefined],
    ["AzureGermanCloud", "https://login.microsoftonline.de", "vault.microsoftazure.de", undefined],
    [
      "AzureStackCloud",
      "https://adfs.local.azurestack.external/adfs",
      "vault.local.azurestack.external",
      undefined,
    ],
  ])("%j → %s, %s, Managed HSM %s", async (name, authority, vaultSuffix, hsmSuffix) => {
    const cloud = await resolveCloud(name, { AZURE_ENVIRONMENT_FILEPATH: stackFile });
    expect(cloud.authorityHost).toBe(authority);
    expect(cloud.keyVaultSuffix).toBe(vaultSuffix);
    expect(cloud.managedHsmSuffix).toBe(hsmSuffix);
  });

  it("builds the Go plugin's vault URL per cloud, so key_ids match (its test vector too)", async () => {
    const cases: [string, boolean, string][] = [
      ["AzurePublicCloud", false, "https://kv1.vault.azure.net/"],
      ["AzurePublicCloud", true, "https://kv1.managedhsm.azure.net/"],
      ["AzureChinaCloud", false, "https://kv1.vault.azure.cn/"],
      ["AzureUSGovernmentCloud", false, "https://kv1.vault.usgovcloudapi.net/"],
      ["AzureStackCloud", false, "https://kv1.vault.local.azurestack.external/"],
    ];
    for (const [cloud, hsm, url] of cases) {
      const c = await parseConfig(
        [
          "--keyvault-name=kv1",
          "--key-name=k",
          `--managed-hsm=${hsm}`,
          `--config-file-path=${await azureJsonFor(cloud)}`,
        ],
        { AZURE_ENVIRONMENT_FILEPATH: stackFile },
      );
      expect(c.goVaultUrl).toBe(url);
      expect(`${c.vaultUrl}/`).toBe(url);
    }
    // The Go plugin's unit-test vector: vault example, key mykey, version ABCD.
    expect(keyIdFromUrl("https://example.vault.azure.net/keys/mykey/ABCD")).toBe(
      "567d783db3043fe298fe0d9eeedb0029a3815cdd4fe4b059d018c91e6acffe3b",
    );
  });

  it("refuses --managed-hsm where no Managed HSM suffix exists, saying why", async () => {
    for (const cloud of ["AzureUSGovernmentCloud", "AzureGermanCloud"]) {
      await expect(
        parseConfig(
          [
            "--keyvault-name=kv1",
            "--key-name=k",
            "--managed-hsm",
            `--config-file-path=${await azureJsonFor(cloud)}`,
          ],
          {},
        ),
      ).rejects.toThrow(new RegExp(`Managed HSM is not available in ${cloud}`));
    }
  });

  it("accepts AzureGermanCloud with a start-up warning (it closed in 2021)", async () => {
    const c = await parseConfig(
      [
        "--keyvault-name=kv1",
        "--key-name=k",
        `--config-file-path=${await azureJsonFor("AzureGermanCloud")}`,
      ],
      {},
    );
    expect(c.warnings.join("\n")).toMatch(/AzureGermanCloud.*closed/);
    expect(c.authorityHost).toBe("https://login.microsoftonline.de");
  });

  it("reads a custom cloud by the name in its environment file, and Managed HSM from it", async () => {
    const custom = join(dir, "custom.json");
    await writeFile(
      custom,
      JSON.stringify({
        name: "ContosoCloud",
        activeDirectoryEndpoint: "https://login.contoso.example/",
        keyVaultDNSSuffix: ".vault.contoso.example",
        managedHSMDNSSuffix: "managedhsm.contoso.example",
        resourceIdentifiers: { managedHSM: "https://managedhsm.contoso.example" },
      }),
    );
    const cloud = await resolveCloud("contosocloud", { AZURE_ENVIRONMENT_FILEPATH: custom });
    expect(cloud).toMatchObject({
      name: "ContosoCloud",
      authorityHost: "https://login.contoso.example",
      keyVaultSuffix: "vault.contoso.example",
      keyVaultResource: "https://vault.contoso.example",
      managedHsmSuffix: "managedhsm.contoso.example",
      managedHsmResource: "https://managedhsm.contoso.example",
    });
    await expect(
      resolveCloud("OtherCloud", { AZURE_ENVIRONMENT_FILEPATH: custom }),
    ).rejects.toThrow(/describes "ContosoCloud"/);
  });

  it.each([
    ["{", /not valid JSON/],
    ["[]", /JSON object/],
    [JSON.stringify({ activeDirectoryEndpoint: "https://a/", keyVaultDNSSuffix: "v.x" }), /"name"/],
    [JSON.stringify({ name: "S", keyVaultDNSSuffix: "v.x" }), /"activeDirectoryEndpoint"/],
    [JSON.stringify({ name: "S", activeDirectoryEndpoint: "https://a/" }), /"keyVaultDNSSuffix"/],
    [
      JSON.stringify({ name: "S", activeDirectoryEndpoint: "http://a/", keyVaultDNSSuffix: "v.x" }),
      /https/,
    ],
    [
      JSON.stringify({
        name: "S",
        activeDirectoryEndpoint: "https://a/",
        keyVaultDNSSuffix: "bad suffix",
      }),
      /not a DNS suffix/,
    ],
    [
      JSON.stringify({ name: "S", activeDirectoryEndpoint: "https://a/", keyVaultDNSSuffix: 7 }),
      /must be a string/,
    ],
  ])("refuses the environment file %s", (text, message) => {
    expect(() => cloudFromEnvironmentJson(text, "env.json")).toThrow(CloudError);
    expect(() => cloudFromEnvironmentJson(text, "env.json")).toThrow(message);
  });

  it("explains what AzureStackCloud needs, and lists known clouds for a typo", async () => {
    await expect(resolveCloud("AzureStackCloud", {})).rejects.toThrow(/AZURE_ENVIRONMENT_FILEPATH/);
    await expect(
      resolveCloud("AzureStackCloud", { AZURE_ENVIRONMENT_FILEPATH: join(dir, "missing.json") }),
    ).rejects.toThrow(/cannot read .*missing\.json \(ENOENT\)/);
    await expect(resolveCloud("AzurePublikCloud", {})).rejects.toThrow(
      /unknown cloud.*AzureChinaCloud/,
    );
    const err = await parseConfig(
      ["--keyvault-name=kv1", "--key-name=k", `--config-file-path=${await azureJsonFor("Mars")}`],
      {},
    ).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UsageError);
    expect((err as Error).message).toMatch(/unknown cloud "Mars"/);
  });

  it("keeps cloudByName for built-in clouds only", () => {
    expect(cloudByName("")?.name).toBe("AzurePublicCloud");
    expect(cloudByName("AzureStackCloud")).toBeUndefined();
  });
});
