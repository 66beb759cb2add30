export { createKmsMetrics, keyIdHash } from "./kms-metrics.js";
export type { KmsMetrics } from "./kms-metrics.js";
export { createGrpcMetrics, grpcDurationBuckets } from "./grpc-metrics.js";
export type { GrpcMetrics } from "./grpc-metrics.js";
export { createKeyVaultMetrics, keyVaultDurationBuckets } from "./keyvault-metrics.js";
export { createServiceMetrics } from "./service-metrics.js";
export { createPluginMetrics } from "./plugin-metrics.js";
export type { PluginMetrics, PluginMetricsOptions } from "./plugin-metrics.js";
