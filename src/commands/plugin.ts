import { setTimeout as sleep } from "node:timers/promises";
import { describeConfig, type Config } from "../config/index.js";
import { createKmsServer, prepareConnection } from "../grpc/index.js";
import {
  checkSocketLiveness,
  createHealthServer,
  createMetricsServer,
  KeyVaultTracker,
  maxHealthConnections,
  maxMetricsConnections,
  readinessOf,
  trackKeyVaultCalls,
} from "../http/index.js";
import { createKeyVaultWrapper, describeIdentity, routeAzureLogs } from "../keyvault/index.js";
import { createKmsService } from "../kms/index.js";
import { createRequestLog, type Logger } from "../log/index.js";
import { baseDescriptors, openFileLimit } from "../net/index.js";
import { createPluginMetrics, type PluginMetrics } from "../metrics/index.js";
import { buildInfo } from "../version.js";
import { fanOut, fanOutCalls, keyEventLogger } from "./key-events.js";
import { keyVaultSetup } from "./key-vault-setup.js";

/** In-flight calls get this long to finish on SIGTERM (kube-apiserver's default timeout is 3 s). */
const shutdownGraceMs = 5_000;
const initBackoff = { firstMs: 500, maxMs: 30_000 };

export interface RunningPlugin {
  readonly socketPath: string;
  /** Its `reachability.snapshot()` is Key Vault as the plugin's own calls last found it. */
  readonly metrics: PluginMetrics;
  /** `http://host:port/metrics`, or undefined if the port could not be bound. */
  readonly metricsUrl: string | undefined;
  /** `http://host:port` serving /livez, /readyz and --healthz-path; undefined if not bound. */
  readonly healthUrl: string | undefined;
  /** Settles when a current seed is ready (rejects only if stopped first). */
  readonly ready: Promise<void>;
  stop(): Promise<void>;
}

/**
 * Out of descriptors, libuv closes new connections unseen (its EMFILE trick), kube-apiserver's
 * included, and Node is never told: so say it at start, while the fix is a flag away.
 */
function warnOnLowFileLimit(config: Config, logger: Logger): void {
  const limit = openFileLimit();
  const need =
    config.maxConnections + maxMetricsConnections + maxHealthConnections + baseDescriptors;
  if (limit !== undefined && limit < need) {
    logger.warn(
      { limit, need },
      "the open-file limit (ulimit -n) is below what the connection bounds need: at the limit new connections, kube-apiserver's too, are closed unseen; raise the limit or lower --max-connections",
    );
  }
}

/**
 * Wires config → Key Vault → domain → gRPC, serves the socket at once, and loads the key in the
 * background: a Key Vault that is down at start-up makes the plugin not ready, not dead, and it
 * becomes ready by itself when Key Vault answers.
 */
