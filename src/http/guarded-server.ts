import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo, Socket } from "node:net";
import { ConnectionLimit, OccurrenceLog, type WarnLogger } from "../net/index.js";
import type { HttpAddress } from "./listen-address.js";

export interface GuardedServerOptions {
  /** For log lines: "metrics" or "health". */
  readonly name: string;
  readonly address: HttpAddress;
  /**
   * Connections held at once; at the bound a new one replaces the least recently active idle
   * one, or is refused when every one has a request in flight.
   */
  readonly maxConnections: number;
  readonly logger?: WarnLogger | undefined;
}

export interface GuardedServer {
  /** Resolves with the bound address (port 0 picks a free one). */
  listen(): Promise<AddressInfo>;
  close(): Promise<void>;
}

/** A probe or a scrape is one small request: what a slow, idle or hostile client may hold. */
export const httpBounds = {
  headersTimeoutMs: 5_000,
  requestTimeoutMs: 10_000,
  keepAliveTimeoutMs: 5_000,
  /** Socket inactivity (e.g. a client that never reads its answer). */
  idleTimeoutMs: 10_000,
  /** How often Node enforces the timeouts above (its default is 30 s). */
  checkingIntervalMs: 1_000,
  maxHeaderBytes: 8 * 1024,
  maxHeadersCount: 50,
} as const;

interface ConnectionState {
  /** The response in flight, if any. */
  current: ServerResponse | undefined;
  closing: boolean;
}

/**
 * An HTTP/1.1 server for the plugin's operator ports, bounded against hostile neighbours:
 * timeouts that act within a second, a connection limit, and one request in flight per
 * connection. A client that pipelines one request gets its first answer and then the connection
 * closes; one that pipelines more loses the connection at once. Requests behind the first are
 * never handled, so a flood of them costs no renders and no queue.
 */
export function createGuardedServer(
  options: GuardedServerOptions,
  handler: (req: IncomingMessage, res: ServerResponse) => void,
): GuardedServer {
  const { logger, name } = options;
  const states = new WeakMap<Socket, ConnectionState>();
  const acceptErrors = new OccurrenceLog(logger, `the ${name} port cannot accept connections`);
  const atLimit = new OccurrenceLog(
    logger,
    `the ${name} port is at its limit of ${options.maxConnections} connections: closing the least recently active idle one, or the new one when all are busy`,
  );
  const limit = new ConnectionLimit({
    max: options.maxConnections,
    isBusy: (socket) => states.get(socket)?.current !== undefined,
    onEvict: () => {
      atLimit.note();
    },
  });

  const server: Server = createServer(
    {
      connectionsCheckingInterval: httpBounds.checkingIntervalMs,
      headersTimeout: httpBounds.headersTimeoutMs,
      requestTimeout: httpBounds.requestTimeoutMs,
      keepAliveTimeout: httpBounds.keepAliveTimeoutMs,
      maxHeaderSize: httpBounds.maxHeaderBytes,
    },
    (req, res) => {
      const socket = req.socket;
      const state = states.get(socket);
      if (state === undefined) return; // not admitted (cannot happen: see 'connection')
      if (state.current !== undefined) {
        // Pipelined: leave it unanswered and close after the answer in flight. Node's parser reads
        // the socket natively (pause() does not stop it), so a client that keeps sending while
        // that answer is pending loses the connection at once instead of queueing requests.
        if (state.closing) {
          socket.destroy();
          return;
        }
        state.closing = true;
        if (!state.current.headersSent) state.current.shouldKeepAlive = false;
        return;
      }
      state.current = res;
      res.once("close", () => {
        state.current = undefined;
        if (state.closing) socket.destroySoon();
      });
      handler(req, res);
    },
  );
  server.maxHeadersCount = httpBounds.maxHeadersCount;
  server.timeout = httpBounds.idleTimeoutMs;
  server.on("connection", (socket: Socket) => {
    states.set(socket, { current: undefined, closing: false });
    if (!limit.admit(socket)) {
      atLimit.note();
      socket.destroy();
    }
  });

  let listening: { reject: (err: Error) => void } | undefined;
  // Without a listener an accept error (EMFILE) would be an uncaught exception.
  server.on("error", (err: NodeJS.ErrnoException) => {
    if (listening !== undefined) {
      listening.reject(err);
      listening = undefined;
      return;
    }
    acceptErrors.note({ code: err.code, err: err.message });
  });

  return {
    listen() {
      return new Promise((resolve, reject) => {
        listening = { reject };
        const { host, port } = options.address;
        server.listen({ port, ...(host === undefined ? {} : { host }) }, () => {
          listening = undefined;
          resolve(server.address() as AddressInfo);
        });
      });
    },
    close() {
      acceptErrors.close();
      atLimit.close();
      if (!server.listening) return Promise.resolve();
      return new Promise((resolve) => {
        server.close(() => {
          resolve();
        });
        server.closeAllConnections();
      });
    },
  };
}
