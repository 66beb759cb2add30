import { readFile } from "node:fs/promises";
import { HttpAddressError, parseHttpAddress, type HttpAddress } from "../http/index.js";
import { readAzureJson, type AzureJson } from "./azure-json.js";
import { cloudByName, knownCloudNames, type Cloud } from "./clouds.js";
import {
  parseBool,
  parseDuration,
  parseFlags,
  parseUint,
  sanitize,
  UsageError,
  type FlagSpec,
} from "./flags.js";

export type StatusVersion = "v2" | "v2beta1";

export interface ClientSecretIdentity {
  readonly kind: "client-secret";
  readonly tenantId: string;
  readonly clientId: string;
  /** Never logged: `describeConfig` leaves it out. */
  readonly clientSecret: string;
}

export type Identity = ClientSecretIdentity;

export interface Config {
  readonly listenAddr: string;
  readonly socketMode: number;
  /** `https://host[:port]`, no trailing slash. */
  readonly vaultUrl: string;
  /** Lowercase `host[:port]` as it appears in key URLs (and so in key_ids). */
  readonly vaultHost: string;
  readonly keyName: string;
  /** Empty: use the newest enabled version, resolved at startup. */
  readonly keyVersion: string;
  readonly managedHsm: boolean;
  readonly configFilePath: string;
  /** PEM bundle trusted for Key Vault and identity TLS, on top of the system roots. */
  readonly caPem?: string;
  readonly caFile?: string;
  readonly cacheSize: number;
  /** How often the key's versions are read from Key Vault (promotion and revocation). */
  readonly rotationPollIntervalMs: number;
  /** A current seed older than this is replaced by a new one under the same key version. */
  readonly seedMaxAgeMs: number;
  readonly statusVersion: StatusVersion;
  /** Where Prometheus scrapes `/metrics`. */
  readonly metricsAddress: HttpAddress;
  readonly verbosity: number;
  readonly logFormatJson: boolean;
  readonly cloud: Cloud;
  readonly authorityHost: string;
  readonly identity: Identity;
}

export const serveFlags: readonly FlagSpec[] = [
  {
    name: "listen-addr",
    kind: "string",
    default: "unix:///opt/azurekms.socket",
    help: "gRPC listen address (unix:// path)",
  },
  {
    name: "socket-mode",
    kind: "string",
    default: "0600",
    help: "permission bits of the socket file (octal)",
  },
  {
    name: "keyvault-name",
    kind: "string",
    default: "",
    help: "Key Vault (or Managed HSM) name; the cloud suffix comes from azure.json",
  },
  {
    name: "keyvault-url",
    kind: "string",
    default: "",
    help: "full vault URL instead of --keyvault-name, e.g. https://myvault.vault.azure.net",
  },
  {
    name: "key-name",
    kind: "string",
    default: "",
    help: "name of the key-encryption key in Key Vault",
  },
  {
    name: "key-version",
    kind: "string",
    default: "",
    help: "key version to use; empty = the newest enabled version",
  },
  { name: "managed-hsm", kind: "bool", default: "false", help: "the vault is a Managed HSM" },
  {
    name: "config-file-path",
    kind: "string",
    default: "/etc/kubernetes/azure.json",
    help: "path of azure.json (identity and cloud)",
  },
  {
    name: "ca-file",
    kind: "string",
    default: "",
    help: "extra PEM CA bundle for Key Vault and identity TLS",
  },
  { name: "cache-size", kind: "uint", default: "1000", help: "unwrapped seeds kept in memory" },
  {
    name: "rotation-poll-interval",
    kind: "duration",
    default: "5m",
    help: "how often to read the key's versions from Key Vault (new versions, revocations)",
  },
  {
    name: "seed-max-age",
    kind: "duration",
    default: "7d",
    help: "replace the current seed after this long (same key version, same key_id)",
  },
  {
    name: "status-version",
    kind: "string",
    default: "v2",
    help: "version string in Status: v2 (kube-apiserver 1.29+) or v2beta1 (1.27+)",
  },
  {
    name: "metrics-addr",
    kind: "string",
    default: "8095",
    help: "Prometheus /metrics: a port (every interface, as the Go plugin) or host:port",
  },
  { name: "v", kind: "uint", default: "0", help: "log verbosity: 0-3 info, 4-5 debug, 6+ trace" },
  {
    name: "log-format-json",
    kind: "bool",
    default: "false",
    help: "accepted for compatibility; logs are always JSON lines",
  },
  {
    name: "version",
    kind: "bool",
    default: "false",
    help: "print build information as JSON and exit",
  },
  { name: "help", kind: "bool", default: "false", help: "print this help and exit" },
];

