/** Command lines written for the Go plugin (Azure/kubernetes-kms) start keyvault-kms unchanged. */
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseConfig, serveUsage, UsageError } from "../../../src/config/index.js";
import { parseListenAddress } from "../../../src/grpc/index.js";
import { levelFromVerbosity } from "../../../src/log/index.js";

let dir: string;
let azureJson: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "kvkms-go-cli-"));
  azureJson = join(dir, "azure.json");
  await writeFile(
    azureJson,
    JSON.stringify({
      cloud: "AzurePublicCloud",
      tenantId: "t",
      aadClientId: "c",
      aadClientSecret: "s",
    }),
  );
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function usageError(argv: string[], env: NodeJS.ProcessEnv = {}): Promise<string> {
  try {
    await parseConfig(argv, env);
  } catch (err) {
    if (err instanceof UsageError) return err.message;
    throw err;
  }
  throw new Error("expected a UsageError");
}

describe("the Go plugin's static-pod command line (docs/manual-install.md)", () => {
  const staticPod = () => [
    "--listen-addr=unix:///opt/azurekms.socket",
    "--keyvault-name=my-vault",
    "--key-name=my-key",
    "--key-version=0123456789abcdef0123456789abcdef",
    "--log-format-json=false",
    "--healthz-port=8787",
    "--healthz-path=/healthz",
    "--healthz-timeout=20s",
    "--managed-hsm=false",
    "-v=1",
    `--config-file-path=${azureJson}`,
  ];

  it("parses to the expected config", async () => {
    const c = await parseConfig(staticPod(), {});
    expect(c).toMatchObject({
      listenAddr: "unix:///opt/azurekms.socket",
      vaultUrl: "https://my-vault.vault.azure.net",
      vaultHost: "my-vault.vault.azure.net",
      goVaultUrl: "https://my-vault.vault.azure.net/",
      keyName: "my-key",
      keyVersion: "0123456789abcdef0123456789abcdef",
      managedHsm: false,
      logFormatJson: false,
      healthzPort: 8787,
      healthzPath: "/healthz",
      healthzTimeoutMs: 20_000,
      verbosity: 1,
      metricsBackend: "prometheus",
      proxyMode: false,
      proxyAddress: "",
      proxyPort: 7788,
      configFilePath: azureJson,
      authorityHost: "https://login.microsoftonline.com",
      warnings: [],
    });
    expect(c.metricsAddress.port).toBe(8095);
    expect(c.cloud.name).toBe("AzurePublicCloud");
    expect(parseListenAddress(c.listenAddr)).toBe("/opt/azurekms.socket");
  });

  it("takes every other Go flag too: deprecated -configFilePath (warned), metrics, proxy", async () => {
    const c = await parseConfig(
      [
        ...staticPod(),
        "--configFilePath=/etc/kubernetes/other.json",
        "--metrics-backend=Prometheus",
        "--metrics-addr=9095",
        "--proxy-mode",
        "--proxy-address=10.0.0.7",
        "--proxy-port",
        "7789",
      ],
      {},
    );
    // Ignored like the Go plugin does: azure.json still comes from -config-file-path.
    expect(c.configFilePath).toBe(azureJson);
    expect(c.warnings).toHaveLength(1);
    expect(c.warnings[0]).toMatch(/--configFilePath is deprecated and ignored/);
    expect(c.metricsAddress.port).toBe(9095);
    expect(c).toMatchObject({ proxyMode: true, proxyAddress: "10.0.0.7", proxyPort: 7789 });
  });

  it("accepts single-dash spellings, separate values and quoted names as the Go flag package", async () => {
    const c = await parseConfig(
      [
        "-listen-addr",
        "UNIX:///opt/azurekms.socket",
        "-keyvault-name",
        ' "My-Vault" ',
        "-key-name",
        '"my-key"',
        "-key-version",
        " abc ",
        "-config-file-path",
        azureJson,
        "-healthz-timeout",
        "1m30s",
        "-managed-hsm",
      ],
      {},
    );
    // The scheme is case-insensitive, as the Go plugin's ParseEndpoint.
    expect(parseListenAddress(c.listenAddr)).toBe("/opt/azurekms.socket");
    expect(c.vaultHost).toBe("my-vault.managedhsm.azure.net");
    // key_ids hash the vault URL as the Go plugin spells it: the name as typed.
    expect(c.goVaultUrl).toBe("https://My-Vault.managedhsm.azure.net/");
    expect(c.keyName).toBe("my-key");
    expect(c.keyVersion).toBe("abc");
    expect(c.healthzTimeoutMs).toBe(90_000);
  });

  const base = () => [
    "--keyvault-name=my-vault",
    "--key-name=k",
    `--config-file-path=${azureJson}`,
  ];

  it.each([
    [["--metrics-backend=otlp"], "-metrics-backend"],
    [["--healthz-port=70000"], "-healthz-port"],
    [["--healthz-port=-1"], "-healthz-port"],
    [["--healthz-path=healthz"], "-healthz-path"],
    [["--healthz-timeout=0"], "-healthz-timeout"],
    [["--healthz-timeout=soon"], "-healthz-timeout"],
    [["--proxy-mode"], "-proxy-address"],
    [["--proxy-mode", "--proxy-address=http://proxy"], "-proxy-address"],
    [["--proxy-mode", "--proxy-address=proxy:80"], "-proxy-address"],
    [["--proxy-port=0"], "-proxy-port"],
    [["--proxy-port=x"], "-proxy-port"],
    [["--proxy-mode=maybe"], "-proxy-mode"],
    [["-v=256"], "-v"],
    [["--keyvault_name=x"], "-keyvault_name"],
    [["--healthz-prot=1"], "-healthz-prot"],
    [["--configfilepath=/x"], "-configfilepath"],
    [["--proxy-port"], "-proxy-port"],
  ])("%j is refused naming %s", async (extra, needle) => {
    expect(await usageError([...base(), ...extra])).toContain(needle);
  });

  it("accepts proxy addresses the Go plugin would paste into a URL", async () => {
    for (const address of ["localhost", "proxy.internal", "10.1.2.3", "::1", "[fd00::1]"]) {
      const c = await parseConfig([...base(), "--proxy-mode", `--proxy-address=${address}`], {});
      expect(c.proxyAddress).toBe(address);
    }
  });

  it("documents every Go flag in --help, and says what is accepted but not served", () => {
    const help = serveUsage();
    for (const flag of [
      "listen-addr",
      "keyvault-name",
      "key-name",
      "key-version",
      "managed-hsm",
      "log-format-json",
      "v",
      "configFilePath",
      "config-file-path",
      "version",
      "healthz-port",
      "healthz-path",
      "healthz-timeout",
      "metrics-backend",
      "metrics-addr",
      "proxy-mode",
      "proxy-address",
      "proxy-port",
    ]) {
      expect(help).toContain(`  --${flag}`);
    }
    expect(help).toMatch(/configFilePath[^\n]*\n[^\n]*deprecated and ignored/);
    expect(help).toMatch(/healthz-port[^\n]*\n[^\n]*\/livez, \/readyz/);
  });
});

describe("-v levels", () => {
  // Our info level carries only start-up, key and shutdown events (the Go plugin's mlog.Always
  // class), so it shows at every -v; debug and trace follow the Go plugin's 4 and 6.
  it.each([
    [0, "info"],
    [1, "info"],
    [2, "info"],
    [3, "info"],
    [4, "debug"],
    [5, "debug"],
    [6, "trace"],
    [10, "trace"],
  ])("-v=%d logs at %s and above", (v, level) => {
    expect(levelFromVerbosity(v)).toBe(level);
  });
});
