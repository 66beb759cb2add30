import { createServer, type Server, type Socket } from "node:net";
import type { Duplex } from "node:stream";
import {
  prepareConnection,
  type PrepareConnectionOptions,
} from "../../../../src/grpc/authority-shim/authority-rewrite.js";

/** How a connection was admitted: as is, through the authority rewriter, or not at all. */
export type AdmissionEvent =
  | { readonly mode: "raw" }
  | { readonly mode: "rewrite" }
  | { readonly mode: "rejected"; readonly error: unknown };

export interface AuthorityListenerOptions extends PrepareConnectionOptions {
  readonly onAdmission?: (event: AdmissionEvent) => void;
}

/** What grpc-js `server.createConnectionInjector(creds)` returns, reduced to what we use. */
export interface ConnectionInjector {
  injectConnection(connection: Duplex): void;
}

export interface AuthorityListener {
  /** The underlying server, e.g. for `address()` or extra listeners. */
  readonly server: Server;
  listen(path: string): Promise<void>;
  /**
   * Stops accepting, destroys connections still being sniffed, and resolves once every
   * connection has closed: shut grpc-js down first so the admitted ones close.
   */
  close(): Promise<void>;
}

/**
 * Test harness doing what src/grpc/server.ts does with `wrapConnection: prepareConnection`:
 * own the listening socket, pass each connection through prepareConnection, inject the result
 * into grpc-js. It also reports how each connection was admitted, for assertions.
 */
export function createAuthorityListener(
  injector: ConnectionInjector,
  options: AuthorityListenerOptions = {},
): AuthorityListener {
  const sniffing = new Set<Socket>();
  const server = createServer((socket) => {
    sniffing.add(socket);
    prepareConnection(socket, options).then(
      (connection) => {
        sniffing.delete(socket);
        options.onAdmission?.({ mode: connection === socket ? "raw" : "rewrite" });
        injector.injectConnection(connection);
      },
      (error: unknown) => {
        sniffing.delete(socket);
        options.onAdmission?.({ mode: "rejected", error });
      },
    );
  });
  return {
    server,
    listen: (path) =>
      new Promise((resolve, reject) => {
        server.once("error", reject);
        server.listen(path, () => {
          server.off("error", reject);
          resolve();
        });
      }),
    close: () =>
      new Promise((resolve, reject) => {
        server.close((err) => {
          if (err) reject(err);
          else resolve();
        });
        for (const socket of sniffing) socket.destroy();
      }),
  };
}
