import { KEY_PERMISSIONS, parseKeyPermissions } from "./access-policy.js";
import type { EmulatorCore, RequestContext } from "./context.js";
import { validateFault } from "./faults.js";
import {
  badParameter,
  isLoopback,
  KeyVaultError,
  readBody,
  sendEmpty,
  sendJson,
} from "./http-io.js";
import type { FaultSpec } from "./types.js";

/** /_emulator/counters, /faults, /quota and /permissions: no auth, loopback peers only. */
export async function handleControlApi(core: EmulatorCore, ctx: RequestContext): Promise<boolean> {
  const [root, resource, ...rest] = ctx.segments;
  if (root !== "_emulator") return false;
  if (!isLoopback(ctx.req.socket.remoteAddress)) {
    throw new KeyVaultError(403, "Forbidden", "Control paths answer loopback peers only.");
  }
  const method = ctx.req.method;
  if (rest.length === 0 && resource === "counters") {
    if (method === "GET") {
      sendJson(ctx.res, 200, core.counters.snapshot());
      return true;
    }
    if (method === "DELETE") {
      core.counters.reset();
      sendEmpty(ctx.res, 204);
      return true;
    }
  }
  if (rest.length === 0 && resource === "faults") {
    if (method === "GET") {
      sendJson(ctx.res, 200, core.faults.list());
      return true;
    }
    if (method === "POST") {
      for (const fault of await readFaults(ctx)) core.faults.add(fault);
      sendJson(ctx.res, 200, core.faults.list());
      return true;
    }
    if (method === "DELETE") {
      core.faults.clear();
      sendEmpty(ctx.res, 204);
      return true;
    }
  }
  if (rest.length === 0 && resource === "quota" && method === "GET") {
    sendJson(ctx.res, 200, core.faults.quotaUsage());
    return true;
  }
  if (rest.length === 0 && resource === "permissions") {
    if (method === "GET") {
      sendJson(ctx.res, 200, { keys: [...core.keyPermissions] });
      return true;
    }
    if (method === "POST") {
      core.keyPermissions = await readPermissions(ctx);
      sendJson(ctx.res, 200, { keys: [...core.keyPermissions] });
      return true;
    }
    if (method === "DELETE") {
      core.keyPermissions = new Set(KEY_PERMISSIONS);
      sendEmpty(ctx.res, 204);
      return true;
    }
  }
  throw new KeyVaultError(404, "NotFound", `No control path ${method ?? "?"} ${ctx.url.pathname}.`);
}

async function readJson(ctx: RequestContext): Promise<unknown> {
  const raw = await readBody(ctx.req);
  try {
    return JSON.parse(raw.toString("utf8"));
  } catch {
    throw badParameter("The request body is not valid JSON.");
  }
}

/** `{"keys": ["get", "list", …]}`: the access policy's new key permissions. */
async function readPermissions(
  ctx: RequestContext,
): Promise<ReturnType<typeof parseKeyPermissions>> {
  const parsed = await readJson(ctx);
  const keys = (parsed as { keys?: unknown } | null)?.keys;
  if (!Array.isArray(keys) || !keys.every((k) => typeof k === "string")) {
    throw badParameter('Expected {"keys": [permission, …]}.');
  }
  try {
    return parseKeyPermissions(keys);
  } catch (err) {
    throw badParameter((err as Error).message);
  }
}

/** One fault object, or an array of them (queued in order). */
async function readFaults(ctx: RequestContext): Promise<FaultSpec[]> {
  const parsed = await readJson(ctx);
  try {
    return Array.isArray(parsed) ? parsed.map(validateFault) : [validateFault(parsed)];
  } catch (err) {
    throw badParameter(`Invalid fault: ${(err as Error).message}`);
  }
}
