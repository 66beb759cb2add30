/* global process */
/**
 * Bench settings from the environment. BENCH_QUICK=1 is the CI smoke run: small sizes, short
 * runs, no targets judged (the table still prints).
 */

const num = (name, fallback) => {
  const v = process.env[name];
  if (v === undefined || v === "") return fallback;
  const n = Number(v);
  if (!Number.isFinite(n) || n < 0) throw new Error(`${name} must be a non-negative number`);
  return n;
};

export function benchConfig() {
  const quick = process.env.BENCH_QUICK === "1" || process.env.BENCH_QUICK === "true";
  return {
    quick,
    /** Measured seconds per scenario run (each side of a baseline/plugin pair). */
    seconds: num("BENCH_SECONDS", quick ? 1 : 10),
    warmupSeconds: num("BENCH_WARMUP_SECONDS", quick ? 0.5 : 2),
    /** Each scenario's seconds are cut into this many alternating baseline/plugin slices. */
    slices: Math.max(1, Math.round(num("BENCH_SLICES", quick ? 1 : 5))),
    concurrencies: [1, 32],
    /** Decrypts of the apiserver cold start, and Encrypts of the KMS v1 write path. */
    coldN: num("BENCH_COLD_N", quick ? 500 : 10_000),
    v1N: num("BENCH_V1_N", num("BENCH_COLD_N", quick ? 500 : 10_000)),
    seeds: 5,
    batchConcurrency: 16,
    kvLatencyMs: num("BENCH_KV_LATENCY_MS", 20),
    /** Seeds put in the plugin's cache before the memory figures; default: fill it (1000). */
    cacheSize: 1000,
    fillSeeds: num("BENCH_FILL_SEEDS", quick ? 100 : 999),
    startups: num("BENCH_STARTUPS", 5),
    /** Distinct ciphertexts the cached-Decrypt scenario cycles through. */
    decryptPool: 1024,
  };
}

/** Issue 7's targets: plugin / baseline ratios, and absolute memory / cold-start bounds. */
export const targets = {
  encryptP50: 1.15,
  encryptP99: 1.5,
  decryptP50: 1.15,
  decryptP99: 1.5,
  statusP50: 1.1,
  throughputC32: 0.85,
  coldOverWarm: 1.3,
  rssMiB: 150,
  /** "No growth": the last RSS sample at most this much above the first (after warm-up). */
  rssGrowthMiB: 10,
};
