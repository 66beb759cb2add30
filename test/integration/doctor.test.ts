/** `keyvault-kms doctor` as operators run it: the built CLI against an emulator. */
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { createServer, type Server } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createEmulator, type Emulator } from "@keyvault-kms/emulator";
import { runCli, type CliRun } from "../helpers/cli-process.js";

let dir: string;
let emu: Emulator;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "kvkms-doctor-"));
  emu = await createEmulator({
    stateDir: join(dir, "emulator"),
    keys: [{ name: "kek", kty: "RSA" }],
  });
});
afterAll(async () => {
  await emu.close();
  await rm(dir, { recursive: true, force: true });
});

function args(overrides: Record<string, string> = {}): string[] {
  const flags: Record<string, string> = {
    "--keyvault-url": emu.vaultUrl,
    "--key-name": "kek",
    "--config-file-path": emu.azureJsonFile ?? "",
    "--ca-file": emu.caFile ?? "",
    "--listen-addr": `unix://${join(dir, "kms.sock")}`,
    ...overrides,
  };
  return ["doctor", ...Object.entries(flags).flat()];
}

function doctor(overrides: Record<string, string> = {}): Promise<CliRun> {
  return runCli(args(overrides), {
    env: { AZURE_AUTHORITY_HOST: emu.authorityHost },
    timeoutMs: 60_000,
  });
}

/** The verdict line of one check, and the fix line after it (if any). */
function verdict(run: CliRun, check: string): { line: string; fix: string | undefined } {
  const lines = run.stdout.trimEnd().split("\n");
  const at = lines.findIndex((l) => new RegExp(`^\\S+\\s+${check}\\s`).test(l));
  if (at < 0) throw new Error(`no "${check}" line in:\n${run.stdout}`);
  const next = lines[at + 1];
  return { line: lines[at] ?? "", fix: next?.trim().startsWith("fix:") ? next.trim() : undefined };
}

const checks = ["config", "socket", "token", "key", "round-trip", "clock-skew", "key-expiry"];

