import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  describeConfig,
  parseConfig,
  parseDuration,
  parseFlags,
  serveFlags,
  UsageError,
} from "../../../src/config/index.js";

let dir: string;
let azureJson: string;
const secret = "s3cr3t-value";

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "kvkms-config-"));
  azureJson = join(dir, "azure.json");
  // The Go plugin's docs spell it aadClientID: keys match case-insensitively.
  await writeFile(
    azureJson,
    JSON.stringify({
      cloud: "AzurePublicCloud",
      tenantId: "t",
      aadClientID: "c",
      aadClientSecret: secret,
      subscriptionId: "x",
    }),
  );
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const base = () => [
  "--keyvault-name",
  "myvault",
  "--key-name",
  "kek",
  "--config-file-path",
  azureJson,
];

async function usageError(argv: string[], env: NodeJS.ProcessEnv = {}): Promise<string> {
  try {
    await parseConfig(argv, env);
  } catch (err) {
    if (err instanceof UsageError) return err.message;
    throw err;
  }
  throw new Error("expected a UsageError");
}

describe("parseConfig", () => {
  it("applies the Go plugin's defaults", async () => {
    const c = await parseConfig(base(), {});
    expect(c.listenAddr).toBe("unix:///opt/azurekms.socket");
    expect(c.socketMode).toBe(0o600);
    expect(c.vaultUrl).toBe("https://myvault.vault.azure.net");
    expect(c.vaultHost).toBe("myvault.vault.azure.net");
    expect(c.keyVersion).toBe("");
    expect(c.cacheSize).toBe(1000);
    expect(c.statusVersion).toBe("v2");
    expect(c.authorityHost).toBe("https://login.microsoftonline.com");
    expect(c.identity).toEqual({
      kind: "client-secret",
      tenantId: "t",
      clientId: "c",
      clientSecret: secret,
    });
    expect(Object.isFrozen(c)).toBe(true);
  });

  it("accepts Go flag syntax: single dash, =value, and trims quotes like the Go plugin", async () => {
    const c = await parseConfig(
      [
        '-keyvault-name=" myvault "',
        "-key-name",
        "kek",
        '-key-version="0123abcd"',
        `-config-file-path=${azureJson}`,
        "-v=5",
        "-managed-hsm",
      ],
      {},
    );
    expect(c.vaultHost).toBe("myvault.managedhsm.azure.net");
    expect(c.keyVersion).toBe("0123abcd");
    expect(c.verbosity).toBe(5);
    expect(c.managedHsm).toBe(true);
  });

  it("builds the vault host from the cloud in azure.json", async () => {
    const china = join(dir, "china.json");
    await writeFile(
      china,
      JSON.stringify({
        cloud: "azurechinacloud",
        tenantId: "t",
        aadClientId: "c",
        aadClientSecret: "s",
      }),
    );
    const c = await parseConfig(
      ["--keyvault-name", "vv1", "--key-name", "k", "--config-file-path", china],
      {},
    );
    expect(c.vaultUrl).toBe("https://vv1.vault.azure.cn");
    expect(c.authorityHost).toBe("https://login.chinacloudapi.cn");
  });

  it("takes --keyvault-url, keeping the port in the host (it is part of the key URL)", async () => {
    const c = await parseConfig(
      [
        "--keyvault-url",
        "https://127.0.0.1:8443/",
        "--key-name",
        "k",
        "--config-file-path",
        azureJson,
      ],
      { AZURE_AUTHORITY_HOST: "https://127.0.0.1:8443" },
    );
    expect(c.vaultUrl).toBe("https://127.0.0.1:8443");
    expect(c.vaultHost).toBe("127.0.0.1:8443");
    expect(c.authorityHost).toBe("https://127.0.0.1:8443");
  });

  it.each([
    [["--key-name", "k", "--config-file-path", "AZ"], "-keyvault-name"],
    [["--keyvault-name", "v", "--key-name", "k", "--config-file-path", "AZ"], "-keyvault-name"],
    [["--keyvault-name", "myvault", "--config-file-path", "AZ"], "-key-name"],
    [
      [...["--keyvault-name", "myvault", "--key-name", "k/x", "--config-file-path", "AZ"]],
      "-key-name",
    ],
    [
      [
        "--keyvault-name",
        "myvault",
        "--keyvault-url",
        "https://x.vault.azure.net",
        "--key-name",
        "k",
        "--config-file-path",
        "AZ",
      ],
      "not both",
    ],
    [
      ["--keyvault-url", "http://x.vault.azure.net", "--key-name", "k", "--config-file-path", "AZ"],
      "https",
    ],
    [
      [
        "--keyvault-url",
        "https://x.vault.azure.net/keys",
        "--key-name",
        "k",
        "--config-file-path",
        "AZ",
      ],
      "no path",
    ],
    [
      [
        "--keyvault-name",
        "myvault",
        "--key-name",
        "k",
        "--cache-size",
        "0",
        "--config-file-path",
        "AZ",
      ],
      "-cache-size",
    ],
    [
      [
        "--keyvault-name",
        "myvault",
        "--key-name",
        "k",
        "--socket-mode",
        "rw",
        "--config-file-path",
        "AZ",
      ],
      "-socket-mode",
    ],
    [
      ["--keyvault-name", "myvault", "--key-name", "k", "--bogus", "--config-file-path", "AZ"],
      "-bogus",
    ],
    [["--keyvault-name", "myvault", "--key-name", "k", "--config-file-path"], "-config-file-path"],
    [
      [
        "--keyvault-name",
        "myvault",
        "--key-name",
        "k",
        "--config-file-path",
        "/nonexistent/azure.json",
      ],
      "/nonexistent/azure.json",
    ],
    [
      [
        "--keyvault-name",
        "myvault",
        "--key-name",
        "k",
        "--ca-file",
        "/nonexistent.pem",
        "--config-file-path",
        "AZ",
      ],
      "-ca-file",
    ],
  ])("%j is refused with a message naming %s", async (argv, needle) => {
    const message = await usageError(argv.map((a) => (a === "AZ" ? azureJson : a)));
    expect(message).toContain(needle);
  });

  it("refuses an azure.json without credentials, an unknown cloud, and non-JSON", async () => {
    const none = join(dir, "none.json");
    await writeFile(none, JSON.stringify({ tenantId: "t" }));
    expect(
      await usageError([
        "--keyvault-name",
        "myvault",
        "--key-name",
        "k",
        "--config-file-path",
        none,
      ]),
    ).toMatch(/no credentials/);
    const cloud = join(dir, "cloud.json");
    await writeFile(
      cloud,
      JSON.stringify({ cloud: "Mars", tenantId: "t", aadClientId: "c", aadClientSecret: "s" }),
    );
    expect(
      await usageError([
        "--keyvault-name",
        "myvault",
        "--key-name",
        "k",
        "--config-file-path",
        cloud,
      ]),
    ).toMatch(/unknown cloud "Mars"/);
    const bad = join(dir, "bad.json");
    await writeFile(bad, "{not json");
    expect(
      await usageError([
        "--keyvault-name",
        "myvault",
        "--key-name",
        "k",
        "--config-file-path",
        bad,
      ]),
    ).toMatch(/not valid JSON/);
  });

  it("describes the effective config without the client secret", async () => {
    const c = await parseConfig(base(), {});
    const text = JSON.stringify(describeConfig(c));
    expect(text).not.toContain(secret);
    expect(text).toContain("myvault.vault.azure.net");
  });
});

describe("flag parsing", () => {
  it("lets the last occurrence win and stops at --", () => {
    const parsed = parseFlags(
      ["--key-name", "a", "-key-name=b", "--", "--key-name", "c"],
      serveFlags,
    );
    expect(parsed.values.get("key-name")).toBe("b");
    expect(parsed.rest).toEqual(["--key-name", "c"]);
  });

  it("parses Go-style durations", () => {
    expect(parseDuration("t", "3s")).toBe(3000);
    expect(parseDuration("t", "1m30s")).toBe(90_000);
    expect(parseDuration("t", "500ms")).toBe(500);
    expect(parseDuration("t", "7d")).toBe(7 * 86_400_000);
    expect(() => parseDuration("t", "soon")).toThrow(UsageError);
  });
});
