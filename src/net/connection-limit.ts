import type { Socket } from "node:net";

interface Tracked {
  /** bytesRead + bytesWritten when last sampled. */
  bytes: number;
  /** When it was last seen active (or admitted), in performance.now() milliseconds. */
  activeAt: number;
  /** Whether it has been seen active since it was admitted. */
  seenActive: boolean;
}

export interface ConnectionLimitOptions {
  readonly max: number;
  /** Whether a connection has work in flight: such a connection is never closed to make room. */
  readonly isBusy?: (socket: Socket) => boolean;
  /**
   * Whether a connection has carried a request. Those that have not (still silent, still being
   * read) make room first; the others only after them.
   */
  readonly isProven?: (socket: Socket) => boolean;
  /** A proven connection seen active within this long is never closed to make room (default 0). */
  readonly protectActiveMs?: number;
  /** Called after a connection was closed to make room. */
  readonly onEvict?: () => void;
}

/**
 * A bound on the connections one listener holds. At the bound a new connection is admitted and
 * another closed instead: one that never carried a request, oldest first; else the least
 * recently active. A connection that is busy, or proven and recently active, is never closed:
 * when only such connections are left, the newcomer is refused. So a client that keeps working,
 * like kube-apiserver or Prometheus, stays in while a neighbour opens many idle connections.
 * Activity is read from the sockets' byte counters when the bound is reached, so it costs nothing
 * per byte, and works for sockets another layer (Node's HTTP/2 session) reads natively.
 */
export class ConnectionLimit {
  private readonly tracked = new Map<Socket, Tracked>(); // in admission order
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

  /** Tracks `socket`; false when it is refused (nothing may be closed for it): destroy it. */
  admit(socket: Socket): boolean {
    if (this.tracked.size >= this.max && !this.evictOne()) return false;
    this.tracked.set(socket, {
      bytes: bytesOf(socket),
      activeAt: performance.now(),
      seenActive: false,
    });
    socket.once("close", () => this.tracked.delete(socket));
    return true;
  }

  private evictOne(): boolean {
    const now = performance.now();
    const { isBusy, isProven, protectActiveMs = 0 } = this.options;
    let victim: Socket | undefined;
    let best = { unproven: false, activeAt: Infinity };
    for (const [socket, t] of this.tracked) {
      const bytes = bytesOf(socket);
      if (bytes !== t.bytes) {
        t.bytes = bytes;
        t.activeAt = now;
        t.seenActive = true;
      }
      if (isBusy?.(socket) === true) continue;
      const unproven = isProven?.(socket) === false;
      if (!unproven && t.seenActive && now - t.activeAt < protectActiveMs) continue;
      // Unproven before proven; then least recently active; ties: first admitted.
      const better = unproven !== best.unproven ? unproven : t.activeAt < best.activeAt;
      if (victim === undefined || better) {
        victim = socket;
        best = { unproven, activeAt: t.activeAt };
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
