import type { IncomingMessage, ServerResponse } from "node:http";
import { isOperation, type Operation } from "./counters.js";
import { isRecord, sendJson } from "./http-io.js";
import type { FaultKind, FaultSpec } from "./types.js";

const KINDS: readonly FaultKind[] = [
  "latency",
  "429",
  "500",
  "503",
  "reset",
  "hang",
  "html502",
  "emptyPage",
  "quota",
];
/** Kinds the operation applies itself, in its answer, rather than before it runs. */
const IN_ANSWER: readonly FaultKind[] = ["emptyPage"];
const MAX_LATENCY_MS = 120_000;

interface QueuedFault {
  readonly spec: FaultSpec;
  remaining: number;
  readonly quota?: QuotaState;
}

/** A quota's clock and what each of its windows served and refused, newest last (bounded). */
interface QuotaState {
  readonly addedAt: number;
  windowStart: number;
  readonly windows: QuotaWindow[];
}

export interface QuotaWindow {
  /** ms since the quota was added. */
  readonly startMs: number;
  served: number;
  refused: number;
}

/** Windows a quota remembers for quotaUsage(): an hour of 10 s windows. */
const MAX_WINDOWS = 360;

/** Key Vault operations only: a vault's quota is not Entra's (token, openid) nor IMDS's. */
const NOT_KEY_VAULT: ReadonlySet<string> = new Set(["token", "openid", "imds", "challenge"]);

/** A quota's refusal: the real 429, whose body and (absent) Retry-After faults.ts already knows. */
const THROTTLED: FaultSpec = { operation: "*", kind: "429" };

/** Shape of the error body: Key Vault's for /keys, Entra's for the token endpoint. */
export type FaultStyle = "keyvault" | "entra";

export class FaultQueue {
  private queue: QueuedFault[] = [];

  constructor(private readonly now: () => number = () => performance.now()) {}

  add(spec: FaultSpec): void {
    const valid = validateFault(spec);
    const remaining = spec.count ?? Infinity;
    if (valid.kind !== "quota") {
      this.queue.push({ spec: valid, remaining });
      return;
    }
    const now = this.now();
    this.queue.push({
      spec: valid,
      remaining,
      quota: { addedAt: now, windowStart: now, windows: [] },
    });
  }

  clear(): void {
    this.queue = [];
  }

  list(): FaultSpec[] {
    return this.queue.map((f) => f.spec);
  }

  /** Per quota, what each window served and refused (windows with no request are absent). */
  quotaUsage(): { spec: FaultSpec; windows: QuotaWindow[] }[] {
    return this.queue
      .filter((f) => f.spec.kind === "quota")
      .map((f) => ({ spec: f.spec, windows: (f.quota?.windows ?? []).map((w) => ({ ...w })) }));
  }

  /**
   * Counts the request against every quota it falls under, or refuses it when one is spent for
   * its window; a refused request counts toward none ("throttled requests do not count toward
   * the limit", service limits page).
   */
  private overQuota(operation: Operation): boolean {
    if (NOT_KEY_VAULT.has(operation)) return false;
    const now = this.now();
    const windows = this.queue.flatMap((f) =>
      f.quota !== undefined && (f.spec.operation === "*" || f.spec.operation === operation)
        ? [{ limit: f.spec.limit ?? 0, window: currentWindow(f.quota, f.spec, now) }]
        : [],
    );
    const spent = windows.some(({ limit, window }) => window.served >= limit);
    for (const { window } of windows) {
      if (spent) window.refused++;
      else window.served++;
    }
    return spent;
  }

  /**
   * Consumes one use of the first queued fault that matches the operation: of `kind` when given,
   * else of any kind that acts before the operation runs.
   */
  take(operation: Operation, kind?: FaultKind): FaultSpec | undefined {
    if (kind === undefined && this.overQuota(operation)) return THROTTLED;
    const index = this.queue.findIndex(
      (f) =>
        (f.spec.operation === "*" || f.spec.operation === operation) &&
        f.spec.kind !== "quota" &&
        (kind === undefined ? !IN_ANSWER.includes(f.spec.kind) : f.spec.kind === kind),
    );
    const fault = this.queue[index];
    if (fault === undefined) return undefined;
    fault.remaining -= 1;
    if (fault.remaining <= 0) this.queue.splice(index, 1);
    return fault.spec;
  }
}

/**
 * The window `now` falls in. Windows are fixed, back to back from when the quota was added: the
 * service limits page gives a count per 10 seconds and says no more (fixed or sliding is not
 * documented), and a fixed window is the harsher of the two for a client.
 */
function currentWindow(quota: QuotaState, spec: FaultSpec, now: number): QuotaWindow {
  const windowMs = (spec.windowSeconds ?? 10) * 1000;
  quota.windowStart += Math.floor((now - quota.windowStart) / windowMs) * windowMs;
  const startMs = Math.round(quota.windowStart - quota.addedAt);
  const last = quota.windows[quota.windows.length - 1];
  if (last?.startMs === startMs) return last;
  const window = { startMs, served: 0, refused: 0 };
  quota.windows.push(window);
  if (quota.windows.length > MAX_WINDOWS) quota.windows.shift();
  return window;
}

