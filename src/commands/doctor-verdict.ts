/** What one doctor check found. */
export type VerdictStatus = "ok" | "warn" | "FAIL";

export interface Verdict {
  readonly status: VerdictStatus;
  /** One line: what was found (never a secret). */
  readonly detail: string;
  /** What to do about it; printed as a `fix:` line (always for FAIL). */
  readonly fix?: string;
}

/** `ok  name  detail` lines, then an indented `fix:` line where there is one. */
export function formatVerdict(name: string, verdict: Verdict, skipped = false): string[] {
  // A skipped check counts as failed, but the check it depends on carries the fix.
  const status = skipped ? "skip" : verdict.status;
  const lines = [`${status.padEnd(4)}  ${name.padEnd(10)}  ${verdict.detail}`];
  if (verdict.fix !== undefined) lines.push(`      fix: ${verdict.fix}`);
  return lines;
}

/** Runs `work` for at most `ms`; the signal it gets aborts when time is up. */
export async function withTimeout<T>(
  ms: number,
  what: string,
  work: (signal: AbortSignal) => Promise<T>,
): Promise<T> {
  const controller = new AbortController();
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      const err = new CheckTimeout(`${what} did not finish within ${ms / 1000} s`);
      controller.abort(err);
      reject(err);
    }, ms);
  });
  try {
    return await Promise.race([work(controller.signal), timeout]);
  } finally {
    clearTimeout(timer);
  }
}

export class CheckTimeout extends Error {
  override name = "CheckTimeout";
}