/** Flags that are only switches for the CLI, not part of Config. */
export interface ServeSwitches {
  readonly version: boolean;
  readonly help: boolean;
}

export function parseServeSwitches(argv: readonly string[]): ServeSwitches {
  const flags = parseFlags(argv, serveFlags);
  return {
    version: parseBool("version", flags.get("version")),
    help: parseBool("help", flags.get("help")),
  };
}

function vaultFrom(
  name: string,
  url: string,
  managedHsm: boolean,
  cloud: Cloud,
): { vaultUrl: string; vaultHost: string } {
  if (name !== "" && url !== "") {
    throw new UsageError("give either -keyvault-name or -keyvault-url, not both");
  }
  if (url !== "") {
    let parsed: URL;
    try {
      parsed = new URL(url);
    } catch {
      throw new UsageError(`invalid -keyvault-url "${url}"`);
    }
    if (parsed.protocol !== "https:") throw new UsageError("-keyvault-url must use https://");
    if (
      (parsed.pathname !== "/" && parsed.pathname !== "") ||
      parsed.search !== "" ||
      parsed.hash !== ""
    ) {
      throw new UsageError("-keyvault-url must be the vault's base URL, with no path or query");
    }
    if (parsed.username !== "" || parsed.password !== "") {
      throw new UsageError("-keyvault-url must not carry credentials");
    }
    return { vaultUrl: parsed.origin, vaultHost: parsed.host.toLowerCase() };
  }
  if (name === "") throw new UsageError("-keyvault-name (or -keyvault-url) is required");
  if (!/^[-A-Za-z0-9]{3,24}$/.test(name)) {
    throw new UsageError(`invalid -keyvault-name "${name}": 3-24 letters, digits and dashes`);
  }
  const suffix = managedHsm ? cloud.managedHsmSuffix : cloud.keyVaultSuffix;
  if (suffix === undefined) {
    throw new UsageError(`Managed HSM is not available in ${cloud.name}`);
  }
  const host = `${name}.${suffix}`.toLowerCase();
  return { vaultUrl: `https://${host}`, vaultHost: host };
}

function identityFrom(az: AzureJson, path: string): Identity {
  if (az.aadClientId !== "" && az.aadClientSecret !== "") {
    if (az.tenantId === "")
      throw new UsageError(`${path}: "tenantId" is required with aadClientId`);
    return {
      kind: "client-secret",
      tenantId: az.tenantId,
      clientId: az.aadClientId,
      clientSecret: az.aadClientSecret,
    };
  }
  throw new UsageError(
    `${path}: no credentials; set tenantId, aadClientId and aadClientSecret (other identities come later)`,
  );
}

