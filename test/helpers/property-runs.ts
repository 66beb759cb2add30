/**
 * How many cases a property runs, and with which seed: a quick, fixed-seed run in `npm test`,
 * a long random-seed run under `npm run fuzz` (FUZZ_RUNS set).
 *
 * - `npm test`: each property runs its `quickRuns` with a fixed seed (reproducible), unless
 *   FC_SEED is set.
 * - FUZZ_RUNS=N: the properties of one run share N cases in proportion to their `quickRuns`
 *   (QUICK_TOTAL is the sum over every *-properties.test.ts under test/unit); the seed is FC_SEED
 *   or random. FUZZ_SECONDS=S additionally stops each property after its share of S seconds
 *   (an interrupted property passes; the cases it did run are counted).
 *
 * Every property prints its seed when it fails (fast-check's report carries seed and path; re-run
 * with FC_SEED=<seed>). Under FUZZ_RUNS each property also appends one JSON line to FUZZ_LOG
 * (default fuzz-results.jsonl in the OS temp dir) with the cases it ran.
 */
import { appendFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import fc from "fast-check";
import { report } from "./report.js";

/** Sum of `quickRuns` over every unit property (kept in sync by the tests themselves). */
export const QUICK_TOTAL = 11_600;

const fuzzRuns = Number(process.env["FUZZ_RUNS"] ?? "0");
const fuzzSeconds = Number(process.env["FUZZ_SECONDS"] ?? "0");
const seedEnv = process.env["FC_SEED"];

export const fuzzing = Number.isFinite(fuzzRuns) && fuzzRuns > 0;

/** Cases counted by this process so far (tests assert their budget with it). */
export const ranCases = { total: 0 };

function runsFor(quickRuns: number): number {
  if (!fuzzing) return quickRuns;
  // Rounded up: the shares add up to at least FUZZ_RUNS.
  return Math.max(quickRuns, Math.ceil((fuzzRuns * quickRuns) / QUICK_TOTAL));
}

function seedFor(name: string): number {
  if (seedEnv !== undefined && seedEnv !== "") return Number(seedEnv) | 0;
  if (fuzzing) return (Math.random() * 0x7fffffff) | 0;
  // A fixed seed per property name: `npm test` is reproducible.
  let h = 0x6b766b6d;
  for (let i = 0; i < name.length; i++)
    h = (Math.imul(h ^ name.charCodeAt(i), 0x01000193) >>> 0) | 0;
  return h;
}

/**
 * Runs `property` (quickRuns cases in `npm test`, its share of FUZZ_RUNS when fuzzing) and throws
 * fast-check's report, seed included, on a failure.
 */
export async function checkProperty<Ts>(
  name: string,
  property: fc.IAsyncPropertyWithHooks<Ts> | fc.IAsyncProperty<Ts>,
  quickRuns: number,
): Promise<number> {
  const numRuns = runsFor(quickRuns);
  const seed = seedFor(name);
  const limit =
    fuzzing && fuzzSeconds > 0
      ? { interruptAfterTimeLimit: Math.round((fuzzSeconds * 1000 * quickRuns) / QUICK_TOTAL) }
      : {};
  const started = Date.now();
  const details = await fc.check(property, {
    numRuns,
    seed,
    ...limit,
  });
  const ran = details.numRuns;
  ranCases.total += ran;
  if (fuzzing) {
    const line = {
      property: name,
      requested: numRuns,
      ran,
      interrupted: details.interrupted,
      failed: details.failed,
      seed,
      ms: Date.now() - started,
    };
    report(`fuzz ${JSON.stringify(line)}`);
    appendFileSync(
      process.env["FUZZ_LOG"] ?? join(tmpdir(), "fuzz-results.jsonl"),
      `${JSON.stringify(line)}\n`,
    );
  }
  if (details.failed) {
    const message = `property "${name}" failed (seed ${seed}; re-run with FC_SEED=${seed})\n${fc.defaultReportMessage(details) ?? ""}`;
    console.error(message);
    throw new Error(message);
  }
  return ran;
}
