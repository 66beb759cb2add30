/**
 * What a newcomer meets at the command line, against the built CLI and the emulator:
 * help for every command and its exit code, messages that name the flag (two dashes) and the
 * real cause, `client status` failing when kube-apiserver would not use the plugin, and the log's
 * shape (stderr only, JSON, one component per line, no stack trace for an operator's error).
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { emulatorFlags } from "../../src/commands/emulator.js";
import { clientFlags } from "../../src/commands/client.js";
import { devFlags } from "../../src/commands/dev.js";
import { serveFlags } from "../../src/config/index.js";
import type { Emulator } from "@keyvault-kms/emulator";
import { runCli, startCli, type CliProcess } from "../helpers/cli-process.js";
import { eventually } from "../helpers/eventually.js";
import { serveArgs, servedPorts, startTestEmulator, type Contract } from "../helpers/serve-args.js";

let dir: string;
let emu: Emulator;
let contract: Contract;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "kvkms-messages-"));
  ({ emu, contract } = await startTestEmulator(dir));
});

afterAll(async () => {
  await emu.close();
  await rm(dir, { recursive: true, force: true });
});

describe("help", () => {
  it.each([
    [["--help"], "Usage: keyvault-kms [command]"],
    [["-h"], "Usage: keyvault-kms [command]"],
    [["help"], "Usage: keyvault-kms [command]"],
    [["help", "emulator"], "Usage: keyvault-kms emulator"],
    [["serve", "--help"], "Usage: keyvault-kms [serve]"],
    [["-help"], "Usage: keyvault-kms [command]"],
    [["--help", "--key-name", "k"], "Usage: keyvault-kms [command]"],
    [["--key-name", "k", "-h"], "Usage: keyvault-kms [serve]"],
    [["doctor", "-h"], "Usage: keyvault-kms doctor"],
    [["emulator", "--help"], "Usage: keyvault-kms emulator"],
    [["dev", "--help"], "Usage: keyvault-kms dev"],
    [["client", "--help"], "Usage: keyvault-kms client"],
    [["client", "status", "-h"], "Usage: keyvault-kms client"],
    [["client", "help"], "Usage: keyvault-kms client"],
  ])("%j prints %j and exits 0", async (args, first) => {
    const run = await runCli(args);
    expect(run.stderr).toBe("");
    expect(run.stdout.startsWith(first)).toBe(true);
    expect(run.code).toBe(0);
  });

  it("the overview lists every command", async () => {
    const { stdout } = await runCli(["--help"]);
    for (const command of ["serve", "doctor", "client", "dev", "emulator", "help"]) {
      expect(stdout).toMatch(new RegExp(`^  ${command} `, "m"));
    }
  });

  it.each([
    ["serve", serveFlags],
    ["emulator", emulatorFlags],
    ["dev", devFlags],
    ["client", clientFlags],
  ] as const)("%s --help lists each of its flags with two dashes", async (command, flags) => {
    const { stdout } = await runCli([command, "--help"]);
    for (const flag of flags) expect(stdout).toContain(`  --${flag.name}`);
  });

  it.each([[["help", "nope"]], [["nope"]]])("%j exits 2 naming the commands", async (args) => {
    const run = await runCli(args);
    expect(run.code).toBe(2);
    expect(run.stderr).toContain("serve, doctor, client, dev, emulator");
  });

  it("a value that looks like -h is a value, not a request for help", async () => {
    const run = await runCli(["client", "encrypt", "--plaintext", "-h", "--listen-addr", "x"]);
    expect(run.stdout).not.toContain("Usage:");
    expect(run.code).toBe(2); // the address, not the plaintext, is wrong
  });
});

describe("messages", () => {
  it("names flags with two dashes", async () => {
    const run = await runCli(["--keyvault-url", "http://v.vault.azure.net", "--key-name", "k"]);
    expect(run.code).toBe(2);
    expect(run.stderr).toContain("--keyvault-url must use https://");
  });

  it("a Go command line with --configFilePath says the flag was ignored and names the right one", async () => {
    const path = join(dir, "custom", "azure.json");
    const run = await runCli([
      "--keyvault-name",
      "myvault",
      "--key-name",
      "k",
      `--configFilePath=${path}`,
    ]);
    expect(run.code).toBe(2);
    expect(run.stderr).toContain("/etc/kubernetes/azure.json");
    expect(run.stderr).toContain(`--configFilePath=${path} is ignored, as by the Go plugin`);
    expect(run.stderr).toContain(`give --config-file-path=${path}`);
  });
});

/** serve against the emulator, with `args` replacing or adding to the contract's. */
async function serveWith(
  args: string[],
  drop: string[] = [],
): Promise<{ serve: CliProcess; socket: string; healthUrl: string }> {
  const socket = join(dir, `kms-${Math.random().toString(36).slice(2)}.sock`);
  const base: string[] = [];
  for (let i = 0; i < contract.serveArgs.length; i += 2) {
    const [flag, value] = [contract.serveArgs[i] ?? "", contract.serveArgs[i + 1] ?? ""];
    if (!drop.includes(flag) && !args.includes(flag)) base.push(flag, value);
  }
  const serve = startCli(
    serveArgs({ ...contract, serveArgs: base }, socket, args),
    contract.serveEnv,
  );
  const log = await serve.waitForStderr((e) => /"url":"http:\/\/127\.0\.0\.1:\d+"/.test(e));
  return { serve, socket, healthUrl: `http://127.0.0.1:${servedPorts(log).healthPort}` };
}

