import type { Socket } from "node:net";

interface Tracked {
  /** bytesRead + bytesWritten when last sampled. */
  bytes: number;
  /** Sampling round in which it was last seen active (or admitted). */
  activeAt: number;
}

export interface ConnectionLimitOptions {
  readonly max: number;
  /**
   * Whether a connection has work in flight: such a connection is never closed to make room,
   * and when all are busy the new one is refused. Without it, one always goes.
   */
  readonly isBusy?: (socket: Socket) => boolean;
  /** Called after a connection was closed to make room. */
  readonly onEvict?: () => void;
}

/**
 * A bound on the connections one listener holds. At the bound a new connection is admitted and
 * the one least recently active goes instead (oldest first among equals), so a client that
 * keeps working, like kube-apiserver or Prometheus, gets in and stays in while a neighbour holds
 * many idle ones. Activity is read from the sockets' byte counters when the bound is reached, so
 * it costs nothing per byte, and works for sockets another layer (Node's HTTP/2 session) reads
 * natively.
 */
export class ConnectionLimit {
  private readonly tracked = new Map<Socket, Tracked>(); // in admission order
  private round = 0;
  readonly max: number;

  constructor(private readonly options: ConnectionLimitOptions) {
    const { max } = options;
    if (!Number.isInteger(max) || max < 1) {
      throw new RangeError(`a connection limit must be a positive integer, got ${max}`);
    }
    this.max = max;
  }

  get size(): number {
    return this.tracked.size;
  }

  /** Tracks `socket`; false when it is refused (every connection held is busy): destroy it. */
  admit(socket: Socket): boolean {
    if (this.tracked.size >= this.max && !this.evictOne()) return false;
    this.tracked.set(socket, { bytes: bytesOf(socket), activeAt: this.round });
    socket.once("close", () => this.tracked.delete(socket));
    return true;
  }

  private evictOne(): boolean {
    this.round++;
    let victim: Socket | undefined;
    let oldest = Infinity;
    for (const [socket, t] of this.tracked) {
      const bytes = bytesOf(socket);
      if (bytes !== t.bytes) {
        t.bytes = bytes;
        t.activeAt = this.round;
      }
      if (this.options.isBusy?.(socket) === true) continue;
      if (t.activeAt < oldest) {
        oldest = t.activeAt;
        victim = socket;
      }
    }
    if (victim === undefined) return false;
    this.tracked.delete(victim);
    victim.destroy();
    this.options.onEvict?.();
    return true;
  }
}

function bytesOf(socket: Socket): number {
  return socket.bytesRead + socket.bytesWritten;
}
