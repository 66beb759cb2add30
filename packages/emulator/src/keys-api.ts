import { checkPermission, type Caller } from "./access-policy.js";
import { apiVersionError } from "./api-versions.js";
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
import { setServiceHeaders } from "./service-headers.js";

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
  setServiceHeaders(ctx.res, core.flavor, header(ctx, "x-ms-client-request-id"));
  // Auth comes before the body is read: the SDK's first request carries no body at all.
  const caller = authorize(core, ctx);
  if (caller === undefined) return true;
  const versionError = apiVersionError(ctx.url.searchParams.get("api-version"), core.apiVersions);
  if (versionError !== undefined) throw versionError;
  const route = root === "keys" ? keysRoute(core, ctx) : deletedKeysRoute(core, ctx);
  if (route === undefined) {
    throw new KeyVaultError(
      404,
      "NotFound",
      `The emulator does not serve ${ctx.req.method ?? "?"} ${ctx.url.pathname}.`,
    );
  }
  if (await enterOperation(core, ctx, route.operation, "keyvault")) return true;
  checkPermission(core.keyPermissions, route.operation, caller, vaultName(ctx.host));
  const body = await route.run();
  if (body === undefined) sendEmpty(ctx.res, 204);
  else sendJson(ctx.res, 200, body);
  return true;
}

function header(ctx: RequestContext, name: string): string | undefined {
  const value = ctx.req.headers[name];
  return Array.isArray(value) ? value[0] : value;
}

/** The first label of the host the client used (`myvault` of myvault.vault.azure.net). */
function vaultName(host: string): string {
  return host.replace(/:\d+$/, "").split(".")[0] ?? host;
}

/** The caller of a request with a valid token; otherwise answers the 401 challenge. */
function authorize(core: EmulatorCore, ctx: RequestContext): Caller | undefined {
  const resource = challengeResource(core.flavor);
  const match = /^Bearer\s+(\S+)\s*$/i.exec(ctx.req.headers.authorization ?? "");
  const token = match?.[1];
  const check =
    token === undefined
      ? { ok: false as const, message: "AKV10000: Request is missing a Bearer or PoP token." }
      : core.tokens.verify(token, resource, core.registration.tenantId);
  if (check.ok) return { clientId: check.claims.appid, tenantId: check.claims.tid };
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
  return undefined;
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

/**
 * Pages of at most 25 KeyItems (cpp recording KeyVaultKeyClient.GetKeysVersions.json: 50
 * versions in two pages). A missing or deleted key lists as 200 `{"value":[],"nextLink":null}`,
 * not 404 (Azure/azure-sdk-for-net KeyClientLiveTests/GetPropertiesOfKeyVersionsNonExisting.json).
 * nextLink names the port even when it is 443, and carries api-version and an opaque $skiptoken
 * (the same cpp recording); an "emptyPage" fault answers a page with no items but a nextLink, as
 * real vaults do (Azure/azure-sdk-for-go#10711, Azure/azure-libraries-for-net#999).
 */
function listVersions(core: EmulatorCore, ctx: RequestContext, name: string): unknown {
  const { searchParams } = ctx.url;
  const token = parseSkipToken(searchParams.get("$skiptoken"));
  const maxRaw = searchParams.get("maxresults");
  const max = maxRaw === null || maxRaw === "" ? (token?.max ?? MAX_PAGE) : Number(maxRaw);
  if (!Number.isInteger(max) || max < 1 || max > MAX_PAGE) {
    throw badParameter(`maxresults must be an integer between 1 and ${MAX_PAGE}.`);
  }
  const start = token?.start ?? 0;
  const versions = core.keys.versions(name);
  const empty = versions.length > 0 && core.faults.take("list", "emptyPage") !== undefined;
  const end = empty ? start : start + max;
  let nextLink: string | null = null;
  if (end < versions.length) {
    const host = /:\d+$/.test(ctx.host) ? ctx.host : `${ctx.host}:443`;
    const apiVersion = encodeURIComponent(searchParams.get("api-version") ?? "");
    nextLink = `https://${host}/keys/${name}/versions?api-version=${apiVersion}&$skiptoken=${skipToken(end, max)}`;
  }
  return { value: versions.slice(start, end).map((v) => keyItem(ctx.host, v)), nextLink };
}

/** Opaque to clients; shaped like the real one (base64 JSON with a NextMarker). */
function skipToken(start: number, max: number): string {
  const marker = JSON.stringify({ NextMarker: `${start}!${max}`, TargetLocation: 0 });
  return Buffer.from(marker).toString("base64url");
}

function parseSkipToken(token: string | null): { start: number; max: number } | undefined {
  if (token === null || token === "") return undefined;
  let parts: number[] = [];
  try {
    const parsed = JSON.parse(Buffer.from(token, "base64url").toString("utf8")) as unknown;
    const marker = (parsed as { NextMarker?: unknown } | null)?.NextMarker;
    if (typeof marker === "string") parts = marker.split("!").map(Number);
  } catch {
    // not one of ours
  }
  const [start, max] = parts;
  if (start === undefined || max === undefined || !Number.isSafeInteger(start) || start < 0) {
    throw badParameter("Invalid $skiptoken.");
  }
  return { start, max };
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
