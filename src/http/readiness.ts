import { toKmsError, type KmsError, type StatusResult } from "../kms/index.js";
import type { Readiness } from "./health-server.js";
import type { KeyVaultTracker } from "./key-vault-tracker.js";

/**
 * Readiness as kube-apiserver would judge it from Status (from memory): ready while a current seed
 * is ready. A Key Vault outage with a seed in memory stays ready, since encryption goes on; the
 * outage shows in `keyVault`. Not ready while Key Vault refuses to unwrap the current seed (a
 * permission lost): Status stays ok, so kube-apiserver keeps writing, but an operator must act
 * before the next restart.
 */
export function readinessOf(
  service: { status(): StatusResult; unwrapRefused?(): KmsError | undefined },
  tracker: KeyVaultTracker,
): Readiness {
  const keyVault = tracker.view();
  try {
    const status = service.status();
    const refused = service.unwrapRefused?.();
    if (status.healthz === "ok" && refused !== undefined) {
      return {
        ready: false,
        reason: `${refused.code}: ${refused.message}`,
        keyId: status.keyId,
        keyVault,
      };
    }
    const ready = status.healthz === "ok";
    return { ready, reason: status.healthz, keyId: ready ? status.keyId : "", keyVault };
  } catch (err) {
    // Status' KmsError messages are short and safe to show (see KmsError).
    const error = toKmsError(err, "Status");
    return { ready: false, reason: `${error.code}: ${error.message}`, keyId: "", keyVault };
  }
}
