#!/usr/bin/env node
/**
 * Soak test (`npm run soak`, not part of `npm test`): the plugin (the built CLI, `serve`, as its
 * own process) against the in-process Key Vault emulator, 64 concurrent gRPC clients doing
 * Encrypt / Decrypt for SOAK_SECONDS (default 600) while faults are injected on a schedule.
 *
 * A small --cache-size and a short --seed-max-age make the plugin make a new seed every few
 * seconds and forget old ones, so a steady share of Decrypts needs a Key Vault unwrap and meets
 * the faults. Every Decrypt that succeeds is compared with what was encrypted: a single wrong
 * result makes the exit code 1.
 *
 * Decrypts pick a recent ciphertext (a seed still cached) SOAK_RECENT_SHARE (0.8) of the time and
 * any ciphertext of the run otherwise (mostly seeds long evicted: a Key Vault unwrap each).
 *
 * Env: SOAK_SECONDS (600), SOAK_CLIENTS (64), SOAK_REPORT_SECONDS (30), SOAK_CYCLE_SCALE (1: the
 * fault cycle is 60 s), SOAK_CACHE_SIZE (4), SOAK_SEED_MAX_AGE (2s), SOAK_JSON (a file for the
 * final summary). Needs `npm run build` first (the script does it).
 */
/* global process, console, performance, setTimeout, setInterval, clearInterval, URL, fetch, Buffer */
import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { contractLine } from "../dist/commands/emulator.js";
import { createEmulator } from "@keyvault-kms/emulator";
import { KeyManagementService } from "../dist/gen/v2/api_pb.js";
import { createPromiseClient, KmsClientError } from "../dist/grpc/promise-client.js";

const env = (name, fallback) => {
  const v = process.env[name];
  return v === undefined || v === "" ? fallback : Number(v);
};
const SECONDS = env("SOAK_SECONDS", 600);
const CLIENTS = env("SOAK_CLIENTS", 64);
const REPORT_SECONDS = env("SOAK_REPORT_SECONDS", 30);
const CYCLE_SCALE = env("SOAK_CYCLE_SCALE", 1);
const CACHE_SIZE = env("SOAK_CACHE_SIZE", 4);
const SEED_MAX_AGE = process.env.SOAK_SEED_MAX_AGE || "2s";
const DEADLINE_MS = 3000; // kube-apiserver's default KMS timeout
const POOL_SIZE = 20_000;
/** Share of Decrypts of recent ciphertexts (seeds still cached); the rest pick any (mostly uncached). */
const RECENT_SHARE = env("SOAK_RECENT_SHARE", 0.8);
const RECENT = 256;
const cliPath = fileURLToPath(new URL("../dist/cli.js", import.meta.url));

/** One fault cycle (60 s at scale 1): [seconds, label, faults]. Every window is cleared after. */
const CYCLE = [
  [10, "clean", []],
  [5, "429 Retry-After:1 (unwrapkey)", [{ operation: "unwrapkey", kind: "429", retryAfter: 1 }]],
  [5, "clean", []],
  [5, "429 no Retry-After (*)", [{ operation: "*", kind: "429" }]],
  [3, "clean", []],
  [5, "503 (*)", [{ operation: "*", kind: "503" }]],
  [3, "clean", []],
  [4, "500 (unwrapkey)", [{ operation: "unwrapkey", kind: "500" }]],
  [3, "clean", []],
  [5, "resets (*)", [{ operation: "*", kind: "reset" }]],
  [3, "clean", []],
  [4, "latency 4s (unwrapkey)", [{ operation: "unwrapkey", kind: "latency", ms: 4000 }]],
  [3, "clean", []],
  [
    8,
    "full outage (every op 503, token endpoint reset)",
    [
      { operation: "token", kind: "reset" },
      { operation: "*", kind: "503" },
    ],
  ],
  [5, "clean", []],
];

