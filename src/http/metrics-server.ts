import type { AddressInfo } from "node:net";
import type { WarnLogger } from "../net/index.js";
import { createGuardedServer } from "./guarded-server.js";
import type { HttpAddress } from "./listen-address.js";
import { sharedResult } from "./shared-result.js";

export interface MetricsSource {
  readonly contentType: string;
  metrics(): Promise<string>;
}

export interface MetricsServer {
  /** Resolves with the bound address (port 0 picks a free one). */
  listen(): Promise<AddressInfo>;
  close(): Promise<void>;
}

/** Prometheus needs one connection per server scraping: room for many, and for people with curl. */
export const maxMetricsConnections = 64;
/** Scrapes within this long of a rendering share it (an HA pair scrapes at the same moment). */
export const metricsReuseMs = 250;

/** Serves `GET /metrics` for Prometheus; nothing else. */
export function createMetricsServer(
  address: HttpAddress,
  source: MetricsSource,
  logger?: WarnLogger,
): MetricsServer {
  // One rendering at a time (19-59 KB each), however many scrapes arrive.
  const render = sharedResult(() => source.metrics(), metricsReuseMs);
  return createGuardedServer(
    { name: "metrics", address, maxConnections: maxMetricsConnections, logger },
    (req, res) => {
      const path = (req.url ?? "").split("?")[0];
      if (path !== "/metrics") {
        res.writeHead(404, { "content-type": "text/plain" }).end("not found: try /metrics\n");
        return;
      }
      if (req.method !== "GET" && req.method !== "HEAD") {
        res.writeHead(405, { allow: "GET, HEAD" }).end();
        return;
      }
      render().then(
        (text) => {
          res.writeHead(200, { "content-type": source.contentType });
          res.end(req.method === "HEAD" ? undefined : text);
        },
        () => {
          res.writeHead(500, { "content-type": "text/plain" }).end("metrics unavailable\n");
        },
      );
    },
  );
}
