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

/**
 * The key_id of a version. `epoch` (KeyState.currentEpoch) is set when Key Vault's state shows the
 * version is not simply the newest one as created: it was updated since (disabled and enabled
 * again, say) or newer versions are unusable (a fall-back). The key_id is then a derivative,
 * `<Go plugin key_id>_<16 hex>`: kube-apiserver never sees a key_id come back (KMS v2 forbids it),
 * and every instance reading the same Key Vault state derives the same one.
 */
export function keyIdOf(ref: KeyReference, epoch?: string): string {
  const base = keyIdFromUrl(keyUrl(ref));
  if (epoch === undefined) return base;
  const suffix = createHash("sha256").update(`${base}\n${epoch}`, "utf8").digest("hex");
  return `${base}_${suffix.slice(0, DERIVATIVE_HEX)}`;
}

const DERIVATIVE_HEX = 16;
const DERIVATIVE = /^[0-9a-f]{16}$/;

/** Is `keyId` one `ref` has had or may have: its Go plugin key_id or a derivative of it? */
export function keyIdNames(ref: KeyReference, keyId: string): boolean {
  const base = keyIdFromUrl(keyUrl(ref));
  if (keyId.length === base.length) return keyId === base;
  return (
    keyId.length === base.length + 1 + DERIVATIVE_HEX &&
    keyId.startsWith(base) &&
    keyId[base.length] === "_" &&
    DERIVATIVE.test(keyId.slice(base.length + 1))
  );
}
