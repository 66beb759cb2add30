import { createHash } from "node:crypto";
import type { KeyReference } from "./key-wrapper.js";

/** The versioned key URL Key Vault itself uses as the key's `kid`. */
export function keyUrl(ref: KeyReference): string {
  return `https://${ref.vaultHost}/keys/${ref.keyName}/${ref.keyVersion}`;
}

/**
 * key_id = lowercase hex SHA-256 of the versioned key URL: byte-for-byte the Go plugin's key_id,
 * so swapping plugins changes no key_id, and a new key version always gives a new one.
 */
export function keyIdFromUrl(url: string): string {
  return createHash("sha256").update(url, "utf8").digest("hex");
}

export function keyIdOf(ref: KeyReference): string {
  return keyIdFromUrl(keyUrl(ref));
}
