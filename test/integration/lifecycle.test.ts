/**
 * The plugin process's lifecycle, with the built CLI as operators run it:
 * SIGTERM under load drains in-flight calls (one of them held in a slow Key Vault unwrap),
 * removes the socket and exits 0 within a bound; a crash (SIGKILL) leaves a stale socket that the
 * next start removes; a second instance refuses a live socket; the socket is 0600; SIGUSR1 does
 * not open the inspector. Plus, in process: plaintext buffers are zeroed once sent.
 */
import { existsSync, lstatSync, statSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { once } from "node:events";
import type { Emulator } from "@keyvault-kms/emulator";
import * as v1beta1 from "../../src/gen/v1beta1/api_pb.js";
import * as v2 from "../../src/gen/v2/api_pb.js";
import { createKmsServer, type KmsServer } from "../../src/grpc/index.js";
import { handOver, type KmsService } from "../../src/kms/index.js";
import { runCli, startCli, type CliProcess } from "../helpers/cli-process.js";
import { createClient } from "../helpers/grpc-client.js";
import { codeName, OwnConnectionClient, startLoad } from "../helpers/kms-load.js";
import { report } from "../helpers/report.js";
import { serveArgs, startTestEmulator, type Contract } from "../helpers/serve-args.js";

const READY = "ready: current seed wrapped";
const EXIT_BOUND_MS = 10_000;

let dir: string;
let emu: Emulator;
let contract: Contract;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "kvkms-life-"));
  ({ emu, contract } = await startTestEmulator(dir));
});

afterAll(async () => {
  await emu.close();
  await rm(dir, { recursive: true, force: true });
});

beforeEach(() => {
  emu.clearFaults();
});

async function startServe(socket: string): Promise<CliProcess> {
  const serve = startCli(serveArgs(contract, socket), contract.serveEnv);
  await serve.waitForStderr((o) => o.includes(READY));
  return serve;
}

/** Resolves with the exit code and how long after `since` the process exited. */
async function exitOf(serve: CliProcess, since: number): Promise<{ code: number; ms: number }> {
  const child = serve.child;
  if (child.exitCode === null && child.signalCode === null) await once(child, "exit");
  return { code: child.exitCode ?? -1, ms: Date.now() - since };
}

async function until(check: () => boolean, timeoutMs = 5_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > end) throw new Error("condition not met in time");
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

