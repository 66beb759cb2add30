import { spawn, type ChildProcessWithoutNullStreams } from "node:child_process";
import { once } from "node:events";
import { fileURLToPath } from "node:url";

/** The built CLI (`npm test` builds first: see the `pretest` script). */
export const cliPath = fileURLToPath(new URL("../../dist/cli.js", import.meta.url));

export interface CliRun {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs the CLI to completion. */
export async function runCli(
  args: readonly string[],
  options: { env?: NodeJS.ProcessEnv; input?: string; timeoutMs?: number } = {},
): Promise<CliRun> {
  const child = spawn(process.execPath, [cliPath, ...args], {
    env: { ...process.env, ...options.env },
  });
  let stdout = "";
  let stderr = "";
  child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
  child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
  child.stdin.end(options.input ?? "");
  const timer = setTimeout(() => child.kill("SIGKILL"), options.timeoutMs ?? 20_000);
  const [code] = (await once(child, "close")) as [number | null];
  clearTimeout(timer);
  return { code, stdout, stderr };
}

/** A long-running CLI process whose output is collected as it comes. */
export interface CliProcess {
  readonly child: ChildProcessWithoutNullStreams;
  stdout(): string;
  stderr(): string;
  /** Resolves with stdout (a command's output) once `predicate` holds for it. */
  waitForStdout(predicate: (out: string) => boolean, timeoutMs?: number): Promise<string>;
  /** Resolves with stderr (the log, one JSON object per line) once `predicate` holds for it. */
  waitForStderr(predicate: (err: string) => boolean, timeoutMs?: number): Promise<string>;
  /** Sends a signal and resolves with the exit code. */
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

export function startCli(args: readonly string[], env: NodeJS.ProcessEnv = {}): CliProcess {
  const child = spawn(process.execPath, [cliPath, ...args], { env: { ...process.env, ...env } });
  const text = { stdout: "", stderr: "" };
  const waiters = new Set<() => void>();
  const exited = once(child, "close") as Promise<[number | null]>;
  for (const stream of ["stdout", "stderr"] as const) {
    child[stream].on("data", (d: Buffer) => {
      text[stream] += d.toString();
      for (const w of waiters) w();
    });
  }
  const waitFor = (
    stream: "stdout" | "stderr",
    predicate: (s: string) => boolean,
    timeoutMs: number,
  ): Promise<string> =>
    new Promise((resolve, reject) => {
      const check = () => {
        if (predicate(text[stream])) {
          waiters.delete(check);
          clearTimeout(timer);
          resolve(text[stream]);
        }
      };
      const timer = setTimeout(() => {
        waiters.delete(check);
        reject(new Error(`timed out; stdout: ${text.stdout}\nstderr: ${text.stderr}`));
      }, timeoutMs);
      void exited.then(() => {
        if (!predicate(text[stream])) {
          clearTimeout(timer);
          reject(new Error(`exited early; stdout: ${text.stdout}\nstderr: ${text.stderr}`));
        }
      });
      waiters.add(check);
      check();
    });
  return {
    child,
    stdout: () => text.stdout,
    stderr: () => text.stderr,
    waitForStdout: (predicate, timeoutMs = 20_000) => waitFor("stdout", predicate, timeoutMs),
    waitForStderr: (predicate, timeoutMs = 20_000) => waitFor("stderr", predicate, timeoutMs),
    async stop(signal = "SIGTERM") {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      const [code] = await exited;
      return code;
    },
  };
}
