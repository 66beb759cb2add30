import { readFile } from "node:fs/promises";
import { isIP } from "node:net";
import { HttpAddressError, parseHttpAddress, type HttpAddress } from "../http/index.js";
import { isApiVersion } from "../keyvault/api-version.js";
import { readAzureJson, type AzureJson } from "./azure-json.js";
import { identityFrom, identitySummary, type Identity } from "./identity.js";
import { serveFlags } from "./serve-flags.js";
import { CloudError, resolveCloud, type Cloud } from "./clouds.js";
import {
  parseBool,
  parseDuration,
  parseFlags,
  parseIntFlag,
  parseUint,
  sanitize,
  UsageError,
} from "./flags.js";

export type StatusVersion = "v2" | "v2beta1";

export interface Config {
  readonly listenAddr: string;
  readonly socketMode: number;
  /** `--max-connections` on the KMS socket. */
  readonly maxConnections: number;
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
  /** Client-side limit on Key Vault requests per second over its 10 s window (0: none; "auto": by key type). */
  readonly keyVaultRateLimit: number | "auto";
  /** Consecutive failed Key Vault tries that open the circuit (0: no breaker), and its cool-down. */
  readonly keyVaultBreakerThreshold: number;
  readonly keyVaultBreakerCoolDownMs: number;
  /** The keys API version to ask for; empty: the SDK's, falling back to what Key Vault knows. */
  readonly keyVaultApiVersion: string;
  /** Where Prometheus scrapes `/metrics`. */
  readonly metricsAddress: HttpAddress;
  readonly verbosity: number;
  readonly logFormatJson: boolean;
  /** `--healthz-*`: `/livez`, `/readyz` and `healthzPath` on healthzHost:healthzPort. */
  readonly healthzHost: string;
  readonly healthzPort: number;
  readonly healthzPath: string;
  readonly healthzTimeoutMs: number;
  /** Only Prometheus exists, as in the Go plugin. */
  readonly metricsBackend: "prometheus";
  /** Go plugin proxy mode: Key Vault and Entra ID calls go to http://proxyAddress:proxyPort. */
  readonly proxyMode: boolean;
  readonly proxyAddress: string;
  readonly proxyPort: number;
  /**
   * The vault URL exactly as the Go plugin builds it (name as typed, trailing slash): its key_ids
   * are SHA-256 of `${goVaultUrl}keys/<key-name>/<key-version>`.
   */
  readonly goVaultUrl: string;
  /** Found while parsing (deprecated flag, retired cloud): logged as warnings at start-up. */
  readonly warnings: readonly string[];
  readonly cloud: Cloud;
  readonly authorityHost: string;
  readonly identity: Identity;
}

function vaultFrom(
  name: string,
  url: string,
  managedHsm: boolean,
  cloud: Cloud,
): { vaultUrl: string; vaultHost: string; goVaultUrl: string } {
  if (name !== "" && url !== "") {
    throw new UsageError("give either --keyvault-name or --keyvault-url, not both");
  }
  if (url !== "") {
    let parsed: URL;
    try {
      parsed = new URL(url);
    } catch {
      throw new UsageError(`invalid --keyvault-url "${url}"`);
    }
    if (parsed.protocol !== "https:") throw new UsageError("--keyvault-url must use https://");
    if (
      (parsed.pathname !== "/" && parsed.pathname !== "") ||
      parsed.search !== "" ||
      parsed.hash !== ""
    ) {
      throw new UsageError("--keyvault-url must be the vault's base URL, with no path or query");
    }
    if (parsed.username !== "" || parsed.password !== "") {
      throw new UsageError("--keyvault-url must not carry credentials");
    }
    return {
      vaultUrl: parsed.origin,
      vaultHost: parsed.host.toLowerCase(),
      goVaultUrl: `${parsed.origin}/`,
    };
  }
  if (name === "") throw new UsageError("--keyvault-name (or --keyvault-url) is required");
  if (!/^[-A-Za-z0-9]{3,24}$/.test(name)) {
    throw new UsageError(`invalid --keyvault-name "${name}": 3-24 letters, digits and dashes`);
  }
  const suffix = managedHsm ? cloud.managedHsmSuffix : cloud.keyVaultSuffix;
  if (suffix === undefined) {
    throw new UsageError(
      `--managed-hsm: Managed HSM is not available in ${cloud.name} (no Managed HSM DNS suffix is ` +
        `documented for it); use a Key Vault key, or give the HSM's URL with --keyvault-url`,
    );
  }
  const host = `${name}.${suffix}`.toLowerCase();
  // The Go plugin keeps the name as typed: `https://<name>.<suffix>/`.
  return { vaultUrl: `https://${host}`, vaultHost: host, goVaultUrl: `https://${name}.${suffix}/` };
}

