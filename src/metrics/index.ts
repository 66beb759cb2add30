export { createKmsMetrics, keyIdHash } from "./kms-metrics.js";
export type { KmsMetrics } from "./kms-metrics.js";
