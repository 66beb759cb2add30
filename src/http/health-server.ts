import type { ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import type { WarnLogger } from "../net/index.js";
import { createGuardedServer } from "./guarded-server.js";
import type { KeyVaultView } from "./key-vault-tracker.js";
import type { HttpAddress } from "./listen-address.js";
import { sharedResult } from "./shared-result.js";
import type { LivenessResult } from "./socket-liveness.js";

/** The body of `/readyz`: state from memory only, no secrets, no key material. */
export interface Readiness {
  readonly ready: boolean;
  /** "ok" when ready; otherwise Status' healthz or the error Status would return. */
  readonly reason: string;
  /** key_id of the current seed (a SHA-256 of the key URL), or "" when none. */
  readonly keyId: string;
  readonly keyVault: KeyVaultView;
}

export interface HealthChecks {
  /** Must be cheap and local; the server runs one at a time and shares its result. */
  live(): Promise<LivenessResult>;
  /** Synchronous and from memory. */
  ready(): Readiness;
}

export interface HealthServerOptions {
  readonly address: HttpAddress;
  /** `--healthz-path`, the Go plugin's path: answers like `/readyz`. */
  readonly healthzPath: string;
  /** Upper bound on a liveness check (`--healthz-timeout`). */
  readonly timeoutMs: number;
  readonly checks: HealthChecks;
  readonly logger?: WarnLogger | undefined;
}

export interface HealthServer {
  /** Resolves with the bound address (port 0 picks a free one). */
  listen(): Promise<AddressInfo>;
  close(): Promise<void>;
}

/** kubelet opens one connection per probe (three probes): room for a retry storm too. */
export const maxHealthConnections = 64;
/** Probes share the self-check in flight; none reuses an older one. */
const liveReuseMs = 0;

const livez = "/livez";
const readyz = "/readyz";

function send(res: ServerResponse, head: boolean, status: number, body: unknown): void {
  const text = typeof body === "string" ? body : JSON.stringify(body) + "\n";
  res.writeHead(status, {
    "content-type": typeof body === "string" ? "text/plain; charset=utf-8" : "application/json",
    "content-length": Buffer.byteLength(text),
    "cache-control": "no-store",
  });
  res.end(head ? undefined : text);
}

/**
 * `/livez`, `/readyz` and the Go plugin's `--healthz-path` for kubelet probes. Every answer comes
 * from memory or from our own socket: a probe never makes a Key Vault request (the Go plugin's
 * /healthz made six).
 */
export function createHealthServer(options: HealthServerOptions): HealthServer {
  const { checks, timeoutMs } = options;
  let closing = false;

  // Probes from several kubelets or a retry storm share one self-check instead of piling up.
  const live = sharedResult((): Promise<LivenessResult> => {
    let timer: NodeJS.Timeout | undefined;
    return Promise.race([
      checks.live(),
      new Promise<LivenessResult>((resolve) => {
        timer = setTimeout(() => {
          resolve({ live: false, reason: `self-check took longer than ${timeoutMs} ms` });
        }, timeoutMs);
      }),
    ])
      .catch((): LivenessResult => ({ live: false, reason: "self-check failed" }))
      .finally(() => {
        clearTimeout(timer);
      });
  }, liveReuseMs);

  const server = createGuardedServer(
    {
      name: "health",
      address: options.address,
      maxConnections: maxHealthConnections,
      logger: options.logger,
    },
    (req, res) => {
      const path = (req.url ?? "").split("?")[0];
      // /livez and /readyz keep their meaning even if --healthz-path names one of them.
      const kind =
        path === livez
          ? "live"
          : path === readyz
            ? "ready"
            : path === options.healthzPath
              ? "healthz"
              : undefined;
      if (kind === undefined) {
        send(res, false, 404, `not found: try ${livez}, ${readyz} or ${options.healthzPath}\n`);
        return;
      }
      if (req.method !== "GET" && req.method !== "HEAD") {
        res.writeHead(405, { allow: "GET, HEAD", "content-length": 0 }).end();
        return;
      }
      const head = req.method === "HEAD";
      if (kind === "live") {
        void live().then((result) => {
          if (closing) send(res, head, 503, { live: false, reason: "shutting down" });
          else send(res, head, result.live ? 200 : 503, result);
        });
        return;
      }
      const readiness = closing
        ? { ...checks.ready(), ready: false, reason: "not ready: shutting down" }
        : checks.ready();
      if (kind === "healthz" && readiness.ready) {
        // What the Go plugin's probe answered on success.
        send(res, head, 200, "ok");
        return;
      }
      send(res, head, readiness.ready ? 200 : 503, readiness);
    },
  );
  return {
    listen: () => server.listen(),
    close() {
      closing = true;
      return server.close();
    },
  };
}
