export { createKmsMetrics, keyIdHash } from "./kms-metrics.js";
export type { KmsMetrics } from "./kms-metrics.js";
export { createGrpcMetrics, grpcDurationBuckets } from "./grpc-metrics.js";
export type { GrpcMetrics } from "./grpc-metrics.js";
