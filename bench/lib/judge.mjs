/**
 * Issue 7's targets applied to a run's result, and the table rows that show every figure with
 * its reference, ratio and verdict.
 */
import { targets as T } from "./config.mjs";
import { check } from "./report.mjs";

const NAMES = { status: "Status", encrypt: "Encrypt", decrypt: "Decrypt (cached)" };

/** Ratio targets of one scenario: { p50, p99, throughput } → [op, limit] or undefined. */
function limitTargets(op, concurrency) {
  const p50 = op === "status" ? T.statusP50 : op === "encrypt" ? T.encryptP50 : T.decryptP50;
  const p99 = op === "encrypt" ? T.encryptP99 : op === "decrypt" ? T.decryptP99 : undefined;
  return {
    p50: ["<=", p50],
    p99: p99 === undefined ? undefined : ["<=", p99],
    throughput: concurrency === 32 ? [">=", T.throughputC32] : undefined,
  };
}

const rssMax = (r) =>
  Math.max(r.memory.peakRssUnderLoadMiB, ...r.memory.samples.map((s) => s.rssMiB));

export function judge(r) {
  const out = [];
  for (const s of r.limit.scenarios) {
    const t = limitTargets(s.op, s.concurrency);
    for (const k of ["p50", "p99", "throughput"]) {
      if (t[k]) out.push(check(`${s.op} c${s.concurrency} ${k} ratio`, s.ratios[k], ...t[k]));
    }
  }
  const cs = r.goDesign.coldStart;
  out.push(
    check(
      "cold start Key Vault requests = seeds",
      cs.plugin.cold.keyVault.total,
      "=",
      r.settings.seeds,
    ),
  );
  out.push(check("cold start wall cold/warm", cs.ratios.coldOverWarm, "<=", T.coldOverWarm));
  out.push(
    check("v1 write path Key Vault requests", r.goDesign.v1Write.plugin.keyVault.total, "=", 0),
  );
  out.push(check("RSS under load, cache full (MiB)", rssMax(r), "<", T.rssMiB));
  out.push(
    check("RSS growth across scenarios (MiB)", r.memory.growth.rssMiB, "<=", T.rssGrowthMiB),
  );
  return out;
}

const verdict = (targets, name) => targets.find((t) => t.name === name);
const targetText = (t) => (t === undefined ? undefined : `${t.op} ${t.limit}`);

