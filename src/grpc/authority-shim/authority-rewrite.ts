import type { Socket } from "node:net";
import type { Duplex } from "node:stream";
import { needsAuthorityRewrite, rewriteAuthority } from "./authority-check.js";
import { RewritingConnection } from "./authority-duplex.js";
import { EMPTY_SETTINGS_FRAME } from "./http2-frames.js";
import { HeaderRewriter, MAX_HEADER_BLOCK_BYTES } from "./http2-header-rewriter.js";

export interface PrepareConnectionOptions {
  /** How long a client may take to send its preface and first request headers (default 10 s). */
  readonly sniffTimeoutMs?: number;
  /** Bound on one request header block as received (default: the most Node's path accepts). */
  readonly maxHeaderBlockBytes?: number;
}

export class ConnectionRejectedError extends Error {
  override name = "ConnectionRejectedError";
}

const DEFAULT_SNIFF_TIMEOUT_MS = 10_000;
/** What Node's server advertises (SETTINGS_HEADER_TABLE_SIZE default); more is a GOAWAY there. */
const MAX_TABLE_SIZE = 4096;
/** Bytes held while sniffing besides the first header block (SETTINGS, WINDOW_UPDATE, DATA...). */
const SNIFF_SLACK_BYTES = 64 * 1024;

/**
 * Decides how a freshly accepted HTTP/2 connection reaches Node's HTTP/2 server.
 *
 * kube-apiserver 1.25–1.28 sends the socket path as :authority, which Node resets. We read up
 * to the first request header block: if its authority is acceptable, the bytes go back into
 * the socket and the socket itself is returned (no overhead). Otherwise, or when undecidable
 * (client idle after its preface), a Duplex is returned that rewrites every request header
 * block for the life of the connection. Malformed input, a bad preface or a silent client
 * destroys the socket and rejects.
 *
 * grpc-go waits for the server's SETTINGS before sending any request, so while sniffing we
 * send an empty SETTINGS frame ourselves and later drop the client's ACK of it.
 */
export function prepareConnection(
  socket: Socket,
  options: PrepareConnectionOptions = {},
): Promise<Duplex> {
  const maxHeaderBlockBytes = options.maxHeaderBlockBytes ?? MAX_HEADER_BLOCK_BYTES;
  const sniffLimit = maxHeaderBlockBytes + SNIFF_SLACK_BYTES;
  const rewriter = new HeaderRewriter({
    maxHeaderBlockBytes,
    maxTableSize: MAX_TABLE_SIZE,
    dropFirstSettingsAck: true,
    rewriteField: rewriteAuthority,
  });

  return new Promise((resolve, reject) => {
    const raw: Buffer[] = [];
    const rewritten: Buffer[] = [];
    let settingsSent = false;

    const detach = (): void => {
      clearTimeout(timer);
      rewriter.forgetFirstHeaderBlock();
      socket.off("data", onData);
      socket.off("end", onEnd);
      socket.off("error", onError);
      socket.off("close", onClose);
      // Until the HTTP/2 session attaches its own handler, a socket error must not throw.
      socket.on("error", () => undefined);
    };

    const fail = (reason: Error): void => {
      detach();
      socket.destroy();
      reject(reason);
    };

    const useRaw = (): void => {
      detach();
      socket.pause();
      socket.unshift(withoutRange(Buffer.concat(raw), rewriter.droppedAck));
      resolve(socket);
    };

    const useRewriter = (ended: boolean): void => {
      detach();
      resolve(new RewritingConnection(socket, rewriter, rewritten, ended));
    };

    const decide = (): void => {
      const first = rewriter.firstHeaderBlock;
      if (first && needsAuthorityRewrite(first)) useRewriter(false);
      else if (first && rewriter.droppedAck) useRaw();
      else if (rewriter.bytesIn > sniffLimit) useRewriter(false);
    };

    const onData = (chunk: Buffer): void => {
      raw.push(chunk);
      try {
        for (const b of rewriter.push(chunk)) rewritten.push(b);
      } catch (err) {
        fail(new ConnectionRejectedError("malformed HTTP/2 client stream", { cause: err }));
        return;
      }
      if (rewriter.magicReceived && !settingsSent) {
        settingsSent = true;
        socket.write(EMPTY_SETTINGS_FRAME);
      }
      decide();
    };

    const onEnd = (): void => {
      if (rewriter.prefaceReceived) useRewriter(true);
      else fail(new ConnectionRejectedError("connection ended before the HTTP/2 preface"));
    };

    const onError = (err: Error): void => {
      fail(new ConnectionRejectedError("socket error while reading the preface", { cause: err }));
    };

    const onClose = (): void => {
      fail(new ConnectionRejectedError("connection closed before the first request"));
    };

    const timer = setTimeout(() => {
      // A valid but quiet client is served through the rewriter, which is right for any authority.
      if (rewriter.prefaceReceived) useRewriter(false);
      else fail(new ConnectionRejectedError("no HTTP/2 preface within the sniff timeout"));
    }, options.sniffTimeoutMs ?? DEFAULT_SNIFF_TIMEOUT_MS);

    socket.on("data", onData);
    socket.on("end", onEnd);
    socket.on("error", onError);
    socket.on("close", onClose);
  });
}

function withoutRange(buf: Buffer, range: { start: number; end: number } | undefined): Buffer {
  if (!range) return buf;
  return Buffer.concat([buf.subarray(0, range.start), buf.subarray(range.end)]);
}
