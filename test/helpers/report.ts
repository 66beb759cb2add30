/**
 * One line of figures from a test (timings, counts, the fault matrix) for the run's log. Written
 * straight to stderr: console.log would add Jest's five-line "● Console" frame to each.
 */
export function report(line: string): void {
  process.stderr.write(`  ${line.replaceAll("\n", "\n  ")}\n`);
}
