/* global process, console */
/**
 * What a bench run prints and keeps: machine facts, the table (every figure, its ratio, PASS or
 * MISS against the targets in bench/lib/config.mjs, explained in docs/benchmarks.md) and the JSON file in bench/results/.
 */
import { execFileSync } from "node:child_process";
import { mkdirSync, renameSync, writeFileSync } from "node:fs";
import { cpus, loadavg, platform, release, totalmem, arch } from "node:os";
import { join } from "node:path";
import { benchDir } from "./processes.mjs";

function git(args) {
  try {
    return execFileSync("git", args, { cwd: benchDir, encoding: "utf8", stdio: "pipe" }).trim();
  } catch {
    return undefined;
  }
}

export function machineInfo() {
  const cpu = cpus();
  const status = git(["status", "--porcelain"]);
  return {
    os: `${platform()} ${release()} ${arch()}`,
    cpuModel: cpu[0]?.model ?? "unknown",
    cpuCount: cpu.length,
    totalMemMiB: Math.round(totalmem() / 1048576),
    node: process.version,
    gitCommit: git(["rev-parse", "HEAD"]),
    gitDirty: status === undefined ? undefined : status.length > 0,
    loadAvgStart: loadavg().map((x) => Number(x.toFixed(2))),
  };
}

/** A judged figure: `value` against `limit`, "<=" or ">=" (or "=" for exact counts). */
export function check(name, value, op, limit) {
  const pass =
    op === "<="
      ? value <= limit
      : op === ">="
        ? value >= limit
        : op === "<"
          ? value < limit
          : value === limit;
  return { name, value, op, limit, pass: Number.isNaN(value) ? false : pass };
}

const fmt = (x, digits = 3) => {
  if (x === undefined || x === null) return "-";
  if (typeof x !== "number") return String(x);
  if (Number.isNaN(x)) return "?";
  if (Number.isInteger(x)) return String(x);
  return Math.abs(x) >= 100 ? x.toFixed(0) : Math.abs(x) >= 10 ? x.toFixed(1) : x.toFixed(digits);
};

/**
 * Rows: [figure, plugin, reference, ratio, target (e.g. "<= 1.15"), pass (true/false/undefined)].
 * Sections: a string row.
 */
export function printTable(rows, judged) {
  const header = ["figure", "plugin", "reference", "ratio", "target", "result"];
  const cells = rows.map((r) =>
    typeof r === "string"
      ? r
      : [
          r[0],
          fmt(r[1]),
          fmt(r[2]),
          fmt(r[3]),
          r[4] ?? "",
          r[5] === undefined ? "" : r[5] ? "PASS" : "MISS",
        ],
  );
  const widths = header.map((h, i) =>
    Math.max(h.length, ...cells.filter((c) => typeof c !== "string").map((c) => c[i].length)),
  );
  const line = (c) =>
    c.map((x, i) => (i === 0 ? x.padEnd(widths[i]) : x.padStart(widths[i]))).join("  ");
  console.log(line(header));
  console.log(widths.map((w) => "-".repeat(w)).join("  "));
  for (const c of cells) {
    // A heading gets a blank line before it; an indented note belongs to the rows above.
    if (typeof c === "string") console.log(c.startsWith(" ") ? c : `\n${c}`);
    else console.log(line(c));
  }
  if (!judged)
    console.log("\n(quick mode: sizes too small to judge; PASS/MISS shown for information)");
}

/** bench/results/<date>.json (quick runs: <date>-quick.json), written whole or not at all. */
export function writeResults(result, quick) {
  const dir = join(benchDir, "results");
  mkdirSync(dir, { recursive: true });
  const date = new Date().toISOString().slice(0, 10);
  const file = process.env.BENCH_OUT || join(dir, `${date}${quick ? "-quick" : ""}.json`);
  writeFileSync(`${file}.tmp`, `${JSON.stringify(result, null, 2)}\n`);
  renameSync(`${file}.tmp`, file);
  return file;
}
