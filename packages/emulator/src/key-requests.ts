import { badParameter, isRecord } from "./http-io.js";
import type { CreateParams, UpdateParams } from "./key-store.js";

/** Parsing of the JSON bodies of create and update; unknown fields are ignored like the service. */

export function parseCreate(body: Record<string, unknown>): CreateParams {
  const { kty, key_size, public_exponent, key_ops, attributes, tags } = body;
  if (typeof kty !== "string") throw badParameter("Property 'kty' is required.");
  const params: CreateParams = { kty };
  if (key_size !== undefined && key_size !== null) params.size = integer(key_size, "key_size");
  if (public_exponent !== undefined && public_exponent !== null) {
    params.publicExponent = integer(public_exponent, "public_exponent");
  }
  if (key_ops !== undefined && key_ops !== null) params.keyOps = stringList(key_ops, "key_ops");
  if (tags !== undefined && tags !== null) params.tags = stringMap(tags, "tags");
  if (attributes !== undefined && attributes !== null) {
    const a = parseAttributes(attributes);
    if (a.enabled !== undefined) params.enabled = a.enabled;
    if (typeof a.nbf === "number") params.nbf = a.nbf;
    if (typeof a.exp === "number") params.exp = a.exp;
  }
  return params;
}

export function parseUpdate(body: Record<string, unknown>): UpdateParams {
  const { key_ops, attributes, tags } = body;
  const params: UpdateParams = {};
  if (key_ops !== undefined && key_ops !== null) params.keyOps = stringList(key_ops, "key_ops");
  if (tags !== undefined && tags !== null) params.tags = stringMap(tags, "tags");
  if (attributes !== undefined && attributes !== null)
    Object.assign(params, parseAttributes(attributes));
  return params;
}

function parseAttributes(value: unknown): Pick<UpdateParams, "enabled" | "nbf" | "exp"> {
  if (!isRecord(value)) throw badParameter("Property 'attributes' must be an object.");
  const out: Pick<UpdateParams, "enabled" | "nbf" | "exp"> = {};
  const { enabled, nbf, exp } = value;
  if (enabled !== undefined && enabled !== null) {
    if (typeof enabled !== "boolean") throw badParameter("Property 'enabled' must be a boolean.");
    out.enabled = enabled;
  }
  if (nbf !== undefined) out.nbf = nbf === null ? null : unixTime(nbf, "nbf");
  if (exp !== undefined) out.exp = exp === null ? null : unixTime(exp, "exp");
  return out;
}

function integer(value: unknown, name: string): number {
  if (typeof value !== "number" || !Number.isSafeInteger(value)) {
    throw badParameter(`Property '${name}' must be an integer.`);
  }
  return value;
}

function unixTime(value: unknown, name: string): number {
  if (typeof value !== "number" || !Number.isFinite(value) || value < 0) {
    throw badParameter(`Property '${name}' must be a unix time in seconds.`);
  }
  return Math.floor(value);
}

function stringList(value: unknown, name: string): string[] {
  if (!Array.isArray(value) || !value.every((v) => typeof v === "string")) {
    throw badParameter(`Property '${name}' must be an array of strings.`);
  }
  return value;
}

function stringMap(value: unknown, name: string): Record<string, string> {
  if (!isRecord(value) || !Object.values(value).every((v) => typeof v === "string")) {
    throw badParameter(`Property '${name}' must be an object of strings.`);
  }
  return value as Record<string, string>;
}
