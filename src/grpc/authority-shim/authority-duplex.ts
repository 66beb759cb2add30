import type { Socket } from "node:net";
import { Duplex } from "node:stream";
import type { HeaderRewriter } from "./http2-header-rewriter.js";

const ignore = (): void => undefined;

/**
 * The connection as the HTTP/2 server should see it: client-to-server bytes go through a
 * HeaderRewriter, server-to-client bytes go to the socket untouched. Backpressure is passed
 * both ways (socket paused while our readable side is full; writes complete on 'drain').
 */
export class RewritingConnection extends Duplex {
  private pendingWrite: ((err?: Error | null) => void) | undefined;

  constructor(
    private readonly socket: Socket,
    private readonly rewriter: HeaderRewriter,
    /** Rewritten bytes already produced while sniffing. */
    initial: readonly Buffer[],
    /** Whether the client already half-closed while sniffing. */
    ended: boolean,
  ) {
    super({ allowHalfOpen: socket.allowHalfOpen });
    // The HTTP/2 session attaches its own listener; this one only makes sure an error
    // raised before it does cannot become an uncaught exception.
    this.on("error", ignore);
    socket.on("data", this.onData);
    socket.on("end", this.onEnd);
    socket.on("drain", this.onDrain);
    socket.on("error", this.onError);
    socket.on("close", this.onClose);
    let room = true;
    for (const b of initial) room = this.push(b);
    if (ended) this.push(null);
    else if (!room) socket.pause();
  }

  private readonly onData = (chunk: Buffer): void => {
    let out: Buffer[];
    try {
      out = this.rewriter.push(chunk);
    } catch (err) {
      this.destroy(err as Error);
      return;
    }
    let room = true;
    for (const b of out) room = this.push(b);
    if (!room) this.socket.pause();
  };

  private readonly onEnd = (): void => {
    this.push(null);
  };

  private readonly onDrain = (): void => {
    const cb = this.pendingWrite;
    this.pendingWrite = undefined;
    cb?.();
  };

  private readonly onError = (err: Error): void => {
    this.destroy(err);
  };

  private readonly onClose = (): void => {
    const cb = this.pendingWrite;
    this.pendingWrite = undefined;
    cb?.(new Error("socket closed"));
    this.destroy();
  };

  /** Whether the client has sent a request on this connection yet. */
  get sawRequest(): boolean {
    return this.rewriter.sawHeaderBlock;
  }

  override _read(): void {
    if (this.socket.isPaused()) this.socket.resume();
  }

  override _write(
    chunk: Buffer,
    _encoding: BufferEncoding,
    cb: (err?: Error | null) => void,
  ): void {
    if (this.socket.write(chunk)) cb();
    else this.pendingWrite = cb;
  }

  override _writev(
    chunks: { chunk: Buffer; encoding: BufferEncoding }[],
    cb: (err?: Error | null) => void,
  ): void {
    this.socket.cork();
    let room = true;
    for (const { chunk } of chunks) room = this.socket.write(chunk);
    this.socket.uncork();
    if (room) cb();
    else this.pendingWrite = cb;
  }

  override _final(cb: (err?: Error | null) => void): void {
    this.socket.end();
    cb();
  }

  override _destroy(err: Error | null, cb: (err?: Error | null) => void): void {
    this.socket.off("data", this.onData);
    this.socket.off("end", this.onEnd);
    this.socket.off("drain", this.onDrain);
    this.socket.off("close", this.onClose);
    this.socket.off("error", this.onError);
    this.socket.on("error", ignore);
    this.socket.destroy();
    cb(err);
  }
}
