/**
 * The bench's phases, in the order run.mjs calls them. Each takes the run's context:
 * { cfg, emu, client, broken, start(command), stop(server), log(msg) } and returns its figures.
 */
import { performance } from "node:perf_hooks";
import { memoryTracker } from "./memory.mjs";
import { rssMiB } from "./processes.mjs";
import { envelopesUnderNewSeeds } from "./seeds.mjs";
import { baselineCommand, directCommand, pluginCommand } from "./servers.mjs";
import { median } from "./stats.mjs";

const KV_CRYPTO_OPS = ["wrapkey", "unwrapkey", "encrypt", "decrypt"];

/** Key Vault requests between two emulator counter snapshots: total and the non-zero ones. */
export function kvDiff(before, after) {
  const byOperation = {};
  let total = 0;
  for (const [op, n] of Object.entries(after)) {
    const d = n - (before[op] ?? 0);
    if (d !== 0) {
      byOperation[op] = d;
      total += d;
    }
  }
  return { total, byOperation };
}

/** Records what broke (wrong plaintexts, failed calls) in a load-client result; returns it. */
export function expectClean(broken, what, result) {
  const errors = Object.values(result.errors ?? {}).reduce((a, b) => a + b, 0);
  if (result.wrong > 0) broken.push(`${what}: ${result.wrong} wrong plaintexts`);
  if (errors > 0) broken.push(`${what}: ${errors} failed calls (${result.firstError})`);
  return result;
}

/** After the first slice the connection is warm: a short settle between slices is enough. */
const SLICE_WARMUP_MS = 250;

/** One side's slices as one figure: the median of each latency quantile and of throughput. */
function combineSlices(results) {
  const latency = {};
  for (const k of Object.keys(results[0].latency)) {
    latency[k] = median(results.map((r) => r.latency[k]));
  }
  return {
    latency,
    throughput: median(results.map((r) => r.throughput)),
    calls: results.reduce((a, r) => a + (r.latency.count ?? 0), 0),
    wrong: results.reduce((a, r) => a + r.wrong, 0),
    slices: results,
  };
}

const medians = (runs) =>
  Object.fromEntries(Object.keys(runs[0]).map((k) => [k, median(runs.map((s) => s[k]))]));

/**
 * 4. Start-up: fresh plugins one at a time. The first `seeds` of them also write the
 * cold-start data (dataset "cold"), each under its own seed: every plugin process makes one.
 */
export async function startupPhase(ctx) {
  const { cfg, client } = ctx;
  const runs = [];
  let sample;
  for (let i = 0; i < Math.max(cfg.startups, cfg.seeds); i++) {
    const p = await ctx.start(await pluginCommand(ctx.emu, ctx.dir));
    runs.push(p.startup);
    sample ??= p.sample;
    if (i < cfg.seeds) {
      await client.call("connect", { name: p.name, socket: p.socketPath });
      const share = Math.floor(cfg.coldN / cfg.seeds) + (i < cfg.coldN % cfg.seeds ? 1 : 0);
      const r = await client.call("encryptBatch", {
        name: p.name,
        api: "v2",
        n: share,
        concurrency: cfg.batchConcurrency,
        store: "cold",
        append: true,
      });
      expectClean(ctx.broken, "writing cold-start data", r);
    }
    await ctx.stop(p);
  }
  const coldData = await client.call("datasetInfo", { name: "cold" });
  if (coldData.distinctSeeds !== cfg.seeds) {
    ctx.broken.push(`cold-start data: ${coldData.distinctSeeds} seeds, expected ${cfg.seeds}`);
  }
  ctx.log(`start-up: ${JSON.stringify(medians(runs))}; cold data ${JSON.stringify(coldData)}`);
  return { runs, median: medians(runs), sample, coldData };
}

/**
 * The plugin under test for parts 1 and 3 and the v1 write path (default --cache-size), its
 * seed cache filled: one Decrypt per new seed, each a Key Vault unwrap (concurrency 4: the
 * plugin's client-side Key Vault rate limit, 50/s, paces it anyway). Then the ciphertexts under
 * its current seed that the cached-Decrypt scenario cycles through (dataset "pool").
 */
