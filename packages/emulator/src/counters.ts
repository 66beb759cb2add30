/** Every operation the emulator counts; all appear in a snapshot, zero-initialised. */
export const OPERATIONS = [
  "get",
  "list",
  "create",
  "rotate",
  "update",
  "delete",
  "getdeleted",
  "purge",
  "recover",
  "wrapkey",
  "unwrapkey",
  "encrypt",
  "decrypt",
  "token",
  "openid",
  "challenge",
  "imds",
] as const;

export type Operation = (typeof OPERATIONS)[number];

export function isOperation(name: string): name is Operation {
  return (OPERATIONS as readonly string[]).includes(name);
}

export class Counters {
  private readonly counts = new Map<Operation, number>();

  increment(operation: Operation): void {
    this.counts.set(operation, (this.counts.get(operation) ?? 0) + 1);
  }

  snapshot(): Record<string, number> {
    const out: Record<string, number> = {};
    for (const op of OPERATIONS) out[op] = this.counts.get(op) ?? 0;
    return out;
  }

  reset(): void {
    this.counts.clear();
  }
}
