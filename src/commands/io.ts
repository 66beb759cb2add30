/** What a command may use from its process; cli.ts builds it, tests build their own. */
export interface CommandIo {
  readonly env: NodeJS.ProcessEnv;
  readonly cwd: string;
  /** One line to standard output (the command's result or contract). */
  readonly out: (line: string) => void;
  /** One line of human-readable diagnostics to standard error. */
  readonly err: (line: string) => void;
  /** Aborted on SIGTERM or SIGINT. */
  readonly stop: AbortSignal;
  /** Standard input, for commands that read a previous command's output. */
  readonly stdin?: NodeJS.ReadableStream & { isTTY?: boolean };
}

export type Command = (argv: readonly string[], io: CommandIo) => Promise<number>;

/** Exit codes: 0 done, 1 failed at run time, 2 bad usage (a flag or config value). */
export const exitCodes = { ok: 0, failed: 1, usage: 2 } as const;

export function untilAborted(signal: AbortSignal): Promise<void> {
  if (signal.aborted) return Promise.resolve();
  return new Promise((resolve) => {
    signal.addEventListener(
      "abort",
      () => {
        resolve();
      },
      { once: true },
    );
  });
}
