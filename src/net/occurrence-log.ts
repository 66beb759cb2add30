/** What an occurrence log writes to (pino's shape). */
export interface WarnLogger {
  warn(fields: object, message: string): void;
}

/**
 * Logs something that can happen thousands of times a second (accept errors, evictions) once
 * when it starts, then at most once per interval with how many happened since the last line.
 */
export class OccurrenceLog {
  private pending = 0;
  private total = 0;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly logger: WarnLogger | undefined,
    private readonly message: string,
    private readonly intervalMs = 60_000,
  ) {}

  /** Counts one occurrence; the first one's `fields` go into its line. */
  note(fields: object = {}): void {
    this.total++;
    if (this.timer !== undefined) {
      this.pending++;
      return;
    }
    this.logger?.warn({ ...fields, count: 1, total: this.total }, this.message);
    this.timer = setTimeout(() => {
      this.flush();
    }, this.intervalMs);
    this.timer.unref();
  }

  get count(): number {
    return this.total;
  }

  private flush(): void {
    this.timer = undefined;
    if (this.pending === 0) return;
    const count = this.pending;
    this.pending = 0;
    this.logger?.warn({ count, total: this.total }, `${this.message} (${count} more)`);
    this.timer = setTimeout(() => {
      this.flush();
    }, this.intervalMs);
    this.timer.unref();
  }

  close(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
  }
}
