import { Counter, Gauge, type Registry } from "prom-client";
import type { KmsStats } from "../kms/index.js";

/**
 * Seed cache and current-seed metrics, read from the service at scrape time: the request path
 * only bumps plain integers, and nothing here runs between scrapes.
 */
export function createServiceMetrics(registry: Registry): {
  watch(stats: () => KmsStats): void;
} {
  let source: (() => KmsStats) | undefined;
  // Each collector reads on its own (a few integers): no reliance on the order they run in.
  const read = (): KmsStats | undefined => source?.();
  new Counter({
    name: "azurekms_seed_cache_requests_total",
    help: "Decrypts by whether their seed was in memory (hit: current or cached) or needed a Key Vault unwrap (miss)",
    labelNames: ["result"] as const,
    registers: [registry],
    collect() {
      const s = read();
      this.reset();
      this.inc({ result: "hit" }, s?.seedCacheHits ?? 0);
      this.inc({ result: "miss" }, s?.seedCacheMisses ?? 0);
    },
  });
  new Gauge({
    name: "azurekms_seed_cache_size",
    help: "Unwrapped seeds held in memory (bounded by --cache-size)",
    registers: [registry],
    collect() {
      this.set(read()?.seedCacheSize ?? 0);
    },
  });
  new Counter({
    name: "azurekms_seed_cache_evictions_total",
    help: "Seeds dropped to make room in the cache; a steady rise means --cache-size is too small",
    registers: [registry],
    collect() {
      this.reset();
      this.inc(read()?.seedCacheEvictions ?? 0);
    },
  });
  new Gauge({
    name: "azurekms_seed_age_seconds",
    help: "How long the current seed has been current (absent while there is none)",
    registers: [registry],
    collect() {
      this.reset();
      const age = read()?.currentSeedAgeSeconds;
      if (age !== undefined) this.set(age);
    },
  });
  return {
    watch(stats) {
      source = stats;
    },
  };
}
