/** The doctor's Key Vault checks: token, key, round trip, clock skew, key expiry. */
import { randomBytes, timingSafeEqual } from "node:crypto";
import type { Config } from "../config/index.js";
import {
  describeIdentity,
  kmsErrorFromAzure,
  readKeyDetails,
  type createCredential,
  type KeyDetails,
  type KeyDetailsInput,
  type KeyVaultWrapper,
} from "../keyvault/index.js";
import { KmsError, type KeyReference } from "../kms/index.js";
import { CheckTimeout, type Verdict } from "./doctor-verdict.js";

const day = 86_400_000;
export const skewWarnMs = 60_000;
export const skewFailMs = 5 * 60_000;
export const expiryWarnMs = 30 * day;

type Credential = ReturnType<typeof createCredential>;

/** What the key check learnt, for the checks after it. */
export interface KeyFacts {
  readonly current: KeyReference;
  /** Includes Key Vault's `Date` header and the local clock when the answer arrived. */
  readonly key: KeyDetails;
}

export function tokenScope(config: Config): string {
  const resource = config.managedHsm
    ? (config.cloud.managedHsmResource ?? "https://managedhsm.azure.net")
    : config.cloud.keyVaultResource;
  return `${resource.replace(/\/+$/, "")}/.default`;
}

/** How to fix a refused identity, by where the identity comes from. */
function identityFix(config: Config): string {
  const id = config.identity;
  switch (id.kind) {
    case "client-secret":
      return id.source === "environment"
        ? "check AZURE_CLIENT_ID/AZURE_CLIENT_SECRET/AZURE_TENANT_ID (the secret may have expired: create a new one with az ad app credential reset)"
        : `check aadClientId/aadClientSecret in azure.json (${config.configFilePath}) and tenantId; the secret may have expired (az ad app credential reset)`;
    case "client-certificate":
      return `check aadClientId, aadClientCertPath and aadClientCertPassword${id.source === "environment" ? " (AZURE_CLIENT_* variables)" : ` in azure.json (${config.configFilePath})`}, and that the certificate is registered on the app registration`;
    case "workload-identity":
      return `check the federated credential on app ${id.clientId} (issuer = the cluster's OIDC issuer, subject system:serviceaccount:<namespace>:<service account>) and that ${id.tokenFilePath} holds a current token`;
    case "managed-identity":
      return id.clientId === undefined
        ? "enable the system-assigned identity on this VM / scale set, or set userAssignedIdentityID in azure.json"
        : `assign user-assigned identity ${id.clientId} to this VM / scale set (az vm identity assign / az vmss identity assign), or fix userAssignedIdentityID in azure.json`;
  }
}

function networkFix(host: string): string {
  return `check that ${host} resolves and is reachable from this node (DNS, firewall, private endpoint, HTTPS_PROXY/NO_PROXY) and that its certificate is trusted (--ca-file)`;
}

function asKmsError(err: unknown, what: string): KmsError {
  if (err instanceof CheckTimeout) return new KmsError("DEADLINE_EXCEEDED", err.message);
  return kmsErrorFromAzure(err, what);
}

export async function checkToken(
  config: Config,
  credential: Credential,
  signal: AbortSignal,
): Promise<Verdict> {
  const scope = tokenScope(config);
  const who = describeIdentity(config.identity);
  try {
    const token = await credential.getToken(scope, { abortSignal: signal });
    if (token === null) {
      return {
        status: "FAIL",
        detail: `${who} got no token for ${scope}`,
        fix: identityFix(config),
      };
    }
    const minutes = Math.round((token.expiresOnTimestamp - Date.now()) / 60_000);
    return { status: "ok", detail: `${who} got a token for ${scope} (valid ${minutes} min)` };
  } catch (err) {
    const e = asKmsError(err, "getting a token");
    if (e.code === "UNAUTHENTICATED") {
      return {
        status: "FAIL",
        detail: `the token endpoint refused the identity: ${who}${e.message.includes("refused the identity") ? "" : ` (${e.message})`}`,
        fix: identityFix(config),
      };
    }
    const endpoint =
      config.identity.kind === "managed-identity"
        ? "the instance metadata service (169.254.169.254)"
        : config.authorityHost;
    return {
      status: "FAIL",
      detail: `no token for ${who}: ${e.message}`,
      fix: `${networkFix(endpoint)}; AZURE_AUTHORITY_HOST or the cloud in azure.json choose the token endpoint`,
    };
  }
}