/** Log-bucketed latency histogram (2 % resolution), so memory stays flat for any run length. */
class Histogram {
  static BASE = Math.log(1.02);
  counts = new Map();
  total = 0;
  add(ms) {
    const b = Math.max(0, Math.floor(Math.log(Math.max(ms, 0.01) * 100) / Histogram.BASE));
    this.counts.set(b, (this.counts.get(b) ?? 0) + 1);
    this.total++;
  }
  quantile(q) {
    if (this.total === 0) return NaN;
    const target = Math.ceil(q * this.total);
    let seen = 0;
    for (const b of [...this.counts.keys()].sort((x, y) => x - y)) {
      seen += this.counts.get(b);
      if (seen >= target) return Math.exp((b + 1) * Histogram.BASE) / 100;
    }
    return NaN;
  }
}

function freePort() {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

async function pluginMemory(pid, metricsUrl) {
  let rssMiB = NaN;
  let heapMiB = NaN;
  let externalMiB = NaN;
  let handles = NaN;
  let fds = NaN;
  try {
    fds = (await readdir(`/proc/${pid}/fd`)).length;
  } catch {
    /* not Linux */
  }
  try {
    const status = await readFile(`/proc/${pid}/status`, "utf8");
    const m = /VmRSS:\s+(\d+) kB/.exec(status);
    if (m) rssMiB = Number(m[1]) / 1024;
  } catch {
    /* not Linux */
  }
  try {
    const text = await (await fetch(metricsUrl)).text();
    const m = /^nodejs_heap_size_used_bytes (\S+)$/m.exec(text);
    if (m) heapMiB = Number(m[1]) / 1048576;
    const e = /^nodejs_external_memory_bytes (\S+)$/m.exec(text);
    if (e) externalMiB = Number(e[1]) / 1048576;
    const h = /^nodejs_active_handles_total (\S+)$/m.exec(text);
    if (h) handles = Number(h[1]);
    if (Number.isNaN(rssMiB)) {
      const r = /^process_resident_memory_bytes (\S+)$/m.exec(text);
      if (r) rssMiB = Number(r[1]) / 1048576;
    }
  } catch {
    /* metrics not reachable */
  }
  return { rssMiB, heapMiB, externalMiB, handles, fds };
}

const mib = (n) => (Number.isNaN(n) ? "?" : n.toFixed(1));
const fmt = (ms) => (Number.isNaN(ms) ? "-" : ms.toFixed(1));

async function main() {
  const dir = await mkdtemp(join(tmpdir(), "kvkms-soak-"));
  const emu = await createEmulator({
    stateDir: join(dir, "emulator"),
    keys: [{ name: "kek", kty: "RSA", size: 2048 }],
  });
  const contract = contractLine(emu, "kek");
  const socketPath = join(dir, "kms.sock");
  const metricsPort = await freePort();
  const args = [
    "serve",
    ...contract.serveArgs,
    "--listen-addr",
    `unix://${socketPath}`,
    "--metrics-addr",
    `127.0.0.1:${metricsPort}`,
    "--healthz-port",
    "0",
    "--cache-size",
    String(CACHE_SIZE),
    "--seed-max-age",
    SEED_MAX_AGE,
  ];
  const child = spawn(process.execPath, [cliPath, ...args], {
    env: { ...process.env, ...contract.serveEnv },
    stdio: ["ignore", "ignore", "pipe"],
  });
  let stderrTail = "";
  child.stderr.on("data", (d) => {
    stderrTail = (stderrTail + d.toString()).slice(-4000);
  });
  let childExited = false;
  child.on("exit", () => (childExited = true));
  const metricsUrl = `http://127.0.0.1:${metricsPort}/metrics`;

  // Ready: Status answers ok.
  const probe = createPromiseClient(KeyManagementService, socketPath, { timeoutMs: 1000 });
  const readyBy = Date.now() + 60_000;
  for (;;) {
    if (childExited) throw new Error(`plugin exited during start:\n${stderrTail}`);
    try {
      const s = await probe.status({});
      if (s.healthz === "ok") break;
    } catch {
      /* not yet */
    }
    if (Date.now() > readyBy) throw new Error("plugin not ready within 60 s");
    await new Promise((r) => setTimeout(r, 200));
  }
  probe.close();

  const startMem = await pluginMemory(child.pid, metricsUrl);
  const harnessStart = process.memoryUsage();
  console.log(
    `soak: ${SECONDS} s, ${CLIENTS} clients, --cache-size ${CACHE_SIZE} --seed-max-age ${SEED_MAX_AGE}, ` +
      `fault cycle ${CYCLE.reduce((a, w) => a + w[0], 0) * CYCLE_SCALE} s; plugin pid ${child.pid} ` +
      `RSS ${mib(startMem.rssMiB)} MiB heap ${mib(startMem.heapMiB)} MiB`,
  );

  const pool = []; // ring of { ciphertext, keyId, plaintext }
  let poolNext = 0;
  const totals = {
    requests: 0,
    encrypt: 0,
    decrypt: 0,
    ok: 0,
    wrong: 0,
    errors: {}, // "Op CODE" -> n
  };
  const overall = new Histogram();
  let window = new Histogram();
  let windowRequests = 0;
  let windowErrors = {};
  const samples = [];
  let stopping = false;

  const recordError = (op, error) => {
    const code = error instanceof KmsClientError ? error.codeName : `THROWN(${error?.name})`;
    const k = `${op} ${code}`;
    totals.errors[k] = (totals.errors[k] ?? 0) + 1;
    windowErrors[k] = (windowErrors[k] ?? 0) + 1;
  };

  async function worker(client) {
    while (!stopping) {
      const encrypt = pool.length < 64 || Math.random() < 0.3;
      const t0 = performance.now();
      totals.requests++;
      windowRequests++;
      if (encrypt) {
        totals.encrypt++;
        const plaintext = randomBytes(32);
        try {
          const r = await client.encrypt({ plaintext, uid: "soak" }, { timeoutMs: DEADLINE_MS });
          totals.ok++;
          const entry = { ciphertext: r.ciphertext, keyId: r.keyId, plaintext };
          if (pool.length < POOL_SIZE) pool.push(entry);
          else pool[poolNext] = entry;
          poolNext = (poolNext + 1) % POOL_SIZE;
        } catch (error) {
          recordError("Encrypt", error);
        }
      } else {
        totals.decrypt++;
        // Recent entries (newest seeds, cached) most of the time; any entry otherwise.
        const recent = Math.random() < RECENT_SHARE;
        const back = Math.floor(Math.random() * Math.min(RECENT, pool.length));
        const index = recent
          ? (poolNext - 1 - back + 2 * POOL_SIZE) % pool.length
          : Math.floor(Math.random() * pool.length);
        const entry = pool[index];
        try {
          const r = await client.decrypt(
            { ciphertext: entry.ciphertext, keyId: entry.keyId, uid: "soak" },
            { timeoutMs: DEADLINE_MS },
          );
          if (Buffer.compare(Buffer.from(r.plaintext), entry.plaintext) !== 0) {
            totals.wrong++;
            console.error("WRONG RESULT: a Decrypt returned other bytes than were encrypted");
          } else {
            totals.ok++;
          }
        } catch (error) {
          recordError("Decrypt", error);
        }
      }
      const ms = performance.now() - t0;
      overall.add(ms);
      window.add(ms);
    }
  }

  // Fault schedule.
  let faultLabel = "clean";
  const faultsRun = (async () => {
    let i = 0;
    while (!stopping) {
      const [seconds, label, faults] = CYCLE[i % CYCLE.length];
      emu.clearFaults();
      for (const f of faults) emu.addFault(f);
      faultLabel = label;
      const until = Date.now() + seconds * 1000 * CYCLE_SCALE;
      while (!stopping && Date.now() < until) await new Promise((r) => setTimeout(r, 100));
      i++;
    }
    emu.clearFaults();
  })();

  const started = Date.now();
  const report = async () => {
    const mem = await pluginMemory(child.pid, metricsUrl);
    const h = process.memoryUsage();
    const t = Math.round((Date.now() - started) / 1000);
    const sample = {
      t,
      requests: totals.requests,
      windowRequests,
      windowErrors,
      p50: window.quantile(0.5),
      p99: window.quantile(0.99),
      pluginRssMiB: mem.rssMiB,
      pluginHeapMiB: mem.heapMiB,
      pluginExternalMiB: mem.externalMiB,
      pluginHandles: mem.handles,
      pluginFds: mem.fds,
      harnessRssMiB: h.rss / 1048576,
      wrong: totals.wrong,
    };
    samples.push(sample);
    console.log(
      `[${String(t).padStart(4)} s] req ${totals.requests} (+${windowRequests}) ` +
        `errors +${JSON.stringify(windowErrors)} p50 ${fmt(sample.p50)} ms p99 ${fmt(sample.p99)} ms ` +
        `plugin RSS ${mib(mem.rssMiB)} MiB heap ${mib(mem.heapMiB)} MiB external ${mib(mem.externalMiB)} MiB ` +
        `handles ${mem.handles} fds ${mem.fds} | harness RSS ${mib(sample.harnessRssMiB)} MiB ` +
        `| wrong ${totals.wrong} | now: ${faultLabel}`,
    );
    window = new Histogram();
    windowRequests = 0;
    windowErrors = {};
  };
  const reporter = setInterval(() => void report(), REPORT_SECONDS * 1000);

  const clients = Array.from({ length: CLIENTS }, () =>
    createPromiseClient(KeyManagementService, socketPath, { timeoutMs: DEADLINE_MS }),
  );
  const workers = clients.map((c) => worker(c));
  await new Promise((r) => setTimeout(r, SECONDS * 1000));
  stopping = true;
  await Promise.all(workers);
  await faultsRun;
  clearInterval(reporter);
  // Settle: let the plugin's memory reflect the steady state after the load.
  await report();
  const endMem = await pluginMemory(child.pid, metricsUrl);
  for (const c of clients) c.close();

  const summary = {
    seconds: SECONDS,
    clients: CLIENTS,
    requests: totals.requests,
    encrypts: totals.encrypt,
    decrypts: totals.decrypt,
    ok: totals.ok,
    wrongResults: totals.wrong,
    errorsByCode: totals.errors,
    p50Ms: Number(overall.quantile(0.5).toFixed(2)),
    p99Ms: Number(overall.quantile(0.99).toFixed(2)),
    pluginRssStartMiB: Number(startMem.rssMiB.toFixed(1)),
    pluginRssEndMiB: Number(endMem.rssMiB.toFixed(1)),
    pluginHeapStartMiB: Number(startMem.heapMiB.toFixed(1)),
    pluginHeapEndMiB: Number(endMem.heapMiB.toFixed(1)),
    harnessRssStartMiB: Number((harnessStart.rss / 1048576).toFixed(1)),
    harnessRssEndMiB: Number((process.memoryUsage().rss / 1048576).toFixed(1)),
    emulatorCounters: emu.counters(),
    pluginExitedEarly: childExited,
    samples,
  };
  console.log(`soak summary: ${JSON.stringify({ ...summary, samples: undefined })}`);
  if (process.env.SOAK_JSON)
    await writeFile(process.env.SOAK_JSON, JSON.stringify(summary, null, 2));

  child.kill("SIGTERM");
  await new Promise((r) => (childExited ? r() : child.once("exit", r)));
  await emu.close();
  await rm(dir, { recursive: true, force: true });
  const failed = totals.wrong > 0 || summary.pluginExitedEarly;
  if (failed)
    console.error(
      `soak FAILED: ${totals.wrong} wrong results, plugin exited early: ${childExited}`,
    );
  else console.log("soak passed: zero wrong results");
  process.exit(failed ? 1 : 0);
}

main().catch((error) => {
  console.error(error);
  process.exit(2);
});
