import { mkdir, readFile, writeFile } from "node:fs/promises";
import { join, relative, resolve } from "node:path";
import {
  flagUsage,
  parseConfig,
  parseFlags,
  parseUint,
  UsageError,
  type FlagSpec,
} from "../config/index.js";
import type { Emulator } from "@keyvault-kms/emulator";
import { createLogger } from "../log/index.js";
import { contractLine, EmulatorMissingError, startEmulatorFrom } from "./emulator.js";
import { exitCodes, untilAborted, type CommandIo } from "./io.js";
import { startPlugin } from "./plugin.js";

export const devFlags: readonly FlagSpec[] = [
  {
    name: "listen-addr",
    kind: "string",
    default: "unix://<cwd>/run/kms.sock",
    help: "socket to serve",
  },
  { name: "state-dir", kind: "string", default: "run/emulator", help: "emulator state (CA, keys)" },
  {
    name: "metrics-addr",
    kind: "string",
    default: "127.0.0.1:0",
    help: "Prometheus /metrics (0: a free port)",
  },
  {
    name: "healthz-port",
    kind: "uint",
    default: "0",
    help: "/livez, /readyz and /healthz on 127.0.0.1 (0: a free port)",
  },
  { name: "v", kind: "uint", default: "2", help: "log verbosity" },
];

export function devUsage(): string {
  return (
    "Usage: keyvault-kms dev [flags]\n\n" +
    "Runs the plugin against the embedded Key Vault emulator in one process (what npm start runs):\n" +
    "the emulator's state and the socket live under the current directory. Stops on SIGTERM or\n" +
    "SIGINT.\n\n" +
    `Flags:\n${flagUsage(devFlags)}\n`
  );
}

const keyName = "kms-kek";

/** Reuses the last emulator port so that key_ids (which name host:port) survive a dev restart. */
async function startDevEmulator(stateDir: string): Promise<Emulator> {
  const portFile = join(stateDir, "dev-port");
  const last = Number(await readFile(portFile, "utf8").catch(() => "0"));
  const start = (port: number) =>
    startEmulatorFrom({ stateDir, port, key: { name: keyName, kty: "RSA", size: 2048 } });
  let emu: Emulator;
  try {
    emu = await start(Number.isInteger(last) && last > 0 && last < 65536 ? last : 0);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "EADDRINUSE") throw err;
    emu = await start(0);
  }
  await writeFile(portFile, new URL(emu.vaultUrl).port);
  return emu;
}

export async function devCommand(argv: readonly string[], io: CommandIo): Promise<number> {
  let listenAddr: string;
  let stateDir: string;
  let verbosity: number;
  let metricsAddr: string;
  let healthzPort: number;
  try {
    const flags = parseFlags(argv, devFlags);
    if (flags.rest.length > 0) throw new UsageError(`unexpected argument: ${flags.rest[0] ?? ""}`);
    listenAddr = flags.values.get("listen-addr") ?? `unix://${resolve(io.cwd, "run/kms.sock")}`;
    stateDir = resolve(io.cwd, flags.get("state-dir"));
    verbosity = parseUint("v", flags.get("v"), 255);
    metricsAddr = flags.get("metrics-addr");
    healthzPort = parseUint("healthz-port", flags.get("healthz-port"), 65535);
  } catch (err) {
    if (err instanceof UsageError) {
      io.err(`keyvault-kms dev: ${err.message}`);
      return exitCodes.usage;
    }
    throw err;
  }
  if (listenAddr.startsWith("unix:///")) {
    await mkdir(join(listenAddr.slice("unix://".length), ".."), { recursive: true });
  }
  await mkdir(stateDir, { recursive: true });

  let emu: Emulator;
  try {
    emu = await startDevEmulator(stateDir);
  } catch (err) {
    if (!(err instanceof EmulatorMissingError)) throw err;
    io.err(`keyvault-kms dev: ${err.message}`);
    return exitCodes.usage;
  }
  const contract = contractLine(emu, keyName);
  // The same path a real deployment takes: the emulator's serveArgs/serveEnv through parseConfig.
  const config = await parseConfig(
    [
      ...contract.serveArgs,
      "--listen-addr",
      listenAddr,
      "--metrics-addr",
      metricsAddr,
      "--healthz-port",
      String(healthzPort),
      "--v",
      String(verbosity),
    ],
    { ...io.env, ...contract.serveEnv },
  );
  const logger = createLogger({ verbosity });
  let plugin;
  try {
    plugin = await startPlugin(config, logger);
  } catch (err) {
    io.err(`keyvault-kms dev: ${(err as Error).message}`);
    await emu.close();
    return exitCodes.failed;
  }
  const readyOrStop = await Promise.race([
    plugin.ready.then(() => "ready" as const),
    untilAborted(io.stop).then(() => "stop" as const),
  ]);
  if (readyOrStop === "ready") {
    const cli = `node ${relative(io.cwd, new URL("../cli.js", import.meta.url).pathname) || "dist/cli.js"}`;
    const addr = `--listen-addr ${listenAddr}`;
    io.out(
      [
        "",
        "keyvault-kms is running in dev mode against the embedded Key Vault emulator.",
        `  socket:  ${listenAddr}`,
        `  vault:   ${emu.vaultUrl} (emulator; state in ${relative(io.cwd, stateDir) || "."})`,
        `  key:     ${keyName}`,
        `  metrics: ${plugin.metricsUrl ?? "(not served: see the log)"}`,
        `  health:  ${plugin.healthUrl === undefined ? "(not served: see the log)" : `${plugin.healthUrl}/livez, /readyz, /healthz`}`,
        "",
        "In another shell:",
        `  ${cli} client status ${addr}`,
        `  ${cli} client encrypt ${addr} --plaintext hello`,
        `  ${cli} client encrypt ${addr} --plaintext hello | ${cli} client decrypt ${addr}`,
        "",
        "Logs go to stderr. Stop with Ctrl-C.",
        "",
      ].join("\n"),
    );
    await untilAborted(io.stop);
  }
  await plugin.stop();
  await emu.close();
  return exitCodes.ok;
}