describe("SIGTERM under load", () => {
  it("finishes in-flight calls (one in a slow unwrap), removes the socket and exits 0 in < 10 s", async () => {
    // A ciphertext whose seed the next process has never seen: its Decrypt needs an unwrap.
    const firstSocket = join(dir, "first.sock");
    const first = await startServe(firstSocket);
    const coldPlaintext = Buffer.from("sealed by an earlier process");
    let cold: v2.EncryptResponse;
    const firstClient = new OwnConnectionClient(firstSocket);
    try {
      cold = await firstClient.encrypt(coldPlaintext);
    } finally {
      firstClient.close();
      expect(await first.stop("SIGTERM")).toBe(0);
    }

    const socket = join(dir, "load.sock");
    const serve = await startServe(socket);
    const clients = Array.from({ length: 32 }, () => new OwnConnectionClient(socket));
    const slowClient = new OwnConnectionClient(socket);
    try {
      const load = startLoad(clients, Date.now() + 30_000);
      await until(() => load.report.ok >= 500, 15_000);

      // The one slow call: Key Vault takes 2.5 s to unwrap the cold seed.
      emu.addFault({ operation: "unwrapkey", kind: "latency", count: 1, ms: 2_500 });
      const unwrapsBefore = emu.counters()["unwrapkey"] ?? 0;
      const slowStarted = Date.now();
      const slow = slowClient.decrypt(cold.ciphertext, cold.keyId, 9_000).then(
        (res) => ({ ok: true as const, plaintext: Buffer.from(res.plaintext), at: Date.now() }),
        (error: unknown) => ({ ok: false as const, code: codeName(error), at: Date.now() }),
      );
      await until(() => (emu.counters()["unwrapkey"] ?? 0) > unwrapsBefore);

      const okBeforeStop = load.report.ok;
      const signalled = Date.now();
      load.markStopping();
      serve.child.kill("SIGTERM");
      const exit = await exitOf(serve, signalled);
      await load.done;
      const slowResult = await slow;

      const outcome = load.report;
      report(
        `lifecycle: SIGTERM under load (32 clients): ${okBeforeStop} round trips before the signal, ` +
          `${outcome.ok} in all, wrong ${outcome.wrong}; failures before ${JSON.stringify(outcome.failedBefore)}, ` +
          `after ${JSON.stringify(outcome.failedAfter)}; calls in flight at SIGTERM: ` +
          `${outcome.inFlightAtStop.ok} ok, failed ${JSON.stringify(outcome.inFlightAtStop.failed)}; ` +
          `slow unwrap call answered ${slowResult.at - slowStarted} ms after it started ` +
          `(${slowResult.at - signalled} ms after SIGTERM); exit ${exit.code} ${exit.ms} ms after SIGTERM`,
      );

      expect(slowResult).toMatchObject({ ok: true, plaintext: coldPlaintext });
      expect(slowResult.at - slowStarted).toBeGreaterThanOrEqual(2_000);
      expect(exit.code).toBe(0);
      expect(exit.ms).toBeLessThan(EXIT_BOUND_MS);
      expect(existsSync(socket)).toBe(false);
      expect(outcome.wrong).toBe(0);
      expect(outcome.failedBefore).toEqual({});
      // Every call the server had when told to stop was answered.
      expect(outcome.inFlightAtStop.failed).toEqual({});
      expect(outcome.inFlightAtStop.ok).toBeGreaterThan(0);
      // New calls after the drain began find no server: UNAVAILABLE, never anything else.
      for (const code of Object.keys(outcome.failedAfter)) expect(code).toBe("UNAVAILABLE");
      expect(serve.stderr()).toContain("signal received: draining in-flight calls");
      expect(serve.stderr()).toContain('"msg":"stopped"');
    } finally {
      for (const client of clients) client.close();
      slowClient.close();
      await serve.stop("SIGKILL");
    }
  }, 60_000);
});

describe("a crash (SIGKILL)", () => {
  it("leaves a stale socket that the next start removes before serving", async () => {
    const socket = join(dir, "crash.sock");
    const crashed = await startServe(socket);
    const killed = Date.now();
    crashed.child.kill("SIGKILL");
    await once(crashed.child, "exit");
    expect(crashed.child.signalCode).toBe("SIGKILL");
    expect(lstatSync(socket).isSocket()).toBe(true);

    const started = Date.now();
    const next = await startServe(socket);
    try {
      const readyMs = Date.now() - started;
      expect(next.stderr()).toContain("removed a stale socket left by an earlier run");
      expect(statSync(socket).mode & 0o777).toBe(0o600);
      const client = new OwnConnectionClient(socket);
      try {
        expect(await client.status()).toMatchObject({ healthz: "ok" });
        const plaintext = Buffer.from("after the crash");
        const enc = await client.encrypt(plaintext);
        const dec = await client.decrypt(enc.ciphertext, enc.keyId);
        expect(Buffer.from(dec.plaintext)).toEqual(plaintext);
      } finally {
        client.close();
      }
      report(
        `lifecycle: SIGKILL left the socket; the next start removed it and was ready in ${readyMs} ms ` +
          `(${Date.now() - killed} ms after the kill, round trip included)`,
      );
    } finally {
      expect(await next.stop("SIGTERM")).toBe(0);
    }
    expect(existsSync(socket)).toBe(false);
  }, 60_000);
});