/** argv (after the subcommand) + environment → a validated, frozen Config. Throws UsageError. */
export async function parseConfig(
  argv: readonly string[],
  env: NodeJS.ProcessEnv,
): Promise<Config> {
  const flags = parseFlags(argv, serveFlags, env);
  if (flags.rest.length > 0) throw new UsageError(`unexpected argument: ${flags.rest[0] ?? ""}`);
  const get = (name: string) => flags.get(name);

  const socketModeRaw = get("socket-mode");
  if (!/^0?[0-7]{3}$/.test(socketModeRaw)) {
    throw new UsageError(`invalid -socket-mode "${socketModeRaw}": octal like 0600`);
  }
  const statusVersion = get("status-version");
  if (statusVersion !== "v2" && statusVersion !== "v2beta1") {
    throw new UsageError(`invalid -status-version "${statusVersion}": v2 or v2beta1`);
  }
  const cacheSize = parseUint("cache-size", get("cache-size"), 1_000_000);
  if (cacheSize < 1) throw new UsageError("-cache-size must be at least 1");
  const rotationPollIntervalMs = parseDuration(
    "rotation-poll-interval",
    get("rotation-poll-interval"),
  );
  if (rotationPollIntervalMs < 100 || rotationPollIntervalMs > 86_400_000) {
    throw new UsageError("-rotation-poll-interval must be between 100ms and 24h");
  }
  const seedMaxAgeMs = parseDuration("seed-max-age", get("seed-max-age"));
  if (seedMaxAgeMs < 1000 || seedMaxAgeMs > 365 * 86_400_000) {
    throw new UsageError("-seed-max-age must be between 1s and 365d");
  }
  const keyName = sanitize(get("key-name"));
  if (keyName === "") throw new UsageError("-key-name is required");
  if (!/^[0-9a-zA-Z-]{1,127}$/.test(keyName)) {
    throw new UsageError(`invalid -key-name "${keyName}": 1-127 letters, digits and dashes`);
  }
  const keyVersion = sanitize(get("key-version"));
  if (keyVersion !== "" && !/^[0-9a-zA-Z]{1,64}$/.test(keyVersion)) {
    throw new UsageError(`invalid -key-version "${keyVersion}"`);
  }
  const managedHsm = parseBool("managed-hsm", get("managed-hsm"));
  const configFilePath = get("config-file-path");
  const listenAddr = get("listen-addr").trim();
  const caFile = get("ca-file");
  const verbosity = parseUint("v", get("v"), 255);
  let metricsAddress: HttpAddress;
  try {
    metricsAddress = parseHttpAddress("metrics-addr", get("metrics-addr"));
  } catch (err) {
    throw err instanceof HttpAddressError ? new UsageError(err.message) : err;
  }
  const logFormatJson = parseBool("log-format-json", get("log-format-json"));

  let azureJson: AzureJson;
  try {
    azureJson = await readAzureJson(configFilePath);
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  const cloud = cloudByName(azureJson.cloud);
  if (cloud === undefined) {
    throw new UsageError(
      `${configFilePath}: unknown cloud "${azureJson.cloud}" (known: ${knownCloudNames.join(", ")})`,
    );
  }
  const { vaultUrl, vaultHost } = vaultFrom(
    sanitize(get("keyvault-name")),
    get("keyvault-url").trim(),
    managedHsm,
    cloud,
  );
  let caPem: string | undefined;
  if (caFile !== "") {
    try {
      caPem = await readFile(caFile, "utf8");
    } catch (err) {
      throw new UsageError(
        `cannot read -ca-file ${caFile} (${(err as NodeJS.ErrnoException).code ?? "error"})`,
      );
    }
    if (!caPem.includes("-----BEGIN CERTIFICATE-----")) {
      throw new UsageError(`-ca-file ${caFile} holds no PEM certificate`);
    }
  }
  const authorityHost = (env["AZURE_AUTHORITY_HOST"] ?? "").trim() || cloud.authorityHost;
  if (!authorityHost.startsWith("https://")) {
    throw new UsageError("AZURE_AUTHORITY_HOST must use https://");
  }

  return Object.freeze({
    listenAddr,
    socketMode: parseInt(socketModeRaw, 8),
    vaultUrl,
    vaultHost,
    keyName,
    keyVersion,
    managedHsm,
    configFilePath,
    ...(caPem === undefined ? {} : { caPem, caFile }),
    cacheSize,
    rotationPollIntervalMs,
    seedMaxAgeMs,
    statusVersion,
    metricsAddress: Object.freeze(metricsAddress),
    verbosity,
    logFormatJson,
    cloud,
    authorityHost,
    identity: Object.freeze(identityFrom(azureJson, configFilePath)),
  });
}

/** The effective configuration for the startup log: no secrets, no PEM bodies. */
export function describeConfig(config: Config): Record<string, unknown> {
  return {
    listenAddr: config.listenAddr,
    socketMode: `0${config.socketMode.toString(8)}`,
    vaultUrl: config.vaultUrl,
    keyName: config.keyName,
    keyVersion: config.keyVersion === "" ? "(newest enabled)" : config.keyVersion,
    managedHsm: config.managedHsm,
    configFilePath: config.configFilePath,
    caFile: config.caFile ?? null,
    cacheSize: config.cacheSize,
    rotationPollInterval: `${config.rotationPollIntervalMs}ms`,
    seedMaxAge: `${config.seedMaxAgeMs}ms`,
    statusVersion: config.statusVersion,
    metricsAddr: `${config.metricsAddress.host ?? ""}:${config.metricsAddress.port}`,
    verbosity: config.verbosity,
    cloud: config.cloud.name,
    authorityHost: config.authorityHost,
    identity: {
      kind: config.identity.kind,
      tenantId: config.identity.tenantId,
      clientId: config.identity.clientId,
    },
  };
}

/** `--help` text, generated from the same table the parser uses. */
export function serveUsage(): string {
  const lines = serveFlags.map((s) => {
    const def = s.default === "" ? "" : ` (default ${s.default})`;
    return `  -${s.name}${s.kind === "bool" ? "" : " value"}\n        ${s.help}${def}`;
  });
  return `Usage: keyvault-kms [serve] [flags]\n\nFlags:\n${lines.join("\n")}\n`;
}