/** A fix for a failed Key Vault call, by its KmsError code. */
export function keyVaultFix(config: Config, e: KmsError): string {
  switch (e.code) {
    case "PERMISSION_DENIED":
      return `grant ${describeIdentity(config.identity)} the role "Key Vault Crypto User" on the vault (or, with access policies, key permissions get, list, wrapKey, unwrapKey)`;
    case "UNAUTHENTICATED":
      return "Key Vault refused the token: the identity's tenant must be the vault's tenant (tenantId in azure.json), and the cloud must match the vault's";
    case "UNAVAILABLE":
    case "DEADLINE_EXCEEDED":
      return networkFix(config.vaultHost);
    case "FAILED_PRECONDITION":
      return "use an RSA, RSA-HSM or oct-HSM key whose key_ops include wrapKey and unwrapKey, with an enabled version (check --key-name, --key-version)";
    case "INVALID_ARGUMENT":
    case "CANCELLED":
    case "INTERNAL":
    case "UNKNOWN":
      return "see docs/troubleshooting.md for this message";
  }
}

function vaultName(config: Config): string {
  const first = config.vaultHost.split(".")[0] ?? "";
  return /^[A-Za-z][-A-Za-z0-9]*$/.test(first) ? first : "<vault-name>";
}

function azKeyArgs(config: Config): string {
  const flag = config.managedHsm ? "--hsm-name" : "--vault-name";
  return `${flag} ${vaultName(config)} --name ${config.keyName}`;
}

export interface KeyCheckResult {
  readonly verdict: Verdict;
  readonly facts?: KeyFacts;
}

export async function checkKey(
  config: Config,
  wrapper: KeyVaultWrapper,
  keys: KeyDetailsInput,
  signal: AbortSignal,
): Promise<KeyCheckResult> {
  const name = config.keyName;
  let state;
  try {
    state = await wrapper.refresh();
  } catch (err) {
    const e = asKmsError(err, `reading key ${name}`);
    return { verdict: { status: "FAIL", detail: e.message, fix: keyVaultFix(config, e) } };
  }
  if (state.versions.length === 0) {
    return {
      verdict: {
        status: "FAIL",
        detail: `key ${name} not found in ${config.vaultUrl}`,
        fix: `create it (az keyvault key create ${azKeyArgs(config)} --kty ${config.managedHsm ? "oct-HSM --size 256" : "RSA --size 2048"}) or correct --key-name`,
      },
    };
  }
  const newest = state.versions[0]?.keyVersion ?? "";
  const newestWhy = state.revocation(newest) ?? "not usable now (expired or not yet valid)";
  if (state.current === undefined) {
    const pinned = config.keyVersion !== "";
    return {
      verdict: {
        status: "FAIL",
        detail: pinned
          ? `key ${name}: pinned version ${config.keyVersion} is disabled, expired or not yet valid`
          : `key ${name} has no usable version (${state.versions.length} listed; the newest, ${newest}, is ${newestWhy})`,
        fix: `enable a version or create one: az keyvault key set-attributes ${azKeyArgs(config)} --version ${pinned ? config.keyVersion : newest} --enabled true, or az keyvault key rotate ${azKeyArgs(config)}`,
      },
    };
  }
  const current = state.current;
  let key: KeyDetails;
  try {
    key = await readKeyDetails(keys, current.keyVersion, signal);
  } catch (err) {
    const e = asKmsError(err, `reading key ${name}/${current.keyVersion}`);
    return { verdict: { status: "FAIL", detail: e.message, fix: keyVaultFix(config, e) } };
  }
  const facts: KeyFacts = { current, key };
  const what =
    `key ${name}: current version ${current.keyVersion}` +
    `${config.keyVersion === "" ? "" : " (pinned)"}, ${key.keyType ?? "?"}, ` +
    `key_ops ${key.keyOps.join(",")}; ${state.versions.length} version(s)`;
  if (config.keyVersion === "" && newest.toLowerCase() !== current.keyVersion.toLowerCase()) {
    return {
      facts,
      verdict: {
        status: "warn",
        detail: `${what}; the newest version, ${newest}, is ${newestWhy}, so the plugin uses ${current.keyVersion}`,
        fix: `if ${newest} was disabled by mistake: az keyvault key set-attributes ${azKeyArgs(config)} --version ${newest} --enabled true`,
      },
    };
  }
  if (state.limitation !== undefined) {
    return {
      facts,
      verdict: {
        status: "warn",
        detail: `${what}; ${state.limitation}`,
        fix: `grant ${describeIdentity(config.identity)} the keys "list" permission (az keyvault set-policy --key-permissions get list wrapKey unwrapKey) or the role "Key Vault Crypto User"`,
      },
    };
  }
  return { facts, verdict: { status: "ok", detail: what } };
}