describe("a live socket", () => {
  it("is refused by a second instance (exit 1, a clear message) while the first keeps serving; 0600; SIGUSR1 opens no inspector", async () => {
    const socket = join(dir, "live.sock");
    const first = await startServe(socket);
    try {
      expect(statSync(socket).mode & 0o777).toBe(0o600);

      const started = Date.now();
      const second = await runCli(serveArgs(contract, socket), { env: contract.serveEnv });
      const refusedMs = Date.now() - started;
      expect(second.code).toBe(1);
      expect(second.stderr).toContain(
        `another process is serving on ${socket}; stop it or choose another --listen-addr`,
      );
      report(`lifecycle: second instance refused in ${refusedMs} ms: ${second.stderr.trim()}`);

      // The first instance is untouched: same socket file, same mode, still answering.
      expect(lstatSync(socket).isSocket()).toBe(true);
      expect(statSync(socket).mode & 0o777).toBe(0o600);
      first.child.kill("SIGUSR1");
      const client = new OwnConnectionClient(socket);
      try {
        const plaintext = Buffer.from("still serving");
        const enc = await client.encrypt(plaintext);
        const dec = await client.decrypt(enc.ciphertext, enc.keyId);
        expect(Buffer.from(dec.plaintext)).toEqual(plaintext);
      } finally {
        client.close();
      }
      await until(() => first.stderr().includes("SIGUSR1 ignored"));
      expect(first.stderr()).not.toContain("Debugger listening");
      expect(first.child.exitCode).toBeNull();
    } finally {
      expect(await first.stop("SIGTERM")).toBe(0);
    }
    expect(existsSync(socket)).toBe(false);
  }, 60_000);
});

/** The length of `bytes` if every byte is 0, else -1. */
function zeroes(bytes: Uint8Array | undefined): number {
  return bytes !== undefined && bytes.every((b) => b === 0) ? bytes.length : -1;
}

describe("plaintext buffers are zeroed once sent", () => {
  let server: KmsServer;
  const held: { encryptPlaintext?: Uint8Array; decrypted?: Uint8Array } = {};
  const service: KmsService = {
    status: () => ({ version: "v2", healthz: "ok", keyId: "k" }),
    encrypt: (plaintext) => {
      held.encryptPlaintext = plaintext; // the request's own bytes, not a copy
      return { ciphertext: Buffer.from(plaintext), keyId: "k", annotations: new Map() };
    },
    decrypt: () => {
      held.decrypted = handOver(Buffer.from("a DEK handed over"));
      return Promise.resolve(held.decrypted);
    },
  };

  beforeAll(async () => {
    server = createKmsServer({
      listenAddr: `unix://${join(dir, "wipe.sock")}`,
      service,
      runtimeVersion: "test",
    });
    await server.listen();
  });

  afterAll(async () => {
    await server.shutdown(1_000);
  });

  it("v2 and v1beta1: the Encrypt request's plaintext and the Decrypt result, after the answer is sent", async () => {
    const v2Client = createClient(v2.KeyManagementService, server.socketPath);
    const v1Client = createClient(v1beta1.KeyManagementService, server.socketPath);
    try {
      const enc = await v2Client.encrypt({ plaintext: Buffer.from("secret-plaintext"), uid: "u" });
      expect(Buffer.from(enc.ciphertext).toString()).toBe("secret-plaintext");
      expect(zeroes(held.encryptPlaintext)).toBe(16);

      const dec = await v2Client.decrypt({ ciphertext: Buffer.from("x"), keyId: "k", uid: "u" });
      expect(Buffer.from(dec.plaintext).toString()).toBe("a DEK handed over");
      expect(zeroes(held.decrypted)).toBe(17);

      const v1enc = await v1Client.encrypt({ version: "v1beta1", plain: Buffer.from("v1-secret") });
      expect(Buffer.from(v1enc.cipher).toString()).toBe("v1-secret");
      expect(zeroes(held.encryptPlaintext)).toBe(9);

      const v1dec = await v1Client.decrypt({ version: "v1beta1", cipher: Buffer.from("x") });
      expect(Buffer.from(v1dec.plain).toString()).toBe("a DEK handed over");
      expect(zeroes(held.decrypted)).toBe(17);
    } finally {
      v2Client.close();
      v1Client.close();
    }
  });
});