export function validateFault(input: unknown): FaultSpec {
  if (!isRecord(input)) throw new TypeError("a fault must be a JSON object");
  const { operation, kind, count, ms, retryAfter, limit, windowSeconds } = input;
  const known =
    typeof operation === "string" && isOperation(operation) && operation !== "challenge";
  if (typeof operation !== "string" || (operation !== "*" && !known)) {
    throw new TypeError(`unknown operation ${JSON.stringify(operation)}`);
  }
  if (typeof kind !== "string" || !(KINDS as readonly string[]).includes(kind)) {
    throw new TypeError(`kind must be one of ${KINDS.join(", ")}`);
  }
  const spec: FaultSpec = { operation, kind: kind as FaultKind };
  if (count !== undefined) spec.count = whole(count, "count", 1, Number.MAX_SAFE_INTEGER);
  if (ms !== undefined) spec.ms = whole(ms, "ms", 0, MAX_LATENCY_MS);
  if (retryAfter !== undefined) spec.retryAfter = whole(retryAfter, "retryAfter", 0, 3600);
  if (limit !== undefined) spec.limit = whole(limit, "limit", 0, 1_000_000);
  if (windowSeconds !== undefined)
    spec.windowSeconds = whole(windowSeconds, "windowSeconds", 1, 3600);
  if (spec.kind === "quota") {
    if (spec.limit === undefined) throw new TypeError("quota needs limit");
    if (spec.count !== undefined)
      throw new TypeError("quota takes no count: it lasts until cleared");
  } else if (spec.limit !== undefined || spec.windowSeconds !== undefined) {
    throw new TypeError("limit and windowSeconds apply to the quota kind only");
  }
  if (spec.kind === "latency" && spec.ms === undefined) throw new TypeError("latency needs ms");
  if (spec.kind === "emptyPage" && operation !== "list") {
    throw new TypeError("emptyPage applies to the list operation only");
  }
  return spec;
}

function whole(value: unknown, name: string, min: number, max: number): number {
  if (typeof value !== "number" || !Number.isInteger(value) || value < min || value > max) {
    throw new TypeError(`${name} must be an integer in ${min}..${max}`);
  }
  return value;
}

const MESSAGES: Record<"429" | "500" | "503", [string, string]> = {
  "429": [
    "Throttled",
    "Request was not processed because too many requests were received. Reason: VaultRequestTypeLimitReached",
  ],
  "500": ["InternalServerError", "The service encountered an internal error (injected fault)."],
  "503": ["ServiceUnavailable", "The service is temporarily unavailable (injected fault)."],
};

/**
 * Applies a fault. Returns true when the request has been answered (or its socket destroyed);
 * false when processing should go on (latency).
 */
export async function applyFault(
  fault: FaultSpec,
  req: IncomingMessage,
  res: ServerResponse,
  style: FaultStyle,
  sleep: (ms: number) => Promise<void>,
): Promise<boolean> {
  switch (fault.kind) {
    case "latency":
      await sleep(fault.ms ?? 0);
      return false;
    case "emptyPage":
    case "quota":
      return false; // applied by the list itself; a quota is never taken (THROTTLED is)
    case "reset":
      req.socket.destroy();
      return true;
    case "hang":
      await untilClosed(res);
      return true;
    case "html502":
      sendHtml(res, 502, GATEWAY_502);
      return true;
    case "429":
    case "500":
    case "503": {
      const headers: Record<string, string> = {};
      if (fault.retryAfter !== undefined) headers["retry-after"] = String(fault.retryAfter);
      const [code, message] = MESSAGES[fault.kind];
      const body =
        style === "keyvault"
          ? { error: { code, message } }
          : { error: "temporarily_unavailable", error_description: message, error_codes: [] };
      sendJson(res, Number(fault.kind), body, headers);
      return true;
    }
  }
}

/**
 * Never answers, as a path that silently drops packets (a firewall, a black-holed route) looks to
 * the client; no source shows Entra or Key Vault themselves doing this. The request is held until
 * the client gives up or the emulator closes (close() destroys every connection): no timer leaks.
 */
function untilClosed(res: ServerResponse): Promise<void> {
  if (res.destroyed || res.socket === null || res.socket.destroyed) return Promise.resolve();
  return new Promise((resolve) => res.once("close", resolve));
}

// A gateway or proxy in front of the endpoint answers a failed backend with its own HTML page, not
// the service's JSON (502: RFC 9110 §15.6.3). The body only has to be HTML.
const GATEWAY_502 = `<html>
<head><title>502 Bad Gateway</title></head>
<body>
<center><h1>502 Bad Gateway</h1></center>
</body>
</html>
`;

function sendHtml(res: ServerResponse, status: number, html: string): void {
  if (res.headersSent || res.destroyed) return;
  const data = Buffer.from(html);
  res.writeHead(status, {
    "content-type": "text/html",
    "content-length": String(data.length),
  });
  res.end(data);
}
