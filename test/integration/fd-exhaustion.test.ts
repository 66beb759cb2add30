/**
 * Out of file descriptors: the built CLI under a low `ulimit -n`. It says at start that
 * the limit is below what its connection bounds need (libuv closes connections it cannot accept
 * without telling Node, so this is the one moment the plugin can say it). Then it gets more
 * connections to its metrics port than it has descriptors for, keeps running, and serves KMS and
 * /metrics again once the flood is gone.
 */
import { spawn, type ChildProcessWithoutNullStreams } from "node:child_process";
import { once } from "node:events";
import { mkdtemp, rm } from "node:fs/promises";
import { connect, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import type { Emulator } from "@keyvault-kms/emulator";
import { cliPath } from "../helpers/cli-process.js";
import { eventually } from "../helpers/eventually.js";
import { OwnConnectionClient } from "../helpers/kms-load.js";
import { serveArgs, startTestEmulator, type Contract } from "../helpers/serve-args.js";

const READY = "ready: current seed wrapped";
/** Enough for the plugin to start and serve, too few for 64 more connections. */
const FD_LIMIT = 70;

let dir: string;
let emu: Emulator;
let child: ChildProcessWithoutNullStreams;
let out = "";

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "kvkms-fds-"));
  let contract: Contract;
  ({ emu, contract } = await startTestEmulator(dir));
  const args = [cliPath, ...serveArgs(contract, join(dir, "kms.sock"))];
  child = spawn(
    "sh",
    ["-c", `ulimit -n ${FD_LIMIT} && exec "$0" "$@"`, process.execPath, ...args],
    {
      env: { ...process.env, ...contract.serveEnv },
    },
  );
  child.stderr.on("data", (d: Buffer) => (out += d.toString()));
  await eventually(() => (out.includes(READY) ? true : undefined), 20_000, "the plugin ready");
}, 30_000);

afterAll(async () => {
  if (child.exitCode === null) {
    child.kill("SIGTERM");
    await once(child, "exit");
  }
  await emu.close();
  await rm(dir, { recursive: true, force: true });
});

function logLines(): Record<string, unknown>[] {
  return out
    .split("\n")
    .filter((l) => l.startsWith("{"))
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

it("warns at start, survives a flood past its descriptors, and serves again", async () => {
  const warning = logLines().find((l) => String(l["msg"]).startsWith("the open-file limit"));
  expect(warning).toMatchObject({ level: 40, limit: FD_LIMIT });
  const port = Number(/"url":"http:\/\/127\.0\.0\.1:(\d+)\/metrics"/.exec(out)?.[1]);
  const flood: Socket[] = [];
  for (let i = 0; i < 300; i++) {
    const socket = connect({ host: "127.0.0.1", port });
    socket.on("error", () => undefined);
    flood.push(socket);
  }
  await Promise.all(
    flood.map((s) => new Promise((resolve) => s.once("close", resolve).once("connect", resolve))),
  );
  await sleep(500);
  for (const s of flood) s.destroy();
  await sleep(200);
  expect(child.exitCode).toBeNull();

  const client = new OwnConnectionClient(join(dir, "kms.sock"));
  expect((await client.status()).healthz).toBe("ok");
  client.close();
  const res = await fetch(`http://127.0.0.1:${port}/metrics`);
  expect(res.status).toBe(200);
}, 30_000);