/** What deploy/ writes where an operator must put their own vault and key. */
const placeholder = "CHANGE-ME";

/** argv (after the subcommand) + environment → a validated, frozen Config. Throws UsageError. */
export async function parseConfig(
  argv: readonly string[],
  env: NodeJS.ProcessEnv,
): Promise<Config> {
  const flags = parseFlags(argv, serveFlags, env);
  if (flags.rest.length > 0) throw new UsageError(`unexpected argument: ${flags.rest[0] ?? ""}`);
  const get = (name: string) => flags.get(name);

  for (const [name, value] of flags.values) {
    if (value.includes(placeholder)) {
      throw new UsageError(
        `--${name}=${value} is the placeholder of the shipped manifests: set your own value (docs/install.md)`,
      );
    }
  }
  const socketModeRaw = get("socket-mode");
  if (!/^0?[0-7]{3}$/.test(socketModeRaw)) {
    throw new UsageError(`invalid --socket-mode "${socketModeRaw}": octal like 0600`);
  }
  const statusVersion = get("status-version");
  if (statusVersion !== "v2" && statusVersion !== "v2beta1") {
    throw new UsageError(`invalid --status-version "${statusVersion}": v2 or v2beta1`);
  }
  const maxConnections = parseUint("max-connections", get("max-connections"), 100_000);
  if (maxConnections < 1) throw new UsageError("--max-connections must be at least 1");
  const cacheSize = parseUint("cache-size", get("cache-size"), 1_000_000);
  if (cacheSize < 1) throw new UsageError("--cache-size must be at least 1");
  const rotationPollIntervalMs = parseDuration(
    "rotation-poll-interval",
    get("rotation-poll-interval"),
  );
  if (rotationPollIntervalMs < 100 || rotationPollIntervalMs > 86_400_000) {
    throw new UsageError("--rotation-poll-interval must be between 100ms and 24h");
  }
  const seedMaxAgeMs = parseDuration("seed-max-age", get("seed-max-age"));
  if (seedMaxAgeMs < 1000 || seedMaxAgeMs > 365 * 86_400_000) {
    throw new UsageError("--seed-max-age must be between 1s and 365d");
  }
  const keyName = sanitize(get("key-name"));
  if (keyName === "") throw new UsageError("--key-name is required");
  if (!/^[0-9a-zA-Z-]{1,127}$/.test(keyName)) {
    throw new UsageError(`invalid --key-name "${keyName}": 1-127 letters, digits and dashes`);
  }
  const keyVersion = sanitize(get("key-version"));
  if (keyVersion !== "" && !/^[0-9a-zA-Z]{1,64}$/.test(keyVersion)) {
    throw new UsageError(`invalid --key-version "${keyVersion}"`);
  }
  const managedHsm = parseBool("managed-hsm", get("managed-hsm"));
  const configFilePath = get("config-file-path");
  const listenAddr = get("listen-addr").trim();
  const caFile = get("ca-file");
  const verbosity = parseUint("v", get("v"), 255);
  const rateRaw = get("keyvault-rate-limit").trim();
  const keyVaultRateLimit =
    rateRaw === "auto" ? "auto" : parseUint("keyvault-rate-limit", rateRaw, 10_000);
  const keyVaultBreakerThreshold = parseUint(
    "keyvault-breaker-threshold",
    get("keyvault-breaker-threshold"),
    1000,
  );
  const keyVaultBreakerCoolDownMs = parseDuration(
    "keyvault-breaker-cooldown",
    get("keyvault-breaker-cooldown"),
  );
  if (keyVaultBreakerCoolDownMs < 10 || keyVaultBreakerCoolDownMs > 600_000) {
    throw new UsageError("--keyvault-breaker-cooldown must be between 10ms and 10m");
  }
  const keyVaultApiVersion = get("keyvault-api-version").trim();
  if (keyVaultApiVersion !== "" && !isApiVersion(keyVaultApiVersion)) {
    throw new UsageError(
      `invalid --keyvault-api-version "${keyVaultApiVersion}": a Key Vault REST version such as 7.1, 7.4 or 2025-07-01`,
    );
  }
  let metricsAddress: HttpAddress;
  try {
    metricsAddress = parseHttpAddress("metrics-addr", get("metrics-addr"));
  } catch (err) {
    throw err instanceof HttpAddressError ? new UsageError(err.message) : err;
  }
  const logFormatJson = parseBool("log-format-json", get("log-format-json"));
  const warnings: string[] = [];
  if (flags.values.has("configFilePath")) {
    warnings.push(
      `--configFilePath is deprecated and ignored (as in the Go plugin); azure.json is read from --config-file-path (${configFilePath})`,
    );
  }
  const healthzHost = get("healthz-addr")
    .trim()
    .replace(/^\[(.*)\]$/, "$1");
  if (isIP(healthzHost) === 0) {
    throw new UsageError(
      `invalid --healthz-addr "${get("healthz-addr")}": an IP address such as 127.0.0.1, 0.0.0.0 or ::`,
    );
  }
  const healthzPort = parseUint("healthz-port", get("healthz-port"), 65535);
  const healthzPath = get("healthz-path");
  if (!healthzPath.startsWith("/") || /[\s?#]/.test(healthzPath)) {
    throw new UsageError(`invalid --healthz-path "${healthzPath}": a path such as /healthz`);
  }
  const healthzTimeoutMs = parseDuration("healthz-timeout", get("healthz-timeout"));
  if (healthzTimeoutMs <= 0) throw new UsageError("--healthz-timeout must be more than 0");
  // The Go plugin compares case-insensitively and refuses anything else at start-up.
  const metricsBackend = get("metrics-backend");
  if (metricsBackend.trim().toLowerCase() !== "prometheus") {
    throw new UsageError(`unsupported --metrics-backend "${metricsBackend}": only prometheus`);
  }
  const proxyMode = parseBool("proxy-mode", get("proxy-mode"));
  const proxyAddress = get("proxy-address").trim();
  const proxyPort = parseIntFlag("proxy-port", get("proxy-port"), 1, 65535);
  if (proxyMode) validateProxyAddress(proxyAddress);

  // The Go plugin ignores --configFilePath too, silently; say so where it matters.
  const ignored = flags.values.get("configFilePath");
  const ignoredHint =
    ignored !== undefined && !flags.values.has("config-file-path")
      ? ` (--configFilePath=${ignored} is ignored, as by the Go plugin: give --config-file-path=${ignored})`
      : "";
  let azureJson: AzureJson;
  try {
    azureJson = await readAzureJson(configFilePath);
  } catch (err) {
    throw new UsageError(`${(err as Error).message}${ignoredHint}`);
  }
  let cloud: Cloud;
  try {
    cloud = await resolveCloud(azureJson.cloud, env);
  } catch (err) {
    if (err instanceof CloudError) throw new UsageError(`${configFilePath}: ${err.message}`);
    throw err;
  }
  if (cloud.deprecation !== undefined) warnings.push(`cloud ${cloud.name}: ${cloud.deprecation}`);
  const { vaultUrl, vaultHost, goVaultUrl } = vaultFrom(
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
        `cannot read --ca-file ${caFile} (${(err as NodeJS.ErrnoException).code ?? "error"})`,
      );
    }
    if (!caPem.includes("-----BEGIN CERTIFICATE-----")) {
      throw new UsageError(`--ca-file ${caFile} holds no PEM certificate`);
    }
  }
  const authorityHost = (env["AZURE_AUTHORITY_HOST"] ?? "").trim() || cloud.authorityHost;
  if (!authorityHost.startsWith("https://")) {
    throw new UsageError("AZURE_AUTHORITY_HOST must use https://");
  }

  let identity: ReturnType<typeof identityFrom>;
  try {
    identity = identityFrom(azureJson, configFilePath, env);
  } catch (err) {
    if (err instanceof UsageError && ignoredHint !== "") {
      throw new UsageError(`${err.message}${ignoredHint}`);
    }
    throw err;
  }

  return Object.freeze({
    listenAddr,
    socketMode: parseInt(socketModeRaw, 8),
    maxConnections,
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
    keyVaultRateLimit,
    keyVaultBreakerThreshold,
    keyVaultBreakerCoolDownMs,
    keyVaultApiVersion,
    metricsAddress: Object.freeze(metricsAddress),
    verbosity,
    logFormatJson,
    healthzHost,
    healthzPort,
    healthzPath,
    healthzTimeoutMs,
    metricsBackend: "prometheus",
    proxyMode,
    proxyAddress,
    proxyPort,
    goVaultUrl,
    warnings: Object.freeze(warnings),
    cloud,
    authorityHost,
    identity: Object.freeze(identity),
  });
}

