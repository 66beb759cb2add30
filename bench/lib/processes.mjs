/* global process, fetch, setTimeout, clearTimeout, performance, URL */
/**
 * Child processes of the bench: servers under test (the plugin, the baseline, the direct mode)
 * and the load client. Every child is registered so that any exit of the orchestrator (normal,
 * error, Ctrl-C) kills what is left and removes the temp dir: a bench never leaves a plugin behind.
 */
import { fork, spawn } from "node:child_process";
import { openSync, closeSync, readFileSync, rmSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { connect, createServer } from "node:net";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

const live = new Set();
const tempDirs = new Set();

function cleanup() {
  for (const child of live) child.kill("SIGKILL");
  live.clear();
  for (const dir of tempDirs) rmSync(dir, { recursive: true, force: true });
  tempDirs.clear();
}
process.once("exit", cleanup);
for (const signal of ["SIGINT", "SIGTERM"]) {
  process.once(signal, () => {
    cleanup();
    process.exit(130);
  });
}

export function removeOnExit(dir) {
  tempDirs.add(dir);
}

export const cliPath = fileURLToPath(new URL("../../dist/cli.js", import.meta.url));
export const benchDir = fileURLToPath(new URL("..", import.meta.url));

/**
 * Spawns a server process with stdout and stderr in `<logDir>/<name>.log` (a file, not a pipe:
 * the orchestrator reads nothing while it is measuring). Returns a handle with stop() and logTail().
 */
export function spawnServer({ name, args, env = {}, logDir }) {
  const logFile = join(logDir, `${name}.log`);
  const fd = openSync(logFile, "a");
  const t0 = performance.now();
  const child = spawn(process.execPath, args, {
    env: { ...process.env, ...env },
    stdio: ["ignore", fd, fd],
  });
  closeSync(fd);
  live.add(child);
  let exited = false;
  child.once("exit", () => {
    exited = true;
    live.delete(child);
  });
  return {
    name,
    child,
    pid: child.pid,
    spawnedAt: t0,
    get exited() {
      return exited;
    },
    logTail: () => {
      try {
        return readFileSync(logFile, "utf8").slice(-3000);
      } catch {
        return "";
      }
    },
    async stop() {
      if (exited) return;
      const gone = new Promise((resolve) => child.once("exit", resolve));
      child.kill("SIGTERM");
      const timer = setTimeout(() => child.kill("SIGKILL"), 10_000);
      await gone;
      clearTimeout(timer);
    },
  };
}

/** The load client: a forked process (same Node, IPC with structured clone for buffers). */
export function forkLoadClient() {
  const child = fork(join(benchDir, "load-client.mjs"), [], {
    serialization: "advanced",
    stdio: ["ignore", "inherit", "inherit", "ipc"],
  });
  live.add(child);
  const pending = new Map();
  let nextId = 1;
  child.on("message", (msg) => {
    const p = pending.get(msg.id);
    if (p === undefined) return;
    pending.delete(msg.id);
    if (msg.ok) p.resolve(msg.result);
    else p.reject(new Error(`load client: ${msg.error}`));
  });
  child.once("exit", (code, signal) => {
    live.delete(child);
    for (const p of pending.values()) {
      p.reject(new Error(`load client exited (code ${code}, signal ${signal})`));
    }
    pending.clear();
  });
  return {
    pid: child.pid,
    call(cmd, args = {}) {
      const id = nextId++;
      return new Promise((resolve, reject) => {
        pending.set(id, { resolve, reject });
        child.send({ id, cmd, ...args });
      });
    },
    async close() {
      const gone = new Promise((resolve) => child.once("exit", resolve));
      child.disconnect();
      await gone;
    },
  };
}

/** Resolves once something accepts connections on the unix socket at `path`. */
export async function waitForSocket(path, server, timeoutMs = 60_000) {
  const until = performance.now() + timeoutMs;
  for (;;) {
    if (server.exited) throw new Error(`${server.name} exited during start:\n${server.logTail()}`);
    const ok = await new Promise((resolve) => {
      const s = connect(path);
      s.once("connect", () => {
        s.destroy();
        resolve(true);
      });
      s.once("error", () => resolve(false));
    });
    if (ok) return performance.now();
    if (performance.now() > until)
      throw new Error(`${server.name}: no socket within ${timeoutMs} ms`);
    // 2 ms between attempts: the start-up figure is no coarser than that.
    await new Promise((r) => setTimeout(r, 2));
  }
}

/** Retries `call` every 2 ms until it resolves with something `ok` accepts. */
export async function until(server, what, call, ok = () => true, timeoutMs = 60_000) {
  const deadline = performance.now() + timeoutMs;
  let last;
  for (;;) {
    if (server.exited) throw new Error(`${server.name} exited during start:\n${server.logTail()}`);
    try {
      const result = await call();
      if (ok(result)) return { at: performance.now(), result };
      last = result;
    } catch (error) {
      last = error;
    }
    if (performance.now() > deadline) {
      throw new Error(`${server.name}: no successful ${what} within ${timeoutMs} ms: ${last}`);
    }
    await new Promise((r) => setTimeout(r, 2));
  }
}

export function freePort() {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

/** VmRSS of a process, MiB (Linux /proc; NaN elsewhere). Reading it costs the process nothing. */
export async function rssMiB(pid) {
  try {
    const status = await readFile(`/proc/${pid}/status`, "utf8");
    const m = /VmRSS:\s+(\d+) kB/.exec(status);
    return m ? Number(m[1]) / 1024 : NaN;
  } catch {
    return NaN;
  }
}

/** The plugin's own figures from /metrics: V8 heap used and the number of seeds it holds. */
export async function pluginMetrics(metricsUrl) {
  const text = await (await fetch(metricsUrl)).text();
  const gauge = (name) => {
    const m = new RegExp(`^${name} (\\S+)$`, "m").exec(text);
    return m ? Number(m[1]) : NaN;
  };
  return {
    heapMiB: gauge("nodejs_heap_size_used_bytes") / 1048576,
    seedsCached: gauge("azurekms_seed_cache_size"),
  };
}
