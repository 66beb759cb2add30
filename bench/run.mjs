#!/usr/bin/env node
/* global process, console */
/**
 * `npm run bench`: the plugin measured side by side with
 *   1. the limit: a grpc-js server with empty handlers (baseline-server.mjs), for Status, Encrypt
 *      and cached Decrypt at concurrency 1 and 32: p50, p99, p99.9, throughput, as ratios;
 *   2. the Go plugin's design: a direct mode (direct-server.mjs, one Key Vault call per request)
 *      with Key Vault latency injected: apiserver cold start (Decrypts of data under 5 seeds) and
 *      the KMS v1 write path (Encrypts): wall time, Key Vault requests, p99;
 *   3. memory: RSS and heap with the seed cache full, after warm-up and after each scenario;
 *   4. start-up: spawn → socket accepts → Status ok → first Encrypt.
 *
 * This process hosts the Key Vault emulator; every server under test and the load client
 * (load-client.mjs) are separate processes talking over real unix sockets.
 * Prints a table and writes bench/results/<date>.json. Exit code 1 only if something broke
 * (a wrong plaintext, a failed call, a crash): a missed target is a finding, not a failure.
 *
 * Env: BENCH_QUICK=1 (CI smoke: ~1 s runs, N 500, well under a minute), BENCH_SECONDS (10),
 * BENCH_WARMUP_SECONDS (2), BENCH_COLD_N (10000), BENCH_V1_N (= cold N),
 * BENCH_KV_LATENCY_MS (20), BENCH_FILL_SEEDS (999), BENCH_STARTUPS (5), BENCH_OUT (JSON path).
 */
import { setMaxListeners } from "node:events";
import { mkdtemp } from "node:fs/promises";
import { loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { createEmulator } from "@keyvault-kms/emulator";
import { benchConfig } from "./lib/config.mjs";
import { judge, tableRows } from "./lib/judge.mjs";
import { goDesignPhase, limitPhase, mainPluginPhase, startupPhase } from "./lib/phases.mjs";
import { forkLoadClient, removeOnExit } from "./lib/processes.mjs";
import { machineInfo, printTable, writeResults } from "./lib/report.mjs";
import { pluginNodeArgs, startServer } from "./lib/servers.mjs";

const log = (msg) => console.log(`[bench ${new Date().toISOString().slice(11, 19)}] ${msg}`);

async function main() {
  const cfg = benchConfig();
  const machine = machineInfo();
  const dir = await mkdtemp(join(tmpdir(), "kvkms-bench-"));
  removeOnExit(dir);
  log(
    `${cfg.quick ? "quick" : "full"} run: ${machine.cpuCount} × ${machine.cpuModel}, ` +
      `Node ${machine.node}, load average ${machine.loadAvgStart.join(" ")}; ` +
      `plugin started as the image starts it: node ${pluginNodeArgs.join(" ")} dist/cli.js serve`,
  );
  // The emulator's latency faults each add an abort listener to one shared signal: 16 delayed
  // requests at once are expected here, not a leak worth a warning.
  setMaxListeners(256);
  const emu = await createEmulator({
    stateDir: join(dir, "emulator"),
    keys: [{ name: "kek", kty: "RSA", size: 2048 }],
  });
  const client = forkLoadClient();
  const broken = [];
  const servers = [];
  const ctx = {
    cfg,
    emu,
    client,
    dir,
    broken,
    log,
    async start(command) {
      const s = await startServer(command, dir);
      servers.push(s);
      return s;
    },
    async stop(s) {
      await client.call("disconnect", { name: s.name });
      if (s.exited) broken.push(`${s.name} exited during the run:\n${s.logTail()}`);
      await s.stop();
    },
  };
  const result = {
    date: new Date().toISOString(),
    quick: cfg.quick,
    settings: { ...cfg, pluginNodeArgs },
    machine,
  };

  try {
    const startup = await startupPhase(ctx);
    const { plugin, memory, fill } = await mainPluginPhase(ctx);
    result.fill = fill;
    const limit = await limitPhase(ctx, { plugin, memory, sample: startup.sample });
    result.startup = {
      runs: startup.runs,
      median: startup.median,
      baseline: limit.baselineStartup,
    };
    result.limit = { scenarios: limit.scenarios, keyVaultDuring: limit.keyVaultDuring };
    result.goDesign = await goDesignPhase(ctx, { plugin, memory, coldData: startup.coldData });
    await memory.sample("end");
    result.memory = {
      samples: memory.samples,
      peakRssUnderLoadMiB: Math.round(memory.peakUnderLoadMiB * 10) / 10,
      growth: memory.growth(),
    };
    await ctx.stop(plugin);
  } catch (error) {
    broken.push(`the bench itself failed: ${error?.stack ?? error}`);
  } finally {
    for (const s of servers) await s.stop();
    await client.close().catch(() => {});
    await emu.close();
  }

  result.machine.loadAvgEnd = loadavg().map((x) => Number(x.toFixed(2)));
  result.broken = broken;
  const complete = result.memory !== undefined;
  if (complete) {
    result.targets = judge(result);
    console.log("");
    printTable(tableRows(result), !cfg.quick);
  }
  console.log(`\nresults: ${writeResults(result, cfg.quick)}`);
  if (complete) {
    const missed = result.targets.filter((t) => !t.pass);
    console.log(
      `targets: ${result.targets.length - missed.length} of ${result.targets.length} met` +
        (missed.length ? `; missed: ${missed.map((t) => t.name).join(", ")}` : ""),
    );
  }
  if (broken.length > 0) {
    console.error(`\nBROKEN:\n- ${broken.join("\n- ")}`);
    process.exitCode = 1;
  }
}

main().catch((error) => {
  console.error(error);
  process.exitCode = 2;
});
