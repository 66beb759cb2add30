import type { DeletedKey, KeyVersion } from "./key-store.js";

/** The JSON shapes Key Vault answers with (KeyBundle, KeyItem, DeletedKeyBundle). */

export function kidOf(host: string, name: string, version: string): string {
  return `https://${host}/keys/${name}/${version}`;
}

function attributesJson(key: KeyVersion): Record<string, unknown> {
  const a = key.attributes;
  const out: Record<string, unknown> = { enabled: a.enabled };
  if (a.nbf !== undefined) out["nbf"] = a.nbf;
  if (a.exp !== undefined) out["exp"] = a.exp;
  out["created"] = a.created;
  out["updated"] = a.updated;
  out["recoveryLevel"] = "Recoverable+Purgeable";
  out["recoverableDays"] = 90;
  out["exportable"] = false;
  return out;
}

function withTags(body: Record<string, unknown>, key: KeyVersion): Record<string, unknown> {
  if (Object.keys(key.tags).length > 0) body["tags"] = { ...key.tags };
  return body;
}

export function keyBundle(host: string, key: KeyVersion): Record<string, unknown> {
  const jwk: Record<string, unknown> = {
    kid: kidOf(host, key.name, key.version),
    kty: key.kty,
    key_ops: [...key.keyOps],
  };
  // Symmetric material is never released, so oct-HSM bundles carry no `k`.
  if (key.material.kind === "rsa") {
    jwk["n"] = key.material.n;
    jwk["e"] = key.material.e;
  }
  return withTags({ key: jwk, attributes: attributesJson(key) }, key);
}

export function keyItem(host: string, key: KeyVersion): Record<string, unknown> {
  return withTags(
    { kid: kidOf(host, key.name, key.version), attributes: attributesJson(key) },
    key,
  );
}

export function deletedKeyBundle(
  host: string,
  name: string,
  entry: DeletedKey,
): Record<string, unknown> {
  const latest = entry.versions.at(-1);
  const body = latest === undefined ? {} : keyBundle(host, latest);
  return {
    recoveryId: `https://${host}/deletedkeys/${name}`,
    deletedDate: entry.deletedDate,
    scheduledPurgeDate: entry.scheduledPurgeDate,
    ...body,
  };
}
