/** Key versions read in full from Key Vault: what wrapping under them needs, kept by version. */
import { createPublicKey, type KeyObject } from "node:crypto";
import type { KeyVaultKey } from "@azure/keyvault-keys";
import { KmsError } from "../kms/errors.js";
import type { KeyReference, WrapAlgorithm } from "../kms/key-wrapper.js";
import { LRUCache } from "lru-cache";

export interface LoadedKey {
  readonly ref: KeyReference;
  readonly algorithm: WrapAlgorithm;
  /** RSA keys wrap locally with the public key: no Key Vault call per new seed. */
  readonly publicKey?: KeyObject;
  /** Key Vault's kty and, for RSA, the modulus size: they set the service's request limit. */
  readonly keyType: string;
  readonly rsaBits?: number;
}

function b64url(bytes: Uint8Array | undefined): string {
  return Buffer.from(bytes ?? new Uint8Array()).toString("base64url");
}

/** Reads `https://host/keys/name/version` as Key Vault writes it in a kid. */
export function refFromKid(kid: string | undefined, vaultHost: string): KeyReference {
  const m = kid === undefined ? null : /^https:\/\/[^/]+\/keys\/([^/]+)\/([^/]+)$/.exec(kid);
  if (m === null) throw new KmsError("INTERNAL", "Key Vault returned a key without a versioned id");
  return { vaultHost, keyName: m[1] ?? "", keyVersion: m[2] ?? "" };
}

function algorithmFor(key: KeyVaultKey, label: string): WrapAlgorithm {
  const kty = key.keyType ?? "unknown";
  if (kty === "RSA" || kty === "RSA-HSM") return "RSA-OAEP-256";
  if (kty === "oct-HSM") return "A256KW";
  throw new KmsError(
    "FAILED_PRECONDITION",
    `key ${label} has type ${kty}; use an RSA, RSA-HSM or oct-HSM key`,
  );
}

/**
 * Checks that a fetched version can wrap and unwrap seeds. A version that cannot is a
 * configuration problem: refuse it loudly rather than wrap seeds nobody could unwrap.
 */
export function loadKey(key: KeyVaultKey, vaultHost: string): LoadedKey {
  const ref = refFromKid(key.id, vaultHost);
  const label = `${ref.keyName}/${ref.keyVersion}`;
  const ops = key.keyOperations ?? [];
  if (!ops.includes("wrapKey") || !ops.includes("unwrapKey")) {
    throw new KmsError(
      "FAILED_PRECONDITION",
      `key ${label} does not permit wrapKey and unwrapKey (key_ops: ${ops.join(",") || "none"}); fix the key or disable this version`,
    );
  }
  const algorithm = algorithmFor(key, label);
  const keyType = key.keyType ?? "unknown";
  if (algorithm !== "RSA-OAEP-256") return { ref, algorithm, keyType };
  const publicKey = createPublicKey({
    key: { kty: "RSA", n: b64url(key.key?.n), e: b64url(key.key?.e) },
    format: "jwk",
  });
  const rsaBits = publicKey.asymmetricKeyDetails?.modulusLength;
  return { ref, algorithm, publicKey, keyType, ...(rsaBits === undefined ? {} : { rsaBits }) };
}

/** Loaded versions, bounded: the least recently selected goes first. */
export class LoadedKeys {
  private readonly byVersion: LRUCache<string, LoadedKey>;

  constructor(max: number) {
    this.byVersion = new LRUCache({ max });
  }

  /** A loaded version; reading it does not count as selecting it. */
  get(version: string): LoadedKey | undefined {
    return this.byVersion.peek(version.toLowerCase());
  }

  /** Marks a version as in use so that eviction never takes the current one first. */
  use(version: string): LoadedKey | undefined {
    return this.byVersion.get(version.toLowerCase());
  }

  add(key: LoadedKey): void {
    this.byVersion.set(key.ref.keyVersion.toLowerCase(), key);
  }
}
