import { Histogram, type Registry } from "prom-client";

/** 50 µs to ~10 s, doubling: local calls take tens of µs, a cold unwrap tens of ms. */
export const grpcDurationBuckets: readonly number[] = [
  ...Array.from({ length: 18 }, (_, i) => 0.00005 * 2 ** i),
  10,
];

export interface GrpcMetrics {
  /** Same shape as grpc/'s CallObserver.onCall; the uid is deliberately not a label. */
  onCall(service: string, method: string, code: string, durationSeconds: number): void;
}

/** kube-apiserver's view of the plugin: every RPC by service version, method and status code. */
export function createGrpcMetrics(registry: Registry): GrpcMetrics {
  const duration = new Histogram({
    name: "azurekms_grpc_request_duration_seconds",
    help: "KMS gRPC calls served, by service (v2, v2alpha1, v1beta1), method and status code",
    labelNames: ["service", "method", "code"] as const,
    buckets: [...grpcDurationBuckets],
    registers: [registry],
  });
  return {
    onCall(service, method, code, durationSeconds) {
      duration.observe({ service, method, code }, durationSeconds);
    },
  };
}
