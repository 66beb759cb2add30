import { Counter, Histogram, type Registry } from "prom-client";
import type { KeyVaultCallObserver } from "../keyvault/index.js";

/** 1 ms to ~16 s, doubling: a warm wrap takes a few ms, a throttled or cold one seconds. */
export const keyVaultDurationBuckets: readonly number[] = Array.from(
  { length: 15 },
  (_, i) => 0.001 * 2 ** i,
);

/**
 * Every try the Azure SDK sends (Key Vault and Entra ID tokens), by operation and outcome class.
 * Labels come from closed enums in src/keyvault: never a URL, a key name or error text.
 */
export function createKeyVaultMetrics(registry: Registry): KeyVaultCallObserver {
  const duration = new Histogram({
    name: "azurekms_keyvault_request_duration_seconds",
    help: "Duration of each try sent to Key Vault (and Entra ID, operation=token), by operation and outcome",
    labelNames: ["operation", "outcome"] as const,
    buckets: [...keyVaultDurationBuckets],
    registers: [registry],
  });
  const requests = new Counter({
    name: "azurekms_keyvault_requests_total",
    help: "Tries sent to Key Vault (and Entra ID, operation=token), by operation and outcome; retries included",
    labelNames: ["operation", "outcome"] as const,
    registers: [registry],
  });
  const retries = new Counter({
    name: "azurekms_keyvault_retries_total",
    help: "Tries after the first of one logical request (the SDK's retry policy resent it)",
    labelNames: ["operation"] as const,
    registers: [registry],
  });
  return {
    onRequest(operation, outcome, durationSeconds, isRetry) {
      duration.observe({ operation, outcome }, durationSeconds);
      requests.inc({ operation, outcome });
      if (isRetry) retries.inc({ operation });
    },
  };
}
