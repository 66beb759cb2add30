import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { contractLine } from "../../src/commands/emulator.js";
import { startPlugin, type RunningPlugin } from "../../src/commands/plugin.js";
import { parseConfig } from "../../src/config/index.js";
import { PassThrough } from "node:stream";
import {
  createEmulator,
  type Emulator,
  type EmulatorKeySpec,
  type EmulatorOptions,
} from "@keyvault-kms/emulator";
import { createLogger, silentLogger, type Logger } from "../../src/log/index.js";

export interface HarnessOptions {
  readonly key?: EmulatorKeySpec;
  /** Extra serve flags, e.g. ["--status-version", "v2beta1"]. */
  readonly args?: readonly string[];
  /** Runs after the emulator starts and before the plugin does (e.g. to inject faults). */
  readonly beforeStart?: (emu: Emulator) => void;
  /** Resolve before the plugin is ready (default: wait for a current seed). */
  readonly waitReady?: boolean;
  /** The emulator's access policy and api-versions (default: KVKMS_TEST_KEY_PERMISSIONS, or all). */
  readonly emulator?: Pick<EmulatorOptions, "keyPermissions" | "apiVersions">;
  /** Keep the plugin's log lines (JSON objects) in `logs` instead of dropping them. */
  readonly captureLogs?: boolean;
}

/**
 * The access policy every harness emulator gets unless a test sets one: the jest project
 * "least-permissions" runs the conformance suites with exactly what docs/install.md grants.
 */
function defaultKeyPermissions(): string[] | undefined {
  const raw = process.env["KVKMS_TEST_KEY_PERMISSIONS"];
  return raw === undefined || raw === "" ? undefined : raw.split(",");
}

export interface PluginHarness {
  readonly emu: Emulator;
  readonly dir: string;
  readonly listenAddr: string;
  readonly socketPath: string;
  plugin: RunningPlugin;
  /** The plugin's log lines so far, parsed (only with captureLogs). */
  readonly logs: Record<string, unknown>[];
  /** Stops the plugin and starts a fresh one (empty seed cache) on the same socket and key. */
  restart(): Promise<void>;
  /** Like restart, with other extra serve flags (e.g. a pinned --key-version). */
  restartWith(args: readonly string[]): Promise<void>;
  close(): Promise<void>;
}

/** Bounded: a plugin that never gets ready (it retries forever) must not hang the test run. */
async function readyOrStop(plugin: RunningPlugin, timeoutMs = 20_000): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<"late">((resolve) => {
    timer = setTimeout(() => {
      resolve("late");
    }, timeoutMs);
  });
  try {
    if ((await Promise.race([plugin.ready.then(() => "ready" as const), late])) === "late") {
      await plugin.stop();
      throw new Error(`the plugin was not ready within ${timeoutMs} ms (see its log)`);
    }
  } finally {
    clearTimeout(timer);
  }
}

/**
 * The whole plugin as a deployment runs it: the emulator's contract (serveArgs/serveEnv) through
 * parseConfig, the real Key Vault wrapper over the Azure SDK, the real gRPC server on a unix socket.
 */
export async function startPluginHarness(options: HarnessOptions = {}): Promise<PluginHarness> {
  const dir = await mkdtemp(join(tmpdir(), "kvkms-"));
  const key = options.key ?? { name: "kek", kty: "RSA" as const, size: 2048 };
  const keyPermissions = options.emulator?.keyPermissions ?? defaultKeyPermissions();
  const emu = await createEmulator({
    stateDir: join(dir, "emulator"),
    flavor: key.kty === "oct-HSM" ? "managedhsm" : "vault",
    keys: [key],
    ...(keyPermissions === undefined ? {} : { keyPermissions }),
    ...(options.emulator?.apiVersions === undefined
      ? {}
      : { apiVersions: options.emulator.apiVersions }),
  });
  const logs: Record<string, unknown>[] = [];
  const logger = (): Logger => {
    if (options.captureLogs !== true) return silentLogger();
    const destination = new PassThrough();
    let pending = "";
    destination.on("data", (chunk: Buffer) => {
      const lines = (pending + chunk.toString("utf8")).split("\n");
      pending = lines.pop() ?? "";
      for (const line of lines)
        if (line !== "") logs.push(JSON.parse(line) as Record<string, unknown>);
    });
    return createLogger({ verbosity: 2, destination });
  };
  const contract = contractLine(emu, key.name);
  const listenAddr = `unix://${join(dir, "kms.sock")}`;
  const configFor = (args: readonly string[]) =>
    parseConfig(
      [
        ...contract.serveArgs,
        "--listen-addr",
        listenAddr,
        "--metrics-addr",
        "127.0.0.1:0",
        "--healthz-port",
        "0",
        ...args,
      ],
      {
        ...contract.serveEnv,
      },
    );
  options.beforeStart?.(emu);
  const start = async (waitReady = true, args = options.args ?? []) => {
    const plugin = await startPlugin(await configFor(args), logger());
    if (waitReady) await readyOrStop(plugin);
    return plugin;
  };
  const harness: PluginHarness = {
    emu,
    dir,
    logs,
    listenAddr,
    socketPath: join(dir, "kms.sock"),
    plugin: await start(options.waitReady ?? true).catch(async (err: unknown) => {
      await emu.close();
      await rm(dir, { recursive: true, force: true });
      throw err;
    }),
    async restart() {
      await harness.plugin.stop();
      harness.plugin = await start();
    },
    async restartWith(args) {
      await harness.plugin.stop();
      harness.plugin = await start(true, args);
    },
    async close() {
      await harness.plugin.stop();
      await emu.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
  return harness;
}