/** /readyz's reason once it names one (the first Key Vault answer may take a moment). */
async function notReadyReason(healthUrl: string, expected: string): Promise<string> {
  return eventually(
    async () => {
      const res = await fetch(`${healthUrl}/readyz`);
      const body = (await res.json()) as { reason?: string };
      return res.status === 503 && body.reason?.includes(expected) === true
        ? body.reason
        : undefined;
    },
    15_000,
    `/readyz naming "${expected}"`,
  );
}

describe("serve's first problems", () => {
  it("a misspelt --key-name is reported as not found, and client status exits 1", async () => {
    const { serve, socket, healthUrl } = await serveWith(["--key-name", "kms-kex"]);
    try {
      const reason = await notReadyReason(healthUrl, "not found in Key Vault");
      expect(reason).toContain("key kms-kex not found in Key Vault: check --key-name");
      const status = await runCli(["client", "status", "--listen-addr", `unix://${socket}`]);
      expect(status.code).toBe(1);
      expect(JSON.parse(status.stdout)).toMatchObject({ keyId: "" });
      expect(status.stderr).toContain("the plugin answers but is not healthy");
    } finally {
      await serve.stop();
    }
  }, 30_000);

  it("an untrusted Key Vault certificate names the certificate and --ca-file", async () => {
    const { serve, healthUrl } = await serveWith([], ["--ca-file"]);
    try {
      const reason = await notReadyReason(healthUrl, "not trusted");
      expect(reason).toMatch(/the TLS certificate of 127\.0\.0\.1:\d+ is not trusted \(\w+\)/);
      expect(reason).toContain("give --ca-file");
    } finally {
      await serve.stop();
    }
  }, 30_000);

  it("a ready plugin: client status exits 0; the log is JSON on stderr, one component per line", async () => {
    const { serve, socket } = await serveWith([]);
    try {
      await serve.waitForStderr((e) => e.includes("ready: current seed wrapped"));
      const status = await runCli(["client", "status", "--listen-addr", `unix://${socket}`]);
      expect(status.code).toBe(0);
      expect(JSON.parse(status.stdout)).toMatchObject({ healthz: "ok" });
    } finally {
      await serve.stop();
    }
    expect(serve.stdout()).toBe("");
    const lines = serve.stderr().trim().split("\n");
    expect(lines.length).toBeGreaterThan(3);
    const components = new Set<string>();
    for (const line of lines) {
      const entry = JSON.parse(line) as { component?: string };
      expect(line.match(/"component":/g)).toHaveLength(1);
      components.add(entry.component ?? "");
    }
    expect(components).toContain("keyvault-kms");
    expect(components).toContain("keys");
  }, 30_000);

  it("a missing socket directory: exit 1, the cause and fix, no stack trace", async () => {
    const run = await runCli(
      [
        ...contract.serveArgs,
        "--listen-addr",
        `unix://${join(dir, "no", "such", "dir", "kms.sock")}`,
      ],
      { env: contract.serveEnv },
    );
    expect(run.code).toBe(1);
    expect(run.stdout).toBe("");
    expect(run.stderr).toContain("does not exist: create it");
    expect(run.stderr).not.toContain("stack");
    expect(run.stderr).not.toMatch(/\n\s+at /);
  });
});
