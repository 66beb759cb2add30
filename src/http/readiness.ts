import { toKmsError, type StatusResult } from "../kms/index.js";
import type { Readiness } from "./health-server.js";
import type { KeyVaultTracker } from "./key-vault-tracker.js";

/**
 * Readiness as kube-apiserver would judge it from Status (from memory): ready while a current seed
 * is ready. A Key Vault outage with a seed in memory stays ready, since encryption goes on; the
 * outage shows in `keyVault`.
 */
export function readinessOf(
  service: { status(): StatusResult },
  tracker: KeyVaultTracker,
): Readiness {
  const keyVault = tracker.view();
  try {
    const status = service.status();
    const ready = status.healthz === "ok";
    return { ready, reason: status.healthz, keyId: ready ? status.keyId : "", keyVault };
  } catch (err) {
    // Status' KmsError messages are short and safe to show (see KmsError).
    const error = toKmsError(err, "Status");
    return { ready: false, reason: `${error.code}: ${error.message}`, keyId: "", keyVault };
  }
}