/** Table rows for printTable: [figure, plugin, reference, ratio, target, pass] or a heading. */
export function tableRows(r) {
  const rows = [];
  const judged = (figure, plugin, ref, ratio, name) => {
    const t = name && verdict(r.targets, name);
    rows.push([figure, plugin, ref, ratio, targetText(t), t?.pass]);
  };

  rows.push(
    `1. Against the limit: plugin vs an empty grpc-js server (reference), latency in ms; ` +
      `medians over ${r.settings.slices} alternating slices, ratio = median of the slices' ratios`,
  );
  for (const s of r.limit.scenarios) {
    const label = `${NAMES[s.op]} c${s.concurrency}`;
    const p = s.plugin.latency;
    const b = s.baseline.latency;
    judged(`${label} p50`, p.p50, b.p50, s.ratios.p50, `${s.op} c${s.concurrency} p50 ratio`);
    judged(`${label} p99`, p.p99, b.p99, s.ratios.p99, `${s.op} c${s.concurrency} p99 ratio`);
    judged(`${label} p99.9`, p.p999, b.p999, s.ratios.p999);
    judged(
      `${label} throughput /s`,
      s.plugin.throughput,
      s.baseline.throughput,
      s.ratios.throughput,
      `${s.op} c${s.concurrency} throughput ratio`,
    );
  }
  rows.push(
    `   Key Vault requests during these runs: ${r.limit.keyVaultDuring.total} ${JSON.stringify(r.limit.keyVaultDuring.byOperation)}`,
  );

  const g = r.goDesign;
  const cs = g.coldStart;
  const n = cs.plugin.cold.n;
  rows.push(
    `2. Against the Go plugin's design: direct mode (reference), Key Vault latency ${g.kvLatencyMs} ms, concurrency 16`,
  );
  judged(
    `cold start: ${n} Decrypts, ${cs.seedsInData} seeds, wall ms`,
    cs.plugin.cold.wallMs,
    cs.direct.wallMs,
    cs.ratios.pluginColdOverDirect,
  );
  judged(
    "cold start: Key Vault requests",
    cs.plugin.cold.keyVault.total,
    cs.direct.keyVault.total,
    cs.plugin.cold.keyVault.total / cs.direct.keyVault.total,
    "cold start Key Vault requests = seeds",
  );
  rows.push(
    `   by operation: plugin cold ${JSON.stringify(cs.plugin.cold.keyVault.byOperation)}, ` +
      `warm ${JSON.stringify(cs.plugin.warm.keyVault.byOperation)}, direct ${JSON.stringify(cs.direct.keyVault.byOperation)}`,
  );
  judged(
    "cold start: p99 ms",
    cs.plugin.cold.latency.p99,
    cs.direct.latency.p99,
    cs.ratios.p99ColdOverDirect,
  );
  judged(
    "cold start: wall ms, cold vs warm (reference: same Decrypts warm)",
    cs.plugin.cold.wallMs,
    cs.plugin.warm.wallMs,
    cs.ratios.coldOverWarm,
    "cold start wall cold/warm",
  );
  const v1 = g.v1Write;
  judged(
    `v1 write path: ${v1.plugin.n} Encrypts, wall ms`,
    v1.plugin.wallMs,
    v1.direct.wallMs,
    v1.ratios.wall,
  );
  judged(
    "v1 write path: Key Vault requests",
    v1.plugin.keyVault.total,
    v1.direct.keyVault.total,
    undefined,
    "v1 write path Key Vault requests",
  );
  judged("v1 write path: p99 ms", v1.plugin.latency.p99, v1.direct.latency.p99, v1.ratios.p99);

  const m = r.memory;
  rows.push(
    `3. Memory of the plugin, MiB, seed cache ${r.fill.seedsCached} of --cache-size ${r.fill.cacheSize} ` +
      "(reference: the baseline server's RSS at the same point)",
  );
  // The baseline's own series (after each limit scenario) shows what grpc-js and V8 alone do.
  const base = m.samples.map((x) => x.baselineRssMiB).filter((x) => x !== undefined);
  const baseGrowth = base.length > 1 ? Math.round((base.at(-1) - base[0]) * 10) / 10 : undefined;
  judged(
    "RSS, highest (under load and after each scenario)",
    rssMax(r),
    base.length ? Math.max(...base) : undefined,
    undefined,
    "RSS under load, cache full (MiB)",
  );
  judged(
    "RSS growth, after warm-up → end (reference: its first → last)",
    m.growth.rssMiB,
    baseGrowth,
    undefined,
    "RSS growth across scenarios (MiB)",
  );
  judged("heap growth, after warm-up → end", m.growth.heapMiB);
  for (const s of m.samples) {
    rows.push([`RSS ${s.label} (heap ${s.heapMiB})`, s.rssMiB, s.baselineRssMiB]);
  }
  const fresh = r.goDesign.coldStart.plugin.rssMiBAfter;
  rows.push([`RSS of the cold-start plugin after its runs`, Math.round(fresh * 10) / 10]);

  rows.push(
    `4. Start-up, ms from spawn, median of ${r.startup.runs.length} starts (reference: the baseline server)`,
  );
  const su = r.startup.median;
  const bs = r.startup.baseline.median;
  judged("socket accepts connections", su.socketMs, bs.socketMs);
  judged("Status answers healthz ok", su.statusOkMs, bs.statusOkMs);
  judged("first Encrypt succeeds", su.firstEncryptMs, bs.firstEncryptMs);
  return rows;
}
