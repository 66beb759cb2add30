import { Counter, Gauge, Histogram, type Registry } from "prom-client";
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
    help: "Tries after the first of one logical request (the plugin's retry policy resent it)",
    labelNames: ["operation"] as const,
    registers: [registry],
  });
  const rateLimited = new Counter({
    name: "azurekms_keyvault_ratelimited_total",
    help: "Key Vault requests held by the client-side rate limiter: delayed for their turn, or rejected unsent (the deadline would pass first)",
    labelNames: ["outcome"] as const,
    registers: [registry],
  });
  const circuit = new Gauge({
    name: "azurekms_keyvault_circuit_state",
    help: "Key Vault circuit breaker: 0 closed, 1 half-open (one probe in flight), 2 open (requests fail fast, unsent)",
    registers: [registry],
  });
  const allowance = new Gauge({
    name: "azurekms_keyvault_rate_limit_allowance",
    help: "Key Vault requests per 10 s the client-side rate limiter allows now: the key type's default (or --keyvault-rate-limit × 10), lowered while Key Vault answers 429",
    registers: [registry],
  });
  circuit.set(0);
  for (const outcome of ["delayed", "rejected"]) rateLimited.inc({ outcome }, 0);
  return {
    onRequest(operation, outcome, durationSeconds, isRetry) {
      duration.observe({ operation, outcome }, durationSeconds);
      requests.inc({ operation, outcome });
      if (isRetry) retries.inc({ operation });
    },
    onRateLimited(outcome) {
      rateLimited.inc({ outcome });
    },
    onAllowance(perWindow) {
      allowance.set(perWindow);
    },
    onCircuitState(state) {
      circuit.set(state);
    },
  };
}
