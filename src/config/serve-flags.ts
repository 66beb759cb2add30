/** serve's flags: the table the parser, --help and docs/configuration.md all read. */
import { flagUsage, parseBool, parseFlags, type FlagSpec } from "./flags.js";

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
    name: "max-connections",
    kind: "uint",
    default: "128",
    help: "connections the socket holds at once; at the limit a new one is admitted and a silent or idle one closed, never one that made a call within the last minute (kube-apiserver holds one per provider)",
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
    name: "configFilePath",
    kind: "string",
    default: "/etc/kubernetes/azure.json",
    help: "deprecated and ignored, as in the Go plugin (a warning is logged); use --config-file-path",
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
    name: "keyvault-rate-limit",
    kind: "string",
    default: "auto",
    help: "client-side limit on Key Vault requests per second, counted over Key Vault's 10 s window; auto: a third of the vault's limit for the key's type (RSA-2048 software 133/s … RSA-4096 HSM 8/s); lowered while Key Vault answers 429; a request waits for its turn while its deadline allows, else fails UNAVAILABLE unsent; 0 disables",
  },
  {
    name: "keyvault-breaker-threshold",
    kind: "uint",
    default: "5",
    help: "consecutive failed Key Vault requests (network, timeout, 5xx; each after its retries; a 429 is throttling, not a failure) within 10s that open the circuit: requests then fail fast, unsent, until a probe succeeds; 0 disables",
  },
  {
    name: "keyvault-breaker-cooldown",
    kind: "duration",
    default: "2s",
    help: "longest wait of an open circuit before it lets one probe request through (the first wait is 500ms, doubled after each failed probe up to this); a request whose deadline outlasts the next probe waits for it, so keep this below kube-apiserver's 3s",
  },
  {
    name: "keyvault-api-version",
    kind: "string",
    default: "",
    help: "Key Vault REST api-version for every request (e.g. 7.1 for a cloud that lags); empty: the SDK's newest, switching once to the version Key Vault names if it does not know that one",
  },
  {
    name: "metrics-addr",
    kind: "string",
    default: "8095",
    help: "Prometheus /metrics: a port (every interface, as the Go plugin) or host:port",
  },
  {
    name: "metrics-backend",
    kind: "string",
    default: "prometheus",
    help: "metrics backend; prometheus is the only one (any case), as in the Go plugin",
  },
  {
    name: "healthz-addr",
    kind: "string",
    default: "127.0.0.1",
    help: "IP address the health endpoints bind: loopback by default, because a hostNetwork pod's port is open on the node's network otherwise; kubelet probes need host: 127.0.0.1 (as kubeadm's scheduler and controller-manager probes do); :: or 0.0.0.0 binds every interface, as the Go plugin did",
  },
  {
    name: "healthz-port",
    kind: "uint",
    default: "8787",
    help: "health port (the Go plugin's): /livez, /readyz and --healthz-path, never a Key Vault call (0: a free port)",
  },
  {
    name: "healthz-path",
    kind: "string",
    default: "/healthz",
    help: "the Go plugin's probe path: answers like /readyz (200 ok once a current seed is ready)",
  },
  {
    name: "healthz-timeout",
    kind: "duration",
    default: "20s",
    help: "upper bound on the /livez self-check (a Version call on the plugin's own socket)",
  },
  {
    name: "proxy-mode",
    kind: "bool",
    default: "false",
    help: "send Key Vault and Entra ID calls over plain HTTP to --proxy-address:--proxy-port with the x-azure-proxy-target header (the Go plugin's AKS proxy mode)",
  },
  {
    name: "proxy-address",
    kind: "string",
    default: "",
    help: "proxy host for --proxy-mode",
  },
  { name: "proxy-port", kind: "int", default: "7788", help: "proxy port for --proxy-mode" },
  {
    name: "v",
    kind: "uint",
    default: "0",
    help: "log verbosity as the Go plugin's: 0-3 start-up, key and error events; 4 debug; 6 trace",
  },
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

/** `--help` text, generated from the same table the parser uses. */
export function serveUsage(): string {
  return (
    "Usage: keyvault-kms [serve] [flags]\n\n" +
    "Serves the KMS socket for kube-apiserver, sealing its keys under Azure Key Vault. Every flag of\n" +
    "the Go plugin (Azure/kubernetes-kms) works, with one dash or two.\n\n" +
    `Flags:\n${flagUsage(serveFlags)}\n`
  );
}
