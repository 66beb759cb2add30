import type { IncomingMessage, ServerResponse } from "node:http";

export const MAX_BODY_BYTES = 1024 * 1024;

/** An error answered in Key Vault's shape: {"error":{"code","message","innererror"?}}. */
export class KeyVaultError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly innerCode?: string,
  ) {
    super(message);
  }

  toBody(): unknown {
    const error: Record<string, unknown> = { code: this.code, message: this.message };
    if (this.innerCode !== undefined) error["innererror"] = { code: this.innerCode };
    return { error };
  }
}

export function badParameter(message = "The parameter is incorrect."): KeyVaultError {
  return new KeyVaultError(400, "BadParameter", message);
}

export function sendJson(
  res: ServerResponse,
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
): void {
  if (res.headersSent || res.destroyed) return;
  const data = Buffer.from(JSON.stringify(body));
  res.writeHead(status, {
    "content-type": "application/json; charset=utf-8",
    "content-length": String(data.length),
    "cache-control": "no-cache",
    ...headers,
  });
  res.end(data);
}

export function sendEmpty(
  res: ServerResponse,
  status: number,
  headers: Record<string, string> = {},
): void {
  if (res.headersSent || res.destroyed) return;
  res.writeHead(status, { "content-length": "0", ...headers });
  res.end();
}

export function sendKeyVaultError(res: ServerResponse, err: KeyVaultError): void {
  sendJson(res, err.status, err.toBody());
}

/** Reads the whole body, refusing more than MAX_BODY_BYTES with a 413. */
export function readBody(req: IncomingMessage): Promise<Buffer> {
  const tooLarge = new KeyVaultError(
    413,
    "RequestEntityTooLarge",
    `The request body is larger than ${MAX_BODY_BYTES} bytes.`,
  );
  if (Number(req.headers["content-length"] ?? "0") > MAX_BODY_BYTES) {
    return Promise.reject(tooLarge);
  }
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const onData = (chunk: Buffer): void => {
      size += chunk.length;
      if (size <= MAX_BODY_BYTES) {
        chunks.push(chunk);
        return;
      }
      // Keep draining (and discarding) so the 413 can still be written back.
      req.off("data", onData);
      req.resume();
      reject(tooLarge);
    };
    req.on("data", onData);
    req.once("end", () => {
      resolve(Buffer.concat(chunks));
    });
    req.once("error", reject);
    req.once("close", () => {
      reject(new Error("request closed before its body was read"));
    });
  });
}

export async function readJsonObject(req: IncomingMessage): Promise<Record<string, unknown>> {
  const raw = await readBody(req);
  if (raw.length === 0) throw badParameter("The request body is empty.");
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw.toString("utf8"));
  } catch {
    throw badParameter("The request body is not valid JSON.");
  }
  if (!isRecord(parsed)) throw badParameter("The request body must be a JSON object.");
  return parsed;
}

export function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** host[:port] the client used; kids and discovery URLs must carry it. */
export function requestHost(req: IncomingMessage, fallback: string): string {
  const host = req.headers.host;
  return host !== undefined && /^[A-Za-z0-9.\-[\]:]{1,255}$/.test(host) ? host : fallback;
}

export function isLoopback(address: string | undefined): boolean {
  return address === "127.0.0.1" || address === "::1" || address === "::ffff:127.0.0.1";
}