export async function mainPluginPhase(ctx) {
  const { cfg, client, emu } = ctx;
  const plugin = await ctx.start(await pluginCommand(emu, ctx.dir));
  await client.call("connect", { name: plugin.name, socket: plugin.socketPath });
  const memory = memoryTracker(plugin);
  const t0 = performance.now();
  const before = emu.counters();
  const items = await envelopesUnderNewSeeds(emu, plugin.sample.ciphertext, cfg.fillSeeds);
  await client.call("putDataset", { name: "fill", items });
  const batch = { name: plugin.name, api: "v2", concurrency: 4 };
  expectClean(
    ctx.broken,
    "cache fill",
    await client.call("decryptBatch", { ...batch, pool: "fill" }),
  );
  const pool = await client.call("encryptBatch", {
    ...batch,
    n: cfg.decryptPool,
    concurrency: cfg.batchConcurrency,
    store: "pool",
  });
  expectClean(ctx.broken, "Decrypt pool", pool);
  const afterFill = await memory.sample("after warm-up (cache filled)");
  const fill = {
    seedsMade: cfg.fillSeeds,
    seedsCached: afterFill.seedsCached,
    cacheSize: cfg.cacheSize,
    keyVault: kvDiff(before, emu.counters()),
    wallMs: performance.now() - t0,
  };
  ctx.log(`cache fill: ${JSON.stringify(fill)}`);
  return { plugin, memory, fill };
}

/**
 * 1. Against the limit: the baseline (its start-up measured like the plugin's), then Status,
 * Encrypt and cached Decrypt at each concurrency on both, in alternating slices (BENCH_SLICES)
 * so that drift in the machine's load hits both alike; one client process drives both.
 */
export async function limitPhase(ctx, { plugin, memory, sample }) {
  const { cfg, client, emu } = ctx;
  const answers = {
    keyId: sample.keyId,
    ciphertext: sample.ciphertext,
    plaintext: sample.plaintext,
  };
  const startups = [];
  let baseline;
  for (let i = 0; i < cfg.startups; i++) {
    if (baseline !== undefined) await ctx.stop(baseline);
    baseline = await ctx.start(baselineCommand(ctx.dir, answers));
    startups.push(baseline.startup);
  }
  await client.call("connect", { name: baseline.name, socket: baseline.socketPath });
  const servers = { baseline, plugin };
  const before = emu.counters();
  const scenarios = [];
  let turn = 0;
  for (const op of ["status", "encrypt", "decrypt"]) {
    for (const concurrency of cfg.concurrencies) {
      const scenario = { op, concurrency };
      const slices = { baseline: [], plugin: [] };
      const sliceRatios = [];
      // Short alternating slices: a drift in the machine's speed hits both sides alike, and each
      // ratio compares two neighbouring slices. The medians over slices are reported.
      for (let i = 0; i < cfg.slices; i++) {
        const pair = {};
        for (const side of (turn + i) % 2 === 0 ? ["baseline", "plugin"] : ["plugin", "baseline"]) {
          if (side === "plugin") memory.loadStarted();
          const r = await client.call("run", {
            name: servers[side].name,
            op,
            concurrency,
            warmupMs: i === 0 ? cfg.warmupSeconds * 1000 : SLICE_WARMUP_MS,
            durationMs: (cfg.seconds * 1000) / cfg.slices,
            pool: "pool",
            // The baseline answers one fixed plaintext; the plugin each item's own.
            fixedPlaintext: side === "baseline" ? sample.plaintext : undefined,
            verify: side === "plugin",
          });
          pair[side] = expectClean(ctx.broken, `${side} ${op} c${concurrency}`, r);
          slices[side].push(r);
          if (side === "plugin") memory.loadStopped();
        }
        const ratio = (k) => pair.plugin.latency[k] / pair.baseline.latency[k];
        sliceRatios.push({
          p50: ratio("p50"),
          p99: ratio("p99"),
          p999: ratio("p999"),
          throughput: pair.plugin.throughput / pair.baseline.throughput,
        });
      }
      turn++;
      scenario.baseline = combineSlices(slices.baseline);
      scenario.plugin = combineSlices(slices.plugin);
      scenario.sliceRatios = sliceRatios;
      await memory.sample(`after ${op} c${concurrency}`, {
        baselineRssMiB: await rssMiB(baseline.pid),
      });
      const medianOf = (k) => median(sliceRatios.map((r) => r[k]));
      scenario.ratios = {
        p50: medianOf("p50"),
        p99: medianOf("p99"),
        p999: medianOf("p999"),
        throughput: medianOf("throughput"),
      };
      scenarios.push(scenario);
      const [p, b] = [scenario.plugin, scenario.baseline];
      ctx.log(
        `${op} c${concurrency}: p50 ${p.latency.p50} / ${b.latency.p50} ms, ` +
          `throughput ${p.throughput.toFixed(0)} / ${b.throughput.toFixed(0)} /s (plugin / baseline)`,
      );
    }
  }
  const keyVaultDuring = kvDiff(before, emu.counters());
  await ctx.stop(baseline);
  return {
    scenarios,
    keyVaultDuring,
    baselineStartup: { runs: startups, median: medians(startups) },
  };
}

