export { createMetricsServer, maxMetricsConnections } from "./metrics-server.js";
export type { MetricsServer, MetricsSource } from "./metrics-server.js";
export { HttpAddressError, parseHttpAddress } from "./listen-address.js";
export type { HttpAddress } from "./listen-address.js";
export { createHealthServer, maxHealthConnections } from "./health-server.js";
export type {
  HealthChecks,
  HealthServer,
  HealthServerOptions,
  Readiness,
} from "./health-server.js";
export { KeyVaultTracker, trackKeyVaultCalls } from "./key-vault-tracker.js";
export type { KeyVaultView } from "./key-vault-tracker.js";
export { checkSocketLiveness } from "./socket-liveness.js";
export type { LivenessResult } from "./socket-liveness.js";
export { readinessOf } from "./readiness.js";
