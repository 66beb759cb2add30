/** Reading the emulator's request counters (`emu.counters()`: operation → requests). */

/** Every request counted, all operations together. */
export function totalRequests(counters: Record<string, number>): number {
  return Object.values(counters).reduce((a, b) => a + b, 0);
}

/** The operations that saw requests, zero counts left out; `except` drops operations too. */
export function requestsSeen(
  counters: Record<string, number>,
  except: readonly string[] = [],
): Record<string, number> {
  return Object.fromEntries(
    Object.entries(counters).filter(([operation, n]) => n > 0 && !except.includes(operation)),
  );
}