/**
 * 2. Against the Go plugin's design, with every Key Vault crypto operation answering after
 * kvLatencyMs: the KMS v1 write path (Encrypts) and the apiserver cold start (Decrypts of the
 * "cold" data on a fresh plugin, then again warm) on the plugin, then both on the direct mode.
 */
export async function goDesignPhase(ctx, { plugin, memory, coldData }) {
  const { cfg, client, emu } = ctx;
  for (const operation of KV_CRYPTO_OPS) {
    emu.addFault({ operation, kind: "latency", ms: cfg.kvLatencyMs });
  }
  const measured = async (what, call, args) => {
    const snap = emu.counters();
    const r = expectClean(ctx.broken, what, await client.call(call, args));
    r.keyVault = kvDiff(snap, emu.counters());
    ctx.log(
      `${what}: wall ${r.wallMs.toFixed(0)} ms, p99 ${r.latency.p99} ms, Key Vault ${r.keyVault.total}`,
    );
    return r;
  };
  const batch = { concurrency: cfg.batchConcurrency };
  try {
    // KMS v1 write path on the plugin (cache full): every Encrypt local.
    memory.loadStarted();
    const v1Plugin = await measured("v1 write path, plugin", "encryptBatch", {
      ...batch,
      name: plugin.name,
      api: "v1",
      n: cfg.v1N,
      store: "v1-plugin",
    });
    memory.loadStopped();
    await memory.sample("after v1 write path");
    const check = await client.call("decryptBatch", {
      ...batch,
      name: plugin.name,
      api: "v1",
      pool: "v1-plugin",
    });
    expectClean(ctx.broken, "v1 write path, plugin (checked by Decrypt)", check);

    // apiserver cold start: a fresh plugin (empty cache) decrypts everything, then again warm.
    const fresh = await ctx.start(await pluginCommand(emu, ctx.dir));
    await client.call("connect", { name: fresh.name, socket: fresh.socketPath });
    const onFresh = { ...batch, name: fresh.name, api: "v2", pool: "cold" };
    const cold = await measured("cold start, plugin (cold)", "decryptBatch", onFresh);
    const warm = await measured("cold start, plugin (warm)", "decryptBatch", onFresh);
    const freshRssMiB = await rssMiB(fresh.pid);
    await ctx.stop(fresh);

    // The direct mode: v1 write path (its Encrypts are its cold-start data), then cold start.
    const direct = await ctx.start(directCommand(emu, ctx.dir));
    await client.call("connect", { name: direct.name, socket: direct.socketPath });
    const onDirect = { ...batch, name: direct.name };
    const v1Direct = await measured("v1 write path, direct", "encryptBatch", {
      ...onDirect,
      api: "v1",
      n: cfg.v1N,
      store: "direct",
    });
    const coldDirect = await measured("cold start, direct", "decryptBatch", {
      ...onDirect,
      api: "v2",
      pool: "direct",
    });
    await ctx.stop(direct);

    return {
      kvLatencyMs: cfg.kvLatencyMs,
      coldStart: {
        seedsInData: coldData.distinctSeeds,
        plugin: { cold, warm, rssMiBAfter: freshRssMiB },
        direct: coldDirect,
        ratios: {
          coldOverWarm: cold.wallMs / warm.wallMs,
          pluginColdOverDirect: cold.wallMs / coldDirect.wallMs,
          p99ColdOverDirect: cold.latency.p99 / coldDirect.latency.p99,
        },
      },
      v1Write: {
        plugin: v1Plugin,
        direct: v1Direct,
        ratios: {
          wall: v1Plugin.wallMs / v1Direct.wallMs,
          p99: v1Plugin.latency.p99 / v1Direct.latency.p99,
        },
      },
    };
  } finally {
    memory.loadStopped();
    emu.clearFaults();
  }
}
