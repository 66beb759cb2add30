import type { Operation } from "./counters.js";
import {
  challengeResource,
  enterOperation,
  type EmulatorCore,
  type RequestContext,
} from "./context.js";
import { CRYPTO_OPERATIONS, runCryptoOperation, type CryptoOperation } from "./crypto-ops.js";
import { badParameter, KeyVaultError, readJsonObject, sendEmpty, sendJson } from "./http-io.js";
import { deletedKeyBundle, keyBundle, keyItem } from "./key-bundle.js";
import { parseCreate, parseUpdate } from "./key-requests.js";

const MAX_PAGE = 25;

/** A matched route: its counter name and what it answers (undefined = 204 No Content). */
interface Route {
  readonly operation: Operation;
  readonly run: () => unknown;
}

/** Serves /keys/** and /deletedkeys/**. Returns false for any other path. */
export async function handleKeysApi(core: EmulatorCore, ctx: RequestContext): Promise<boolean> {
  const root = ctx.segments[0];
  if (root !== "keys" && root !== "deletedkeys") return false;
  // Auth comes before the body is read: the SDK's first request carries no body at all.
  if (!authorize(core, ctx)) return true;
  const route = root === "keys" ? keysRoute(core, ctx) : deletedKeysRoute(core, ctx);
  if (route === undefined) {
    throw new KeyVaultError(
      404,
      "NotFound",
      `The emulator does not serve ${ctx.req.method ?? "?"} ${ctx.url.pathname}.`,
    );
  }
  if (await enterOperation(core, ctx, route.operation, "keyvault")) return true;
  const body = await route.run();
  if (body === undefined) sendEmpty(ctx.res, 204);
  else sendJson(ctx.res, 200, body);
  return true;
}

function authorize(core: EmulatorCore, ctx: RequestContext): boolean {
  const resource = challengeResource(core.flavor);
  const match = /^Bearer\s+(\S+)\s*$/i.exec(ctx.req.headers.authorization ?? "");
  const token = match?.[1];
  const check =
    token === undefined
      ? { ok: false as const, message: "AKV10000: Request is missing a Bearer or PoP token." }
      : core.tokens.verify(token, resource, core.registration.tenantId);
  if (check.ok) return true;
  core.counters.increment("challenge");
  // Key Vault's challenge names the tenant GUID in lower case (recorded: Azure/azure-sdk-for-net,
  // sdk/keyvault/Azure.Security.KeyVault.Keys/tests/SessionRecords/KeyClientLiveTests/
  // GetKeyNonExisting.json), so a tenant given in upper case is lowered here.
  const tenant = core.registration.tenantId.toLowerCase();
  const headers = {
    "www-authenticate": `Bearer authorization="https://login.microsoftonline.com/${tenant}", resource="${resource}"`,
  };
  // Managed HSM answers its challenge with an empty body.
  if (core.flavor === "managedhsm") sendEmpty(ctx.res, 401, headers);
  else sendJson(ctx.res, 401, { error: { code: "Unauthorized", message: check.message } }, headers);
  return false;
}

function keysRoute(core: EmulatorCore, ctx: RequestContext): Route | undefined {
  const { keys } = core;
  const { req, host, segments } = ctx;
  const [, name, third, fourth] = segments;
  const method = req.method ?? "";
  if (name === undefined || name === "" || segments.length > 4) return undefined;

  if (segments.length === 2 || (segments.length === 3 && third === "")) {
    if (method === "GET") return { operation: "get", run: () => keyBundle(host, keys.get(name)) };
    if (method === "DELETE" && segments.length === 2) {
      return { operation: "delete", run: () => deletedKeyBundle(host, name, keys.delete(name)) };
    }
  }
  if (segments.length === 3 && third !== undefined) {
    if (third === "create" && method === "POST") {
      return {
        operation: "create",
        run: async () => {
          const params = parseCreate(await readJsonObject(req));
          return keyBundle(host, await keys.create(name, params));
        },
      };
    }
    if (third === "rotate" && method === "POST") {
      return { operation: "rotate", run: async () => keyBundle(host, await keys.rotate(name)) };
    }
    if (third === "versions" && method === "GET") {
      return { operation: "list", run: () => listVersions(core, ctx, name) };
    }
    if (method === "GET") {
      return { operation: "get", run: () => keyBundle(host, keys.get(name, third)) };
    }
    if (method === "PATCH") {
      return {
        operation: "update",
        run: async () => {
          keys.get(name, third); // 404 before parsing, like the service
          const patch = parseUpdate(await readJsonObject(req));
          return keyBundle(host, keys.update(name, third, patch));
        },
      };
    }
  }
  const operation = CRYPTO_OPERATIONS.find((op) => op === fourth);
  if (
    segments.length === 4 &&
    operation !== undefined &&
    third !== undefined &&
    method === "POST"
  ) {
    return { operation, run: () => crypto(core, ctx, name, third, operation) };
  }
  return undefined;
}

async function crypto(
  core: EmulatorCore,
  ctx: RequestContext,
  name: string,
  version: string,
  operation: CryptoOperation,
): Promise<unknown> {
  const key = core.keys.get(name, version);
  const body = await readJsonObject(ctx.req);
  return runCryptoOperation(ctx.host, key, operation, body);
}

function listVersions(core: EmulatorCore, ctx: RequestContext, name: string): unknown {
  const { searchParams } = ctx.url;
  const maxRaw = searchParams.get("maxresults");
  const max = maxRaw === null || maxRaw === "" ? MAX_PAGE : Number(maxRaw);
  if (!Number.isInteger(max) || max < 1 || max > MAX_PAGE) {
    throw badParameter(`maxresults must be an integer between 1 and ${MAX_PAGE}.`);
  }
  const start = parseSkipToken(searchParams.get("$skiptoken"));
  const versions = core.keys.versions(name);
  const page = versions.slice(start, start + max);
  let nextLink: string | null = null;
  if (start + max < versions.length) {
    const next = new URLSearchParams();
    next.set("api-version", searchParams.get("api-version") ?? "7.4");
    next.set("$skiptoken", Buffer.from(String(start + max)).toString("base64url"));
    next.set("maxresults", String(max));
    nextLink = `https://${ctx.host}/keys/${name}/versions?${next.toString()}`;
  }
  return { value: page.map((v) => keyItem(ctx.host, v)), nextLink };
}

function parseSkipToken(token: string | null): number {
  if (token === null || token === "") return 0;
  const start = Number(Buffer.from(token, "base64url").toString("utf8"));
  if (!Number.isSafeInteger(start) || start < 0) throw badParameter("Invalid $skiptoken.");
  return start;
}

function deletedKeysRoute(core: EmulatorCore, ctx: RequestContext): Route | undefined {
  const { keys } = core;
  const { req, host, segments } = ctx;
  const [, name, third] = segments;
  const method = req.method ?? "";
  if (name === undefined || name === "") return undefined;
  if (segments.length === 2 && method === "GET") {
    return {
      operation: "getdeleted",
      run: () => deletedKeyBundle(host, name, keys.getDeleted(name)),
    };
  }
  if (segments.length === 2 && method === "DELETE") {
    return {
      operation: "purge",
      run: () => {
        keys.purge(name);
        return undefined;
      },
    };
  }
  if (segments.length === 3 && third === "recover" && method === "POST") {
    return { operation: "recover", run: () => keyBundle(host, keys.recover(name)) };
  }
  return undefined;
}
