import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import type { HttpAddress } from "./listen-address.js";

export interface MetricsSource {
  readonly contentType: string;
  metrics(): Promise<string>;
}

export interface MetricsServer {
  /** Resolves with the bound address (port 0 picks a free one). */
  listen(): Promise<AddressInfo>;
  close(): Promise<void>;
}

/** Serves `GET /metrics` for Prometheus; nothing else. */
export function createMetricsServer(address: HttpAddress, source: MetricsSource): MetricsServer {
  const server: Server = createServer((req, res) => {
    const path = (req.url ?? "").split("?")[0];
    if (path !== "/metrics") {
      res.writeHead(404, { "content-type": "text/plain" }).end("not found: try /metrics\n");
      return;
    }
    if (req.method !== "GET" && req.method !== "HEAD") {
      res.writeHead(405, { allow: "GET, HEAD" }).end();
      return;
    }
    source.metrics().then(
      (text) => {
        res.writeHead(200, { "content-type": source.contentType });
        res.end(req.method === "HEAD" ? undefined : text);
      },
      () => {
        res.writeHead(500, { "content-type": "text/plain" }).end("metrics unavailable\n");
      },
    );
  });
  // A scrape is one small request: bound what a slow or idle client can hold.
  server.headersTimeout = 5_000;
  server.requestTimeout = 10_000;
  server.keepAliveTimeout = 5_000;
  return {
    listen() {
      return new Promise((resolve, reject) => {
        server.once("error", reject);
        server.listen(
          { port: address.port, ...(address.host === undefined ? {} : { host: address.host }) },
          () => {
            server.off("error", reject);
            resolve(server.address() as AddressInfo);
          },
        );
      });
    },
    close() {
      return new Promise((resolve) => {
        server.close(() => {
          resolve();
        });
        server.closeAllConnections();
      });
    },
  };
}
