import { collectDefaultMetrics, Gauge, Registry } from "prom-client";
import type { KeyVaultCallObserver } from "../keyvault/index.js";
import type { KmsStats } from "../kms/index.js";
import { createGrpcMetrics, type GrpcMetrics } from "./grpc-metrics.js";
import { createKeyVaultMetrics } from "./keyvault-metrics.js";
import { createKmsMetrics, type KmsMetrics } from "./kms-metrics.js";
import { createServiceMetrics } from "./service-metrics.js";

export interface PluginMetricsOptions {
  readonly version: string;
  readonly commit: string;
  /** prom-client's process_* and nodejs_* metrics, under their standard names (default true). */
  readonly processMetrics?: boolean;
}

/** Every metric of a running plugin, on one registry. */
export interface PluginMetrics extends KmsMetrics {
  /** Pass as createKmsServer's observer (with the request log): one sample per finished call. */
  readonly grpc: GrpcMetrics;
  /** Pass to the Key Vault clients and the credential: one sample per try. */
  readonly keyVault: KeyVaultCallObserver;
  /** Connects the scrape-time seed metrics to the service once it exists. */
  watch(stats: () => KmsStats): void;
}

export function createPluginMetrics(options: PluginMetricsOptions): PluginMetrics {
  const registry = new Registry();
  const kms = createKmsMetrics(registry);
  const service = createServiceMetrics(registry);
  new Gauge({
    name: "azurekms_build_info",
    help: "1, labelled with the plugin's version and git commit",
    labelNames: ["version", "commit"] as const,
    registers: [registry],
  }).set({ version: options.version, commit: options.commit }, 1);
  if (options.processMetrics !== false) collectDefaultMetrics({ register: registry });
  return {
    registry,
    observer: kms.observer,
    grpc: createGrpcMetrics(registry),
    keyVault: createKeyVaultMetrics(registry),
    watch: (stats) => {
      service.watch(stats);
    },
  };
}
