/** The CLI as operators and the README use it: a separate process, real socket, real emulator. */
import { existsSync, statSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { runCli, startCli, type CliProcess } from "../helpers/cli-process.js";

interface Contract {
  vaultUrl: string;
  authorityHost: string;
  tenantId: string;
  clientId: string;
  clientSecret: string;
  caFile: string;
  keyName: string;
  serveArgs: string[];
  serveEnv: Record<string, string>;
}

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "kvkms-cli-"));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe("flags", () => {
  it("--version prints the Go plugin's JSON build info", async () => {
    const run = await runCli(["--version"]);
    expect(run.code).toBe(0);
    const info = JSON.parse(run.stdout) as Record<string, string>;
    expect(Object.keys(info).sort()).toEqual(["BuildDate", "BuildVersion", "GitCommit"]);
    expect(info["BuildVersion"]).toMatch(/^\d+\.\d+\.\d+/);
  });

  it.each([
    [["--no-such-flag"], "unknown flag: --no-such-flag"],
    [
      ["--cache-size", "many", "--key-name", "k", "--keyvault-name", "vault1"],
      "for flag --cache-size",
    ],
    [["--socket-mode", "999"], "invalid --socket-mode"],
    [["--status-version", "v3"], "invalid --status-version"],
    [["client", "status", "--api", "v9"], "invalid --api"],
    [["emulator"], "--state-dir is required"],
    [
      ["emulator", "--state-dir", "x", "--key-permissions", "get,lsit"],
      "invalid --key-permissions",
    ],
  ])("%j exits 2 naming the flag", async (args, flag) => {
    const run = await runCli(args);
    expect(run.code).toBe(2);
    expect(run.stderr).toContain(flag);
  });

  it("refuses an abstract socket at start-up with the reason", async () => {
    const emu = startCli(["emulator", "--state-dir", join(dir, "emu-abstract")]);
    try {
      const contract = JSON.parse(
        (await emu.waitForStdout((o) => o.includes("\n"))).trim(),
      ) as Contract;
      const run = await runCli([...contract.serveArgs, "--listen-addr", "unix:///@kms"], {
        env: contract.serveEnv,
      });
      expect(run.code).toBe(2);
      expect(run.stderr).toMatch(/abstract/i);
    } finally {
      await emu.stop();
    }
  });
});

describe("emulator + serve + client, as separate processes", () => {
  let emu: CliProcess;
  let contract: Contract;
  beforeAll(async () => {
    emu = startCli(["emulator", "--state-dir", join(dir, "emu")]);
    const line = await emu.waitForStdout((o) => o.includes("\n"));
    expect(line.trim().split("\n")).toHaveLength(1);
    contract = JSON.parse(line) as Contract;
  });
  afterAll(async () => {
    expect(await emu.stop()).toBe(0);
  });

  it("prints the one-line contract with everything serve needs", () => {
    expect(Object.keys(contract).sort()).toEqual(
      [
        "authorityHost",
        "caFile",
        "clientId",
        "clientSecret",
        "keyName",
        "serveArgs",
        "serveEnv",
        "tenantId",
        "vaultUrl",
      ].sort(),
    );
    expect(existsSync(contract.caFile)).toBe(true);
    expect(existsSync(join(dir, "emu", "azure.json"))).toBe(true);
  });

  it("serves, round-trips through the client, refuses a second instance, and stops cleanly", async () => {
    const socket = join(dir, "kms.sock");
    const addr = `unix://${socket}`;
    const serve = startCli(
      [
        ...contract.serveArgs,
        "--listen-addr",
        addr,
        "--metrics-addr",
        "127.0.0.1:0",
        "--healthz-port",
        "0",
      ],
      contract.serveEnv,
    );
    try {
      await serve.waitForStderr((o) => o.includes("ready: current seed wrapped"));
      expect(statSync(socket).mode & 0o777).toBe(0o600);

      const status = await runCli(["client", "status", "--listen-addr", addr]);
      expect(status.code).toBe(0);
      expect(JSON.parse(status.stdout)).toMatchObject({ version: "v2", healthz: "ok" });

      const enc = await runCli([
        "client",
        "encrypt",
        "--listen-addr",
        addr,
        "--plaintext",
        "hello",
      ]);
      expect(enc.code).toBe(0);
      const dec = await runCli(["client", "decrypt", "--listen-addr", addr], { input: enc.stdout });
      expect(dec.code).toBe(0);
      expect(JSON.parse(dec.stdout)).toMatchObject({ plaintext: "hello" });

      const v1 = await runCli(["client", "status", "--api", "v1beta1", "--listen-addr", addr]);
      expect(JSON.parse(v1.stdout)).toMatchObject({ version: "v1beta1" });

      const second = await runCli(
        [
          ...contract.serveArgs,
          "--listen-addr",
          addr,
          "--metrics-addr",
          "127.0.0.1:0",
          "--healthz-port",
          "0",
        ],
        {
          env: contract.serveEnv,
        },
      );
      expect(second.code).toBe(1);
      expect(second.stderr).toMatch(/another process/i);
      // The first instance is untouched.
      expect((await runCli(["client", "status", "--listen-addr", addr])).code).toBe(0);
    } finally {
      expect(await serve.stop("SIGTERM")).toBe(0);
    }
    expect(existsSync(socket)).toBe(false);
  });

  it("client errors carry the gRPC status name and exit 1", async () => {
    const socket = join(dir, "kms-err.sock");
    const addr = `unix://${socket}`;
    const serve = startCli(
      [
        ...contract.serveArgs,
        "--listen-addr",
        addr,
        "--metrics-addr",
        "127.0.0.1:0",
        "--healthz-port",
        "0",
      ],
      contract.serveEnv,
    );
    try {
      await serve.waitForStderr((o) => o.includes("ready: current seed wrapped"));
      const dec = await runCli([
        "client",
        "decrypt",
        "--listen-addr",
        addr,
        "--ciphertext",
        Buffer.from("garbage").toString("base64"),
      ]);
      expect(dec.code).toBe(1);
      expect(dec.stderr).toContain("INVALID_ARGUMENT");
    } finally {
      await serve.stop();
    }
  });
});

describe("dev mode (npm start)", () => {
  it("prints the socket, serves it, and exits 0 on SIGTERM", async () => {
    const socket = join(dir, "dev", "kms.sock");
    const addr = `unix://${socket}`;
    const dev = startCli(["dev", "--listen-addr", addr, "--state-dir", join(dir, "dev-state")]);
    try {
      const out = await dev.waitForStdout((o) => o.includes("Stop with Ctrl-C"));
      expect(out).toContain(`socket:  ${addr}`);
      const metricsUrl = /metrics: (http:\/\/127\.0\.0\.1:\d+\/metrics)/.exec(out)?.[1];
      expect(metricsUrl).toBeDefined();
      expect(await (await fetch(metricsUrl!)).text()).toContain("azurekms_current_key_info{");
      const enc = await runCli(["client", "encrypt", "--listen-addr", addr, "--plaintext", "hi"]);
      const dec = await runCli(["client", "decrypt", "--listen-addr", addr], { input: enc.stdout });
      expect(JSON.parse(dec.stdout)).toMatchObject({ plaintext: "hi" });
    } finally {
      expect(await dev.stop("SIGINT")).toBe(0);
    }
    expect(existsSync(socket)).toBe(false);
  });
});
