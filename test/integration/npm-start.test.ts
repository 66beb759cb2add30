/**
 * `npm start` as a terminal multiplexer or CI stops it: SIGTERM to npm alone. npm forwards the
 * signal to its child only; were that child a shell (`sh -c "build && node …"`), the shell would
 * die and the plugin would live on, reparented, holding the socket. The start script execs node,
 * so the plugin gets the signal, removes its socket and exits.
 *
 * Runs the real script with a real build, in a copy of the sources (building in place would
 * rewrite dist/ under the other suites).
 */
import { spawn } from "node:child_process";
import { once } from "node:events";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { cp, mkdtemp, rm, symlink } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { eventually } from "../helpers/eventually.js";

const root = fileURLToPath(new URL("../../", import.meta.url));
let dir: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "kvkms-npm-start-"));
  const app = join(dir, "app");
  for (const f of [
    "src",
    "package.json",
    "tsconfig.json",
    "tsconfig.build.json",
    "packages/emulator/src",
    "packages/emulator/package.json",
    "packages/emulator/tsconfig.build.json",
  ]) {
    await cp(join(root, f), join(app, f), { recursive: true });
  }
  await symlink(join(root, "node_modules"), join(app, "node_modules"));
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** Pids whose command line mentions `needle`. */
function processesMentioning(needle: string): number[] {
  return readdirSync("/proc")
    .filter((p) => /^\d+$/.test(p))
    .filter((p) => {
      try {
        return readFileSync(`/proc/${p}/cmdline`, "utf8").includes(needle);
      } catch {
        return false; // gone meanwhile
      }
    })
    .map(Number);
}

it("SIGTERM to npm stops the plugin, which removes its socket", async () => {
  const socket = join(dir, "kms.sock");
  const npm = spawn(
    "npm",
    ["start", "--", "--listen-addr", `unix://${socket}`, "--state-dir", join(dir, "emu")],
    { cwd: join(dir, "app"), env: process.env },
  );
  let out = "";
  npm.stdout.on("data", (d: Buffer) => (out += d.toString()));
  npm.stderr.resume();
  const exited = once(npm, "close");
  try {
    await eventually(
      () => (out.includes("Stop with Ctrl-C") ? true : undefined),
      60_000,
      "npm start ready",
    );
    expect(existsSync(socket)).toBe(true);
    expect(processesMentioning(socket).length).toBeGreaterThan(0);

    npm.kill("SIGTERM");
    await exited;
    await eventually(
      () => (processesMentioning(socket).length === 0 ? true : undefined),
      10_000,
      "the plugin gone",
    );
    expect(existsSync(socket)).toBe(false);
  } finally {
    for (const pid of processesMentioning(socket)) process.kill(pid, "SIGKILL");
  }
}, 90_000);
