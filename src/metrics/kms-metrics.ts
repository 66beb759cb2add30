import { createHash } from "node:crypto";
import { Counter, Gauge, Registry } from "prom-client";
import type { KeyReference, KmsObserver, RevocationReason } from "../kms/index.js";

/** Beyond this many key versions, decrypts are counted under key_version="other". */
const maxVersionSeries = 100;

/**
 * kube-apiserver labels its KMS metrics with `sha256:<hex of SHA-256(key_id)>`
 * (apiserver_envelope_encryption_key_id_hash_*); the same label here lets the two be joined.
 */
export function keyIdHash(keyId: string): string {
  return `sha256:${createHash("sha256").update(keyId, "utf8").digest("hex")}`;
}

export interface KmsMetrics {
  readonly registry: Registry;
  /** Feeds the metrics from the domain's events. */
  readonly observer: KmsObserver;
}

/** Rotation and key-state metrics. Labels are bounded: versions of the configured key, fixed enums. */
export function createKmsMetrics(registry: Registry = new Registry()): KmsMetrics {
  const decrypts = new Counter({
    name: "azurekms_decrypt_key_version_total",
    help: "Successful Decrypts by the Key Vault key version of the seed: an old version whose count stops growing is no longer needed",
    labelNames: ["key_version"] as const,
    registers: [registry],
  });
  const keyInfo = new Gauge({
    name: "azurekms_current_key_info",
    help: "1 for the key version new data is encrypted under, with the key_id hash kube-apiserver reports",
    labelNames: ["key_version", "key_id_hash"] as const,
    registers: [registry],
  });
  const promotions = new Counter({
    name: "azurekms_key_version_promotions_total",
    help: "Times a new key version became current",
    registers: [registry],
  });
  const revocations = new Counter({
    name: "azurekms_key_version_revocations_total",
    help: "Key versions Key Vault reported unusable (disabled, expired, not yet valid, deleted)",
    labelNames: ["reason"] as const,
    registers: [registry],
  });
  const refreshFailures = new Counter({
    name: "azurekms_key_refresh_failures_total",
    help: "Failed reads of the key's versions (nothing is revoked on a failure)",
    labelNames: ["code"] as const,
    registers: [registry],
  });
  const seedsCreated = new Counter({
    name: "azurekms_seeds_created_total",
    help: "Seeds made: at start, on a key version promotion, or when the current one reached --seed-max-age",
    labelNames: ["cause"] as const,
    registers: [registry],
  });

  const unwrapRefused = new Gauge({
    name: "azurekms_unwrap_refused",
    help: "1 while Key Vault refuses to unwrap the current seed (the poll's proof): a permission (unwrapKey) or key_ops lost; data sealed now is unreadable after a restart until it is fixed",
    registers: [registry],
  });
  unwrapRefused.set(0);

  const seenVersions = new Set<string>();
  const versionLabel = (key: KeyReference): string => {
    if (seenVersions.has(key.keyVersion)) return key.keyVersion;
    if (seenVersions.size >= maxVersionSeries) return "other";
    seenVersions.add(key.keyVersion);
    return key.keyVersion;
  };

  const observer: KmsObserver = {
    onDecrypt(key) {
      decrypts.inc({ key_version: versionLabel(key) });
    },
    onCurrentKey(key, keyId) {
      keyInfo.reset();
      if (key !== undefined)
        keyInfo.set({ key_version: key.keyVersion, key_id_hash: keyIdHash(keyId) }, 1);
    },
    onPromote() {
      promotions.inc();
    },
    onRevoke(_version: string, reason: RevocationReason) {
      revocations.inc({ reason });
    },
    onSeedCreated(_key, cause) {
      seedsCreated.inc({ cause });
    },
    onRefreshFailed(error) {
      refreshFailures.inc({ code: error.code });
    },
    onUnwrapRefused(error) {
      unwrapRefused.set(error === undefined ? 0 : 1);
    },
  };
  return { registry, observer };
}
