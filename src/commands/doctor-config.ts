/** The doctor's first check: the configuration serve would run with, and how to fix each field. */
import { serveFlags, type Config } from "../config/index.js";
import { describeIdentity } from "../keyvault/index.js";
import type { Verdict } from "./doctor-verdict.js";

const azureJsonFields = [
  "cloud",
  "tenantId",
  "aadClientId",
  "aadClientSecret",
  "useManagedIdentityExtension",
  "userAssignedIdentityID",
  "aadClientCertPath",
  "aadClientCertPassword",
];

export function configVerdict(config: Config): Verdict {
  const version =
    config.keyVersion === "" ? "newest usable version" : `version ${config.keyVersion}`;
  const detail =
    `vault ${config.vaultUrl}${config.managedHsm ? " (Managed HSM)" : ""}, key ${config.keyName} ` +
    `(${version}), cloud ${config.cloud.name}, identity: ${describeIdentity(config.identity)}`;
  if (config.warnings.length === 0) return { status: "ok", detail };
  return { status: "warn", detail: `${detail}; ${config.warnings.join("; ")}` };
}

/** A configuration serve would refuse, with the fix for what the message names. */
export function configFailure(message: string): Verdict {
  return { status: "FAIL", detail: message, fix: configFix(message) };
}

function configFix(message: string): string {
  if (message.includes("is not valid JSON")) {
    return "fix the JSON at the place named (python3 -m json.tool <file> shows it too); the fields are in docs/configuration.md#azurejson";
  }
  if (message.includes("is the placeholder of the shipped manifests")) {
    const flag = /--([a-z-]+)=/.exec(message)?.[1] ?? "the flag";
    return `put your own ${flag === "keyvault-name" ? "vault's name" : flag === "key-name" ? "key's name" : "value"} in --${flag}, in the manifest's args or your overlay (docs/install.md, "Deploy the plugin")`;
  }
  const field = azureJsonFields.find((f) => message.includes(`"${f}"`));
  if (field !== undefined)
    return `correct "${field}" in azure.json (docs/configuration.md#azurejson)`;
  const flag = serveFlags.find((f) => new RegExp(`--${f.name}(?![a-zA-Z-])`).test(message));
  if (flag !== undefined) {
    const def = flag.default === "" ? "" : `; default ${flag.default}`;
    return `correct --${flag.name} (${flag.help}${def}); docs/configuration.md#flags`;
  }
  const variable = /\b(AZURE_[A-Z_]+)\b/.exec(message)?.[1];
  if (variable !== undefined) {
    return `set or correct ${variable} (docs/configuration.md#environment-variables)`;
  }
  return "correct the value named above (docs/configuration.md; keyvault-kms serve --help)";
}
