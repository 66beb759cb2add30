import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  AzureJsonError,
  azureJsonFromText,
  readAzureJson,
} from "../../../src/config/azure-json.js";
import { describeConfig, parseConfig, UsageError } from "../../../src/config/index.js";

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "kvkms-azjson-"));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe("azureJsonFromText", () => {
  it("reads every field the Go plugin reads, keys case-insensitively, values trimmed", () => {
    const az = azureJsonFromText(
      JSON.stringify({
        Cloud: " AzureChinaCloud ",
        TENANTID: "t",
        aadClientID: "c",
        aadclientsecret: " s ",
        UseManagedIdentityExtension: true,
        userassignedidentityid: " u ",
        AADClientCertPath: "/etc/kubernetes/cert.pfx",
        aadClientCertPassword: "p",
        subscriptionId: "ignored",
      }),
      "azure.json",
    );
    expect(az).toEqual({
      found: true,
      cloud: "AzureChinaCloud",
      tenantId: "t",
      aadClientId: "c",
      aadClientSecret: "s",
      useManagedIdentityExtension: true,
      userAssignedIdentityID: "u",
      aadClientCertPath: "/etc/kubernetes/cert.pfx",
      aadClientCertPassword: "p",
    });
  });

  it.each([
    [true, true],
    [false, false],
    ["true", true],
    [" TRUE ", true],
    ["false", false],
    ["", false],
    [null, false],
  ])("useManagedIdentityExtension %j → %j", (value, expected) => {
    const az = azureJsonFromText(JSON.stringify({ useManagedIdentityExtension: value }), "a");
    expect(az.useManagedIdentityExtension).toBe(expected);
  });

  it("refuses wrong types", () => {
    expect(() => azureJsonFromText('{"useManagedIdentityExtension": "yes"}', "a")).toThrow(
      AzureJsonError,
    );
    expect(() => azureJsonFromText('{"aadClientId": 5}', "a")).toThrow(/aadClientId/);
  });
});

describe("readAzureJson", () => {
  it("a missing file (ENOENT) is not an error: found is false", async () => {
    expect((await readAzureJson(join(dir, "nope.json"))).found).toBe(false);
  });

  it("an unreadable path or invalid content stays an error", async () => {
    await expect(readAzureJson(dir)).rejects.toThrow(/EISDIR/);
    const bad = join(dir, "bad.json");
    await writeFile(bad, "{");
    await expect(readAzureJson(bad)).rejects.toThrow(/not valid JSON/);
  });
});