describe("keyvault-kms doctor", () => {
  it("prints one ok line per check and exits 0 for a working setup", async () => {
    const run = await doctor();
    expect(run.stderr).toContain("all 7 checks passed");
    expect(run.code).toBe(0);
    const lines = run.stdout.trimEnd().split("\n");
    expect(lines).toHaveLength(checks.length);
    lines.forEach((line, i) => {
      expect(line).toMatch(new RegExp(`^ok\\s+${checks[i] ?? ""}\\s`));
    });
    expect(run.stdout).toContain("service principal");
    // Never a secret, in any line.
    expect(run.stdout + run.stderr).not.toContain(emu.clientSecret);
  });

  it("names a wrong client secret with its fix", async () => {
    const azureJson = JSON.parse(await readFile(emu.azureJsonFile ?? "", "utf8")) as Record<
      string,
      unknown
    >;
    const bad = join(dir, "wrong-secret.json");
    await writeFile(bad, JSON.stringify({ ...azureJson, aadClientSecret: "not-the-secret" }));
    const run = await doctor({ "--config-file-path": bad });
    expect(run.code).toBe(1);
    const token = verdict(run, "token");
    expect(token.line).toMatch(/^FAIL\s+token\s+the token endpoint refused the identity/);
    expect(token.fix).toContain("check aadClientId/aadClientSecret in azure.json");
    expect(verdict(run, "key").line).toMatch(/^skip/);
    expect(run.stdout).not.toContain("not-the-secret");
  });

  it("names a missing key with its fix", async () => {
    const run = await doctor({ "--key-name": "nope" });
    expect(run.code).toBe(1);
    const key = verdict(run, "key");
    expect(key.line).toMatch(/^FAIL\s+key\s+key nope not found/);
    expect(key.fix).toMatch(/az keyvault key create .*--name nope/);
    expect(verdict(run, "token").line).toMatch(/^ok/);
  });

  it("fails when the only version is disabled: enable a version or create one", async () => {
    const ref = await emu.createKey({ name: "solo", kty: "RSA" });
    emu.updateKeyVersion("solo", ref.version, { enabled: false });
    const run = await doctor({ "--key-name": "solo" });
    expect(run.code).toBe(1);
    const key = verdict(run, "key");
    expect(key.line).toMatch(/^FAIL\s+key\s+key solo has no usable version/);
    expect(key.line).toContain(ref.version);
    expect(key.fix).toMatch(/enable a version or create one/);
  });

  it("warns naming a disabled newest version while an older one is usable", async () => {
    const first = await emu.createKey({ name: "pair", kty: "RSA" });
    // Key Vault's `created` has one-second resolution: make the second version clearly newer.
    await new Promise((resolve) => setTimeout(resolve, 1100));
    const second = await emu.rotateKey("pair");
    emu.updateKeyVersion("pair", second.version, { enabled: false });
    const run = await doctor({ "--key-name": "pair" });
    expect(run.code).toBe(0);
    const key = verdict(run, "key");
    expect(key.line).toMatch(/^warn\s+key\s/);
    expect(key.line).toContain(`${second.version}, is disabled`);
    expect(key.line).toContain(`plugin uses ${first.version}`);
    expect(verdict(run, "round-trip").line).toMatch(/^ok/);
  });

  it("warns when the identity may not list the key's versions, and names the permission", async () => {
    emu.setKeyPermissions(["get", "wrapKey", "unwrapKey"]);
    try {
      const run = await doctor();
      expect(run.code).toBe(0);
      const key = verdict(run, "key");
      expect(key.line).toMatch(/^warn\s+key\s+key kek: current version/);
      expect(key.line).toContain('no "list" permission');
      expect(key.fix).toContain('keys "list" permission');
      expect(verdict(run, "round-trip").line).toMatch(/^ok/);
    } finally {
      emu.setKeyPermissions(undefined);
    }
  });

  it("warns when the current version expires within 30 days", async () => {
    const ref = await emu.createKey({ name: "expiring", kty: "RSA" });
    emu.updateKeyVersion("expiring", ref.version, {
      exp: Math.floor(Date.now() / 1000) + 10 * 86_400,
    });
    const run = await doctor({ "--key-name": "expiring" });
    expect(run.code).toBe(0);
    const expiry = verdict(run, "key-expiry");
    expect(expiry.line).toMatch(/^warn\s+key-expiry\s+version \S+ expires \d{4}-/);
    expect(expiry.fix).toContain("rotation-policy");
  });

  it("passes against a Managed HSM, whose answers carry no Date header", async () => {
    const hsmDir = await mkdtemp(join(tmpdir(), "kvkms-doctor-hsm-"));
    const hsm = await createEmulator({
      stateDir: join(hsmDir, "emulator"),
      flavor: "managedhsm",
      keys: [{ name: "aes", kty: "oct-HSM" }],
    });
    try {
      const run = await runCli(
        [
          "doctor",
          "--keyvault-url",
          hsm.vaultUrl,
          "--managed-hsm",
          "--key-name",
          "aes",
          "--config-file-path",
          hsm.azureJsonFile ?? "",
          "--ca-file",
          hsm.caFile ?? "",
          "--listen-addr",
          `unix://${join(hsmDir, "kms.sock")}`,
        ],
        { env: { AZURE_AUTHORITY_HOST: hsm.authorityHost }, timeoutMs: 60_000 },
      );
      expect(verdict(run, "clock-skew").line).toMatch(
        /^ok\s+clock-skew\s+not measured: Managed HSM/,
      );
      expect(run.code).toBe(0);
    } finally {
      await hsm.close();
      await rm(hsmDir, { recursive: true, force: true });
    }
  });

  it("names an unreachable vault with its fix", async () => {
    const run = await doctor({ "--keyvault-url": "https://127.0.0.1:1" });
    expect(run.code).toBe(1);
    const key = verdict(run, "key");
    expect(key.line).toMatch(/^FAIL\s+key\s.*unreachable/);
    expect(key.fix).toMatch(/reachable from this node/);
  });

  it("names a missing socket directory with its fix", async () => {
    const missing = join(dir, "no-such-dir");
    const run = await doctor({ "--listen-addr": `unix://${join(missing, "kms.sock")}` });
    expect(run.code).toBe(1);
    const socket = verdict(run, "socket");
    expect(socket.line).toMatch(/^FAIL\s+socket\s+socket directory .* does not exist/);
    expect(socket.fix).toContain(`mkdir -p ${missing}`);
    // The Key Vault checks still run: they do not depend on the socket.
    expect(verdict(run, "round-trip").line).toMatch(/^ok/);
  });

  it("refuses an abstract socket and warns about a live one", async () => {
    const abstract = await doctor({ "--listen-addr": "unix:///@kms" });
    expect(abstract.code).toBe(1);
    expect(verdict(abstract, "socket").line).toMatch(/^FAIL\s+socket\s.*abstract/);

    const path = join(dir, "live.sock");
    const server: Server = createServer((s) => s.destroy());
    await new Promise<void>((resolve) => server.listen(path, resolve));
    try {
      const live = await doctor({ "--listen-addr": `unix://${path}` });
      expect(verdict(live, "socket").line).toMatch(/^warn\s+socket\s.*already serving here/);
      expect(live.code).toBe(0);
    } finally {
      await new Promise((resolve) => server.close(resolve));
    }
  });

  it("reports a config problem as a failed check (exit 1), an unparsable flag as usage (exit 2)", async () => {
    const noAzureJson = await runCli(
      [...args({ "--config-file-path": join(dir, "absent.json") })],
      { env: { AZURE_CLIENT_ID: "", AZURE_TENANT_ID: "", AZURE_CLIENT_SECRET: "" } },
    );
    expect(noAzureJson.code).toBe(1);
    expect(verdict(noAzureJson, "config").line).toMatch(/^FAIL\s+config\s/);
    expect(verdict(noAzureJson, "config").fix).toBeDefined();

    const bad = await runCli(["doctor", "--no-such-flag"]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain("unknown flag: --no-such-flag");
    expect(bad.stdout).toBe("");
  });

  it.each([
    [
      "the manifests' placeholder",
      { "--key-name": "CHANGE-ME" },
      /--key-name=CHANGE-ME is the placeholder of the shipped manifests/,
      /put your own key's name in --key-name/,
    ],
    [
      "a bad flag value",
      { "--healthz-path": "healthz" },
      /invalid --healthz-path "healthz"/,
      /^fix: correct --healthz-path \(.+\); docs\/configuration\.md#flags$/,
    ],
    [
      "a bad azure.json field",
      { "--config-file-path": "FIELD" },
      /"useManagedIdentityExtension" must be true or false/,
      /^fix: correct "useManagedIdentityExtension" in azure\.json/,
    ],
    [
      "invalid JSON",
      { "--config-file-path": "JSON" },
      /is not valid JSON \(line 3, column \d+\)$/,
      /^fix: fix the JSON at the place named/,
    ],
  ] as [string, Record<string, string>, RegExp, RegExp][])(
    "gives %s its own fix line",
    async (_name, given, detail, fix) => {
      const overrides = { ...given };
      const files: Record<string, string> = {
        FIELD: '{"useManagedIdentityExtension": "yes"}',
        JSON: '{\n  "aadClientSecret": "not-the-secret",\n  x\n}',
      };
      const path = overrides["--config-file-path"];
      if (path !== undefined) {
        const file = join(dir, `${path}.json`);
        await writeFile(file, files[path] ?? "");
        overrides["--config-file-path"] = file;
      }
      const run = await doctor(overrides);
      expect(run.code).toBe(1);
      const config = verdict(run, "config");
      expect(config.line).toMatch(/^FAIL\s+config\s/);
      expect(config.line).toMatch(detail);
      expect(config.fix).toMatch(fix);
      expect(run.stdout).not.toContain("not-the-secret");
    },
  );

  it("serve refuses the placeholder at start, exit 2", async () => {
    const run = await runCli(["--keyvault-name", "CHANGE-ME", "--key-name", "k"]);
    expect(run.code).toBe(2);
    expect(run.stderr).toContain("--keyvault-name=CHANGE-ME is the placeholder");
  });
});
