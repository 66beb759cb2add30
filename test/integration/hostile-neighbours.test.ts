/**
 * Hostile neighbours against the built CLI, run as the manifests run it
 * (`--max-old-space-size=160`), on loopback and a temp socket: a pipelined flood on the metrics
 * port, thousands of idle connections to the metrics and health ports, thousands of silent
 * HTTP/2 connections on the KMS socket, and an absurd frame header. Throughout, kube-apiserver's
 * calls succeed, and the plugin's memory and file descriptors stay within the stated bounds.
 */
import { readdirSync, readFileSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { connect, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { once } from "node:events";
import type { Emulator } from "@keyvault-kms/emulator";
import { CLIENT_MAGIC, EMPTY_SETTINGS_FRAME } from "../../src/grpc/authority-shim/http2-frames.js";
import { startCli, type CliProcess } from "../helpers/cli-process.js";
import { OwnConnectionClient } from "../helpers/kms-load.js";
import { serveArgs, servedPorts, startTestEmulator, type Contract } from "../helpers/serve-args.js";

const READY = "ready: current seed wrapped";
const MiB = 1024 * 1024;

let dir: string;
let emu: Emulator;
let serve: CliProcess;
let socketPath: string;
let metricsPort: number;
let healthPort: number;
/** kube-apiserver: one long-lived connection, opened before any attack. */
let apiserver: OwnConnectionClient;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "kvkms-hostile-"));
  let contract: Contract;
  ({ emu, contract } = await startTestEmulator(dir));
  socketPath = join(dir, "kms.sock");
  serve = startCli(serveArgs(contract, socketPath), {
    ...contract.serveEnv,
    NODE_OPTIONS: "--max-old-space-size=160",
  });
  ({ metricsPort, healthPort } = servedPorts(await serve.waitForStderr((o) => o.includes(READY))));
  apiserver = new OwnConnectionClient(socketPath);
  expect((await apiserver.status()).healthz).toBe("ok");
}, 30_000);

afterAll(async () => {
  apiserver.close();
  await serve.stop("SIGTERM");
  await emu.close();
  await rm(dir, { recursive: true, force: true });
});

function pid(): number {
  const p = serve.child.pid;
  if (p === undefined) throw new Error("the plugin is not running");
  return p;
}

function fds(): number {
  return readdirSync(`/proc/${pid()}/fd`).length;
}

function rssBytes(): number {
  const kb = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid()}/status`, "utf8"))?.[1];
  return Number(kb) * 1024;
}

/** The plugin's peak RSS while `during` runs, sampled every 50 ms. */
async function peakRss<T>(during: () => Promise<T>): Promise<{ result: T; peak: number }> {
  let peak = rssBytes();
  const timer = setInterval(() => {
    peak = Math.max(peak, rssBytes());
  }, 50);
  try {
    const result = await during();
    return { result, peak: Math.max(peak, rssBytes()) };
  } finally {
    clearInterval(timer);
  }
}

/** kube-apiserver's traffic: Status and Encrypt in a loop until `until`; every call must succeed. */
async function apiserverCalls(until: () => boolean): Promise<number> {
  let calls = 0;
  while (!until()) {
    expect((await apiserver.status(3_000)).healthz).toBe("ok");
    expect(
      (await apiserver.encrypt(Buffer.from("a secret"), 3_000)).ciphertext.length,
    ).toBeGreaterThan(0);
    calls += 2;
  }
  return calls;
}

/** Connects, retrying while the listen backlog is full (EAGAIN on a unix socket). */
async function connected(open: () => Socket): Promise<Socket> {
  for (;;) {
    const socket = open();
    let failure: NodeJS.ErrnoException | undefined;
    socket.on("error", (err: NodeJS.ErrnoException) => (failure ??= err));
    await new Promise((resolve) => {
      socket.once("connect", resolve);
      socket.once("close", resolve);
    });
    if (failure?.code !== "EAGAIN" || socket.bytesWritten > 0) return socket;
    socket.destroy();
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

/** Opens `count` connections, `batch` at a time; the server may close any of them meanwhile. */
async function openMany(count: number, batch: number, open: () => Socket): Promise<Socket[]> {
  const sockets: Socket[] = [];
  for (let done = 0; done < count; done += batch) {
    const n = Math.min(batch, count - done);
    sockets.push(...(await Promise.all(Array.from({ length: n }, () => connected(open)))));
  }
  return sockets;
}

const tcp = (port: number) => () => connect({ host: "127.0.0.1", port });

async function scrapeOk(): Promise<void> {
  const res = await fetch(`http://127.0.0.1:${metricsPort}/metrics`);
  expect(res.status).toBe(200);
  expect(await res.text()).toContain("azurekms_build_info");
}

