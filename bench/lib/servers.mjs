/* global performance, Buffer */
/**
 * Starting the three servers the bench compares, each its own process on its own unix socket:
 * the plugin (the built CLI, `serve`), the empty-handler baseline and the direct mode.
 * startServer() also measures start-up: spawn → socket accepts → Status ok → first Encrypt.
 */
import { randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { contractLine } from "../../dist/commands/emulator.js";
import { KeyManagementService } from "../../dist/gen/v2/api_pb.js";
import { createPromiseClient } from "../../dist/grpc/promise-client.js";
import { benchDir, cliPath, freePort, spawnServer, until, waitForSocket } from "./processes.mjs";

let serial = 0;

/**
 * The node options the container image starts the plugin with (the Dockerfile's exec-form
 * ENTRYPOINT, between node and dist/cli.js): the bench measures the plugin as it is deployed.
 */
export const pluginNodeArgs = (() => {
  const dockerfile = readFileSync(join(benchDir, "..", "Dockerfile"), "utf8");
  const m = /^ENTRYPOINT\s+(\[.*\])\s*$/m.exec(dockerfile);
  if (m === null) throw new Error("Dockerfile: no exec-form ENTRYPOINT");
  const argv = JSON.parse(m[1]);
  const cli = argv.findIndex((w) => w.endsWith("dist/cli.js"));
  if (cli < 1) throw new Error("Dockerfile ENTRYPOINT does not run dist/cli.js");
  return argv.slice(1, cli);
})();

/** `serve` against the emulator, like a kubelet-run static pod would start it. */
export async function pluginCommand(emu, dir, extraArgs = []) {
  const contract = contractLine(emu, "kek");
  const socketPath = join(dir, `plugin-${++serial}.sock`);
  const metricsPort = await freePort();
  return {
    name: `plugin-${serial}`,
    socketPath,
    metricsUrl: `http://127.0.0.1:${metricsPort}/metrics`,
    args: [
      ...pluginNodeArgs,
      cliPath,
      "serve",
      ...contract.serveArgs,
      "--listen-addr",
      `unix://${socketPath}`,
      "--metrics-addr",
      `127.0.0.1:${metricsPort}`,
      "--healthz-port",
      "0",
      ...extraArgs,
    ],
    env: contract.serveEnv,
  };
}

/** The baseline: plain grpc-js, fixed answers shaped like the plugin's (see baseline-server.mjs). */
export function baselineCommand(dir, answers) {
  const socketPath = join(dir, `baseline-${++serial}.sock`);
  return {
    name: `baseline-${serial}`,
    socketPath,
    args: [join(benchDir, "baseline-server.mjs")],
    env: {
      BENCH_SOCKET: socketPath,
      BENCH_ANSWERS: JSON.stringify({
        keyId: answers.keyId,
        ciphertext: Buffer.from(answers.ciphertext).toString("base64"),
        plaintext: Buffer.from(answers.plaintext).toString("base64"),
      }),
    },
  };
}

/** The direct mode: one Key Vault call per request through the Azure SDK (direct-server.mjs). */
export function directCommand(emu, dir) {
  const socketPath = join(dir, `direct-${++serial}.sock`);
  return {
    name: `direct-${serial}`,
    socketPath,
    args: [join(benchDir, "direct-server.mjs")],
    env: {
      BENCH_SOCKET: socketPath,
      BENCH_VAULT: JSON.stringify({
        vaultUrl: emu.vaultUrl,
        authorityHost: emu.authorityHost,
        tenantId: emu.tenantId,
        clientId: emu.clientId,
        clientSecret: emu.clientSecret,
        caFile: emu.caFile,
        keyName: "kek",
      }),
    },
  };
}

/**
 * Spawns `command` and waits until it answers: the socket accepts, Status says ok, and one
 * Encrypt of a 32-byte DEK succeeds. Returns the handle, the start-up times (ms from spawn)
 * and that first Encrypt's answer (a sample of what this server sends back).
 */
export async function startServer(command, logDir) {
  const handle = spawnServer({ name: command.name, args: command.args, env: command.env, logDir });
  handle.socketPath = command.socketPath;
  handle.metricsUrl = command.metricsUrl;
  try {
    const socketAt = await waitForSocket(command.socketPath, handle);
    const probe = createPromiseClient(KeyManagementService, command.socketPath, {
      timeoutMs: 5000,
    });
    try {
      const status = await until(
        handle,
        "Status",
        () => probe.status({}),
        (s) => s.healthz === "ok",
      );
      const plaintext = randomBytes(32);
      const encrypt = await until(handle, "Encrypt", () =>
        probe.encrypt({ plaintext: Uint8Array.from(plaintext), uid: "bench-start" }),
      );
      handle.status = status.result;
      handle.sample = { ...encrypt.result, plaintext };
      handle.startup = {
        socketMs: socketAt - handle.spawnedAt,
        statusOkMs: status.at - handle.spawnedAt,
        firstEncryptMs: encrypt.at - handle.spawnedAt,
      };
    } finally {
      probe.close();
    }
    return handle;
  } catch (error) {
    await handle.stop();
    throw error;
  }
}

export const elapsed = (t0) => performance.now() - t0;