/** `--proxy-address` is a bare host (name, IPv4 or IPv6): the Go plugin pastes it into a URL. */
function validateProxyAddress(address: string): void {
  if (address === "") throw new UsageError("--proxy-mode needs --proxy-address");
  const bare = address.replace(/^\[(.*)\]$/, "$1");
  const isIpv6 = bare.includes(":") && /^[0-9a-fA-F:.]+$/.test(bare);
  if (!isIpv6 && !/^[A-Za-z0-9]([-A-Za-z0-9.]*[A-Za-z0-9])?$/.test(bare)) {
    throw new UsageError(
      `invalid --proxy-address "${address}": a host name or IP address, without scheme or port`,
    );
  }
}

/** The effective configuration for the startup log: no secrets, no PEM bodies. */
export function describeConfig(config: Config): Record<string, unknown> {
  return {
    listenAddr: config.listenAddr,
    socketMode: `0${config.socketMode.toString(8)}`,
    maxConnections: config.maxConnections,
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
    keyVaultRateLimit:
      config.keyVaultRateLimit === 0
        ? "off"
        : config.keyVaultRateLimit === "auto"
          ? "auto (by key type)"
          : `${config.keyVaultRateLimit}/s`,
    keyVaultBreaker:
      config.keyVaultBreakerThreshold === 0
        ? "off"
        : `${config.keyVaultBreakerThreshold} failures, cool-down up to ${config.keyVaultBreakerCoolDownMs}ms`,
    keyVaultApiVersion:
      config.keyVaultApiVersion === "" ? "(SDK default)" : config.keyVaultApiVersion,
    metricsAddr: `${config.metricsAddress.host ?? ""}:${config.metricsAddress.port}`,
    verbosity: config.verbosity,
    healthz: `${config.healthzHost.includes(":") ? `[${config.healthzHost}]` : config.healthzHost}:${config.healthzPort} (/livez, /readyz, ${config.healthzPath})`,
    ...(config.proxyMode ? { proxy: `http://${config.proxyAddress}:${config.proxyPort}` } : {}),
    cloud: config.cloud.name,
    authorityHost: config.authorityHost,
    identity: identitySummary(config.identity),
  };
}
