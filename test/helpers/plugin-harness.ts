import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { contractLine } from "../../src/commands/emulator.js";
import { startPlugin, type RunningPlugin } from "../../src/commands/plugin.js";
import { parseConfig } from "../../src/config/index.js";
import { createEmulator, type Emulator, type EmulatorKeySpec } from "../../src/emulator/index.js";
import { silentLogger } from "../../src/log/index.js";

export interface HarnessOptions {
  readonly key?: EmulatorKeySpec;
  /** Extra serve flags, e.g. ["--status-version", "v2beta1"]. */
  readonly args?: readonly string[];
  /** Runs after the emulator starts and before the plugin does (e.g. to inject faults). */
  readonly beforeStart?: (emu: Emulator) => void;
  /** Resolve before the plugin is ready (default: wait for a current seed). */
  readonly waitReady?: boolean;
}

export interface PluginHarness {
  readonly emu: Emulator;
  readonly dir: string;
  readonly listenAddr: string;
  readonly socketPath: string;
  plugin: RunningPlugin;
  /** Stops the plugin and starts a fresh one (empty seed cache) on the same socket and key. */
  restart(): Promise<void>;
  /** Like restart, with other extra serve flags (e.g. a pinned --key-version). */
  restartWith(args: readonly string[]): Promise<void>;
  close(): Promise<void>;
}

/**
 * The whole plugin as a deployment runs it: the emulator's contract (serveArgs/serveEnv) through
 * parseConfig, the real Key Vault wrapper over the Azure SDK, the real gRPC server on a unix socket.
 */
export async function startPluginHarness(options: HarnessOptions = {}): Promise<PluginHarness> {
  const dir = await mkdtemp(join(tmpdir(), "kvkms-"));
  const key = options.key ?? { name: "kek", kty: "RSA" as const, size: 2048 };
  const emu = await createEmulator({
    stateDir: join(dir, "emulator"),
    flavor: key.kty === "oct-HSM" ? "managedhsm" : "vault",
    keys: [key],
  });
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
    const plugin = await startPlugin(await configFor(args), silentLogger());
    if (waitReady) await plugin.ready;
    return plugin;
  };
  const harness: PluginHarness = {
    emu,
    dir,
    listenAddr,
    socketPath: join(dir, "kms.sock"),
    plugin: await start(options.waitReady ?? true),
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