export async function checkRoundTrip(
  config: Config,
  wrapper: KeyVaultWrapper,
  current: KeyReference,
  signal: AbortSignal,
): Promise<Verdict> {
  const seed = randomBytes(32);
  try {
    const wrapped = await wrapper.wrap(seed, current);
    const back = await wrapper.unwrap(wrapped, { signal });
    if (back.length !== seed.length || !timingSafeEqual(back, seed)) {
      return {
        status: "FAIL",
        detail: `Key Vault unwrapped a different value under ${current.keyVersion}`,
        fix: "the key version does not match its public key: create a new version (az keyvault key rotate)",
      };
    }
    const where = wrapped.algorithm === "RSA-OAEP-256" ? "locally" : "in Key Vault";
    return {
      status: "ok",
      detail: `wrapped a test seed under ${current.keyVersion} (${wrapped.algorithm}, ${where}) and Key Vault unwrapped it`,
    };
  } catch (err) {
    const e = asKmsError(err, `wrap/unwrap with ${config.keyName}/${current.keyVersion}`);
    return { status: "FAIL", detail: e.message, fix: keyVaultFix(config, e) };
  }
}

export function checkClockSkew(config: Config, facts: KeyFacts): Verdict {
  const fix =
    "synchronise this node's clock (chronyd or systemd-timesyncd; timedatectl status): tokens and key nbf/exp are checked against it";
  if (facts.key.serverDate === undefined) {
    // Managed HSM never sends one (its recorded answers have no Date header).
    return config.managedHsm
      ? { status: "ok", detail: "not measured: Managed HSM answers without a Date header" }
      : { status: "warn", detail: "Key Vault's answer had no Date header: skew not measured" };
  }
  const serverMs = Date.parse(facts.key.serverDate);
  if (Number.isNaN(serverMs)) {
    return { status: "warn", detail: `unreadable Date header "${facts.key.serverDate}"` };
  }
  // The header has one-second resolution: up to 1 s of the difference is rounding.
  const skewMs = facts.key.receivedAtMs - serverMs;
  const seconds = Math.round(skewMs / 1000);
  const detail = `local clock ${seconds >= 0 ? "+" : ""}${seconds} s from Key Vault's Date header (${facts.key.serverDate})`;
  const abs = Math.abs(skewMs) - 1000;
  if (abs > skewFailMs) return { status: "FAIL", detail, fix };
  if (abs > skewWarnMs) return { status: "warn", detail, fix };
  return { status: "ok", detail };
}

export function checkExpiry(config: Config, facts: KeyFacts, nowMs = Date.now()): Verdict {
  const version = facts.current.keyVersion;
  const exp = facts.key.expiresOn;
  if (exp === undefined) return { status: "ok", detail: `version ${version} has no expiry date` };
  const days = Math.floor((exp.getTime() - nowMs) / day);
  const detail = `version ${version} expires ${exp.toISOString()} (in ${days} days)`;
  if (exp.getTime() - nowMs > expiryWarnMs) return { status: "ok", detail };
  return {
    status: "warn",
    detail,
    fix:
      config.keyVersion === ""
        ? `give the key a rotation policy that makes a new version before expiry (az keyvault key rotation-policy update ${azKeyArgs(config)} --value policy.json), or create one now (az keyvault key rotate ${azKeyArgs(config)}); the plugin follows the newest version`
        : `create a new version (az keyvault key rotate ${azKeyArgs(config)}) and change --key-version to it, or drop --key-version to follow the newest version`,
  };
}
