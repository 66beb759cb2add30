import { resolve } from "node:path";
import type { Emulator, EmulatorKeySpec } from "@keyvault-kms/emulator";
import { flagUsage, parseFlags, parseUint, UsageError, type FlagSpec } from "../config/index.js";
import { exitCodes, untilAborted, type CommandIo } from "./io.js";

/** The emulator is a package of the repository's workspace, not of the plugin's image. */
export class EmulatorMissingError extends Error {
  override name = "EmulatorMissingError";
}

/** Loads the emulator package; only a checkout of the repository has it. */
async function loadEmulator(): Promise<typeof import("@keyvault-kms/emulator")> {
  try {
    return await import("@keyvault-kms/emulator");
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code !== "ERR_MODULE_NOT_FOUND" && code !== "MODULE_NOT_FOUND") throw err;
    throw new EmulatorMissingError(
      "the Key Vault emulator is not part of this installation: it comes with a checkout of the " +
        "repository (npm ci && npm run build), never with the image or the npm package",
      { cause: err },
    );
  }
}

export const emulatorFlags: readonly FlagSpec[] = [
  {
    name: "state-dir",
    kind: "string",
    default: "",
    help: "directory for ca.pem, azure.json and the emulator's keys (required)",
  },
  { name: "port", kind: "uint", default: "0", help: "HTTPS port on 127.0.0.1; 0 picks a free one" },
  {
    name: "key-name",
    kind: "string",
    default: "kms-kek",
    help: "name of the key created at start",
  },
  { name: "key-type", kind: "string", default: "RSA", help: "RSA, RSA-HSM or oct-HSM" },
  {
    name: "key-size",
    kind: "uint",
    default: "2048",
    help: "RSA: 2048, 3072 or 4096; oct-HSM: 256",
  },
  {
    name: "key-permissions",
    kind: "string",
    default: "all",
    help: "access-policy key permissions of every identity, comma-separated (get,list,wrapKey,unwrapKey,…)",
  },
  {
    name: "api-versions",
    kind: "string",
    default: "",
    help: "api-versions the keys API accepts, comma-separated, oldest first (default: all published)",
  },
];

export function emulatorUsage(): string {
  return (
    "Usage: keyvault-kms emulator --state-dir DIR [flags]\n\n" +
    "Runs the Key Vault + Entra ID emulator alone, on 127.0.0.1 over HTTPS with its own CA, for\n" +
    "tests and demos (never for production). It prints one JSON line with what serve needs\n" +
    "(vaultUrl, serveArgs, serveEnv, caFile) and runs until SIGTERM or SIGINT.\n\n" +
    `Flags:\n${flagUsage(emulatorFlags)}\n`
  );
}

export interface EmulatorSettings {
  readonly stateDir: string;
  readonly port: number;
  readonly key: EmulatorKeySpec;
  /** Absent: all. */
  readonly keyPermissions?: string[];
  /** Absent or empty: every published version. */
  readonly apiVersions?: string[];
}

export function parseEmulatorFlags(
  argv: readonly string[],
  cwd: string,
  parseKeyPermissions: (names: readonly string[]) => unknown,
): EmulatorSettings {
  const flags = parseFlags(argv, emulatorFlags);
  if (flags.rest.length > 0) throw new UsageError(`unexpected argument: ${flags.rest[0] ?? ""}`);
  const get = (name: string) => flags.get(name);
  const stateDir = get("state-dir");
  if (stateDir === "") throw new UsageError("--state-dir is required");
  const port = parseUint("port", get("port"), 65535);
  const kty = get("key-type");
  if (kty !== "RSA" && kty !== "RSA-HSM" && kty !== "oct-HSM") {
    throw new UsageError(`invalid --key-type "${kty}": RSA, RSA-HSM or oct-HSM`);
  }
  const size = parseUint("key-size", get("key-size"));
  const sizes = kty === "oct-HSM" ? [256] : [2048, 3072, 4096];
  const effectiveSize = kty === "oct-HSM" && !flags.values.has("key-size") ? 256 : size;
  if (!sizes.includes(effectiveSize)) {
    throw new UsageError(`invalid --key-size ${size} for ${kty}: ${sizes.join(", ")}`);
  }
  const name = get("key-name");
  if (!/^[0-9a-zA-Z-]{1,127}$/.test(name)) throw new UsageError(`invalid --key-name "${name}"`);
  const list = (flag: string) =>
    get(flag)
      .split(",")
      .map((v) => v.trim())
      .filter((v) => v !== "");
  const keyPermissions = list("key-permissions");
  try {
    parseKeyPermissions(keyPermissions);
  } catch (err) {
    throw new UsageError(`invalid --key-permissions: ${(err as Error).message}`);
  }
  return {
    stateDir: resolve(cwd, stateDir),
    port,
    key: { name, kty, size: effectiveSize },
    keyPermissions,
    apiVersions: list("api-versions"),
  };
}

/** The one JSON line of the emulator contract (docs/architecture.md, "CLI contract"). */
export function contractLine(emu: Emulator, keyName: string) {
  const serveArgs = [
    "--keyvault-url",
    emu.vaultUrl,
    "--key-name",
    keyName,
    "--config-file-path",
    emu.azureJsonFile ?? "",
    "--ca-file",
    emu.caFile ?? "",
  ];
  return {
    vaultUrl: emu.vaultUrl,
    authorityHost: emu.authorityHost,
    tenantId: emu.tenantId,
    clientId: emu.clientId,
    clientSecret: emu.clientSecret,
    caFile: emu.caFile ?? "",
    keyName,
    serveArgs,
    serveEnv: { AZURE_AUTHORITY_HOST: emu.authorityHost },
  };
}

export async function startEmulatorFrom(settings: EmulatorSettings): Promise<Emulator> {
  const { createEmulator } = await loadEmulator();
  return createEmulator({
    stateDir: settings.stateDir,
    port: settings.port,
    flavor: settings.key.kty === "oct-HSM" ? "managedhsm" : "vault",
    keys: [settings.key],
    ...(settings.keyPermissions === undefined ? {} : { keyPermissions: settings.keyPermissions }),
    ...(settings.apiVersions === undefined || settings.apiVersions.length === 0
      ? {}
      : { apiVersions: settings.apiVersions }),
  });
}

export async function emulatorCommand(argv: readonly string[], io: CommandIo): Promise<number> {
  let settings: EmulatorSettings;
  try {
    const { parseKeyPermissions } = await loadEmulator();
    settings = parseEmulatorFlags(argv, io.cwd, parseKeyPermissions);
  } catch (err) {
    if (err instanceof UsageError || err instanceof EmulatorMissingError) {
      io.err(`keyvault-kms emulator: ${err.message}`);
      return exitCodes.usage;
    }
    throw err;
  }
  const emu = await startEmulatorFrom(settings);
  io.out(JSON.stringify(contractLine(emu, settings.key.name)));
  await untilAborted(io.stop);
  await emu.close();
  return exitCodes.ok;
}