describe("identity precedence (parseConfig)", () => {
  const argv = (path: string) => [
    "--keyvault-name",
    "myvault",
    "--key-name",
    "kek",
    "--config-file-path",
    path,
  ];
  let n = 0;
  async function config(azureJson: Record<string, unknown> | undefined, env = {}) {
    const path = join(dir, `azure-${(n += 1)}.json`);
    if (azureJson !== undefined) await writeFile(path, JSON.stringify(azureJson));
    return parseConfig(argv(path), env);
  }
  async function usage(azureJson: Record<string, unknown> | undefined, env = {}) {
    try {
      await config(azureJson, env);
    } catch (err) {
      if (err instanceof UsageError) return err.message;
      throw err;
    }
    throw new Error("expected a UsageError");
  }
  const sp = { tenantId: "t", aadClientId: "c" };

  it("managed identity wins over a secret and a certificate", async () => {
    const c = await config({
      ...sp,
      aadClientSecret: "s",
      aadClientCertPath: "/x.pfx",
      useManagedIdentityExtension: true,
    });
    expect(c.identity).toEqual({ kind: "managed-identity" });
    const u = await config({ useManagedIdentityExtension: "true", userAssignedIdentityID: "u" });
    expect(u.identity).toEqual({ kind: "managed-identity", clientId: "u" });
  });

  it("a client secret wins over a certificate", async () => {
    const c = await config({ ...sp, aadClientSecret: "s", aadClientCertPath: "/x.pfx" });
    expect(c.identity.kind).toBe("client-secret");
  });

  it("a certificate needs aadClientId; its password is optional", async () => {
    const c = await config({ ...sp, aadClientCertPath: "/x.pfx" });
    expect(c.identity).toEqual({
      kind: "client-certificate",
      tenantId: "t",
      clientId: "c",
      certificatePath: "/x.pfx",
      certificatePassword: "",
    });
    expect(await usage({ tenantId: "t", aadClientCertPath: "/x.pfx" })).toMatch(
      /no credentials.*"aadClientId" is missing/,
    );
    expect(await usage({ aadClientId: "c", aadClientCertPath: "/x.pfx" })).toMatch(/tenantId/);
  });

  it("an azure.json without credentials is refused even when the environment has some", async () => {
    expect(
      await usage(
        { cloud: "AzurePublicCloud" },
        { AZURE_CLIENT_ID: "c", AZURE_TENANT_ID: "t", AZURE_CLIENT_SECRET: "s" },
      ),
    ).toMatch(/no credentials provided/);
  });

  it("no azure.json: workload identity, then environment secret, then certificate", async () => {
    const base = { AZURE_CLIENT_ID: "c", AZURE_TENANT_ID: "t" };
    const all = {
      ...base,
      AZURE_FEDERATED_TOKEN_FILE: "/tok",
      AZURE_CLIENT_SECRET: "s",
      AZURE_CLIENT_CERTIFICATE_PATH: "/x.pem",
    };
    expect((await config(undefined, all)).identity).toEqual({
      kind: "workload-identity",
      tenantId: "t",
      clientId: "c",
      tokenFilePath: "/tok",
    });
    const noWi = { ...all, AZURE_FEDERATED_TOKEN_FILE: "" };
    expect((await config(undefined, noWi)).identity).toMatchObject({
      kind: "client-secret",
      source: "environment",
    });
    expect(
      (
        await config(undefined, {
          ...base,
          AZURE_CLIENT_CERTIFICATE_PATH: "/x.pem",
          AZURE_CLIENT_CERTIFICATE_PASSWORD: " p ",
        })
      ).identity,
    ).toMatchObject({ kind: "client-certificate", certificatePassword: " p " });
  });

  it("nothing at all: a UsageError naming what is missing", async () => {
    const none = await usage(undefined, {});
    expect(none).toMatch(/no azure\.json at .*azure-\d+\.json/);
    expect(none).toContain("AZURE_CLIENT_ID");
    expect(none).toContain("AZURE_TENANT_ID");
    expect(none).toContain("AZURE_FEDERATED_TOKEN_FILE");
    const partial = await usage(undefined, {
      AZURE_CLIENT_ID: "c",
      AZURE_FEDERATED_TOKEN_FILE: "/t",
    });
    expect(partial).toMatch(/missing: AZURE_TENANT_ID\)/);
  });

  it("describeConfig shows the identity, never a secret or password", async () => {
    const configs = [
      await config({ ...sp, aadClientSecret: "SECRET-1" }),
      await config({ ...sp, aadClientCertPath: "/x.pfx", aadClientCertPassword: "PASSWORD-2" }),
      await config(undefined, {
        AZURE_CLIENT_ID: "c",
        AZURE_TENANT_ID: "t",
        AZURE_CLIENT_SECRET: "SECRET-3",
      }),
      await config({ useManagedIdentityExtension: true, userAssignedIdentityID: "u" }),
    ];
    const text = configs.map((c) => JSON.stringify(describeConfig(c))).join("\n");
    expect(text).not.toMatch(/SECRET-|PASSWORD-/);
    expect(describeConfig(configs[3]!)["identity"]).toEqual({
      kind: "managed-identity",
      assignment: "user",
      clientId: "u",
    });
  });
});