it("3 connections × 3000 pipelined scrapes, never read: KMS keeps serving, RSS < 300 MiB", async () => {
  const flood = "GET /metrics HTTP/1.1\r\nHost: node\r\n\r\n".repeat(3000);
  const end = Date.now() + 6_000;
  let floods = 0;
  // Each attacker keeps one connection flooding, never read, and opens a fresh one every 300 ms
  // (dropping its previous one), for 6 s: three connections at a time, ~60 floods in all.
  const attacker = async (): Promise<void> => {
    let previous: Socket | undefined;
    while (Date.now() < end) {
      const socket = connect({ host: "127.0.0.1", port: metricsPort });
      socket.on("error", () => undefined);
      await once(socket, "connect");
      socket.pause();
      socket.write(flood);
      floods++;
      previous?.destroy();
      previous = socket;
      await new Promise((resolve) => setTimeout(resolve, 300));
    }
    previous?.destroy();
  };
  const { result: calls, peak } = await peakRss(async () => {
    const attacks = Promise.all([attacker(), attacker(), attacker()]);
    const served = await apiserverCalls(() => Date.now() >= end);
    await attacks;
    return served;
  });
  expect(floods).toBeGreaterThanOrEqual(30);
  expect(calls).toBeGreaterThan(10);
  expect(peak).toBeLessThan(300 * MiB);
  await scrapeOk();
}, 30_000);

it("6000 idle connections to the metrics port: fewer than 1500 fds, kube-apiserver's calls succeed", async () => {
  const idle = await openMany(6000, 200, tcp(metricsPort));
  try {
    expect(fds()).toBeLessThan(1500);
    await apiserverCalls(() => true);
    expect((await apiserver.status()).healthz).toBe("ok");
    const fresh = new OwnConnectionClient(socketPath);
    expect((await fresh.status()).healthz).toBe("ok");
    fresh.close();
    await scrapeOk();
  } finally {
    for (const s of idle) s.destroy();
  }
}, 60_000);

it("3000 idle connections to the health port: /readyz still answers, fewer than 1500 fds", async () => {
  const idle = await openMany(3000, 200, tcp(healthPort));
  try {
    expect(fds()).toBeLessThan(1500);
    expect((await fetch(`http://127.0.0.1:${healthPort}/readyz`)).status).toBe(200);
    expect((await fetch(`http://127.0.0.1:${healthPort}/livez`)).status).toBe(200);
  } finally {
    for (const s of idle) s.destroy();
  }
}, 60_000);

it("3000 silent HTTP/2 connections on the KMS socket: kube-apiserver's calls succeed throughout, a new client's Status succeeds, fewer than 1500 fds", async () => {
  let flooding = true;
  const opening = openMany(3000, 200, () => {
    const socket = connect({ path: socketPath });
    socket.once("connect", () => socket.write(Buffer.concat([CLIENT_MAGIC, EMPTY_SETTINGS_FRAME])));
    return socket;
  }).finally(() => (flooding = false));
  // kube-apiserver's connection has carried requests and stays active: it is never the one closed.
  const calls = await apiserverCalls(() => !flooding);
  const silent = await opening;
  expect(calls).toBeGreaterThan(10);
  try {
    expect(fds()).toBeLessThan(1500);
    const fresh = new OwnConnectionClient(socketPath);
    expect((await fresh.status()).healthz).toBe("ok");
    expect((await fresh.encrypt(Buffer.from("after the flood"))).ciphertext.length).toBeGreaterThan(
      0,
    );
    fresh.close();
    expect((await apiserver.status()).healthz).toBe("ok");
  } finally {
    for (const s of silent) s.destroy();
  }
}, 60_000);

it("a frame header claiming 6.7 MB is closed within a second", async () => {
  const socket = connect({ path: socketPath });
  socket.on("error", () => undefined);
  await once(socket, "connect");
  const started = Date.now();
  socket.write(
    Buffer.concat([
      CLIENT_MAGIC,
      EMPTY_SETTINGS_FRAME,
      Buffer.from([0x66, 0x66, 0x66, 0, 0, 0, 0, 0, 1]),
    ]),
  );
  await once(socket, "close");
  expect(Date.now() - started).toBeLessThan(1_000);
  expect((await apiserver.status()).healthz).toBe("ok");
});