export async function startPlugin(config: Config, logger: Logger): Promise<RunningPlugin> {
  logger.info(
    {
      config: describeConfig(config),
      identity: describeIdentity(config.identity),
      build: buildInfo,
    },
    "starting keyvault-kms",
  );
  for (const warning of config.warnings) logger.warn({}, warning);
  warnOnLowFileLimit(config, logger);
  routeAzureLogs(logger.child({ component: "azure-sdk" }), config.verbosity);
  const metrics = createPluginMetrics({
    version: buildInfo.BuildVersion,
    commit: buildInfo.GitCommit,
  });
  const { allowlist, wrapperOptions } = keyVaultSetup(config, metrics.keyVault);
  // Readiness reports Key Vault as the plugin's own calls last found it: probes never call it.
  const keyVaultTracker = new KeyVaultTracker();
  const keysLog = logger.child({ component: "keys" });
  const wrapper = trackKeyVaultCalls(
    createKeyVaultWrapper({
      ...wrapperOptions,
      onApiVersionFallback: (from, to) => {
        keysLog.warn(
          { from, to },
          "Key Vault does not know the SDK's api-version; every request now uses the one it named (set --keyvault-api-version to choose)",
        );
      },
    }),
    keyVaultTracker,
  );
  const service = createKmsService({
    wrapper,
    allowlist,
    cacheSize: config.cacheSize,
    statusVersion: config.statusVersion,
    pollIntervalMs: config.rotationPollIntervalMs,
    seedMaxAgeMs: config.seedMaxAgeMs,
    observer: fanOut(metrics.observer, keyEventLogger(keysLog)),
  });
  metrics.watch(() => service.stats());
  const server = createKmsServer({
    listenAddr: config.listenAddr,
    socketMode: config.socketMode,
    maxConnections: config.maxConnections,
    service,
    runtimeVersion: buildInfo.BuildVersion,
    wrapConnection: prepareConnection,
    observer: fanOutCalls(metrics.grpc, createRequestLog(logger.child({ component: "requests" }))),
    logger: logger.child({ component: "grpc" }),
  });
  await server.listen();
  logger.info({ socket: server.socketPath }, "serving KMS v2, v2alpha1 and v1beta1");
  const metricsServer = createMetricsServer(
    config.metricsAddress,
    metrics.registry,
    logger.child({ component: "metrics" }),
  );
  let metricsUrl: string | undefined;
  try {
    const bound = await metricsServer.listen();
    const host = bound.family === "IPv6" ? `[${bound.address}]` : bound.address;
    metricsUrl = `http://${host}:${bound.port}/metrics`;
    logger.info({ url: metricsUrl }, "serving Prometheus metrics");
  } catch (err) {
    // Metrics are for operators; a busy port must not take the API server's encryption down.
    logger.error(
      { err, metricsAddr: config.metricsAddress },
      "cannot serve /metrics; KMS keeps serving",
    );
  }

  const healthServer = createHealthServer({
    address: { host: config.healthzHost, port: config.healthzPort },
    healthzPath: config.healthzPath,
    timeoutMs: config.healthzTimeoutMs,
    checks: {
      live: () => checkSocketLiveness(server.socketPath, config.healthzTimeoutMs),
      ready: () => readinessOf(service, keyVaultTracker),
    },
    logger: logger.child({ component: "health" }),
  });
  let healthUrl: string | undefined;
  try {
    const bound = await healthServer.listen();
    const host = bound.family === "IPv6" ? `[${bound.address}]` : bound.address;
    healthUrl = `http://${host}:${bound.port}`;
    logger.info({ url: healthUrl }, `serving /livez, /readyz and ${config.healthzPath}`);
  } catch (err) {
    // Like /metrics: a busy port must not take the API server's encryption down.
    logger.error(
      { err, healthzAddr: config.healthzHost, healthzPort: config.healthzPort },
      "cannot serve the health endpoints; KMS keeps serving",
    );
  }

  const stopping = new AbortController();
  const ready = (async () => {
    for (let attempt = 0; ; attempt++) {
      try {
        await service.start();
        logger.info({ keyId: service.status().keyId }, "ready: current seed wrapped");
        return;
      } catch (err) {
        const delay = Math.min(initBackoff.maxMs, initBackoff.firstMs * 2 ** attempt);
        const jittered = Math.round(delay / 2 + Math.random() * (delay / 2));
        logger.warn({ err, retryInMs: jittered }, "not ready: cannot load the Key Vault key yet");
        await sleep(jittered, undefined, { signal: stopping.signal });
      }
    }
  })();
  ready.catch(() => undefined); // stop() before ready is not an error

  return {
    socketPath: server.socketPath,
    metrics,
    metricsUrl,
    healthUrl,
    ready,
    async stop() {
      stopping.abort();
      // First, so that probes see the shutdown and no self-check holds a socket connection open.
      await healthServer.close();
      await server.shutdown(shutdownGraceMs);
      service.close();
      await metricsServer.close();
      logger.info({}, "stopped");
    },
  };
}
