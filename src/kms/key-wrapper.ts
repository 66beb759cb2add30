/** What the domain needs from a key-encryption service (Key Vault, Managed HSM, a test fake). */

/** Wrap algorithms the envelope can name. */
export type WrapAlgorithm = "RSA-OAEP-256" | "A256KW";

/** Key Vault `decrypt` algorithms of Azure/kubernetes-kms ciphertexts: its v2 and its v1 API. */
export type LegacyAlgorithm = "RSA-OAEP-256" | "RSA1_5";

/** A versioned Key Vault key: enough to rebuild `https://<vaultHost>/keys/<keyName>/<keyVersion>`. */
export interface KeyReference {
  /** Host (and `:port` when not 443) of the vault, lowercase. */
  readonly vaultHost: string;
  readonly keyName: string;
  readonly keyVersion: string;
}

export interface WrappedSeed {
  readonly key: KeyReference;
  readonly algorithm: WrapAlgorithm;
  readonly wrapped: Uint8Array;
}

export interface UnwrapOptions {
  /** Aborts the Key Vault call (the shared unwrap's own deadline, not a single caller's). */
  readonly signal?: AbortSignal;
  /**
   * Called when the call must wait `waitMs` before it can be sent, and why: Key Vault's 429
   * ("throttled"), the client-side rate limit alone ("rate-limit"), or an open circuit's next
   * probe ("circuit").
   */
  readonly onQueued?: (waitMs: number, cause: "throttled" | "rate-limit" | "circuit") => void;
}

/**
 * Why Key Vault says a key version must no longer be used at all, not even to read. An expired
 * or not-yet-valid version is only never made current: Key Vault still unwraps with an expired
 * key, and rotation policies give every version an exp, so expiry must not make data unreadable.
 */
export type RevocationReason = "disabled" | "deleted";

/**
 * Key Vault's authoritative view of the configured key, as of one successful refresh.
 * Transient failures (network, 5xx, 429) and permission errors never produce a KeyState: refresh
 * throws instead, and the domain keeps the previous one.
 */
export interface KeyState {
  /**
   * The version new seeds are wrapped under: the newest usable version, or the pinned one while
   * it is usable. Undefined when no version may be used; the wrapper can wrap under it at once
   * (for RSA keys its public key is already loaded).
   */
  readonly current: KeyReference | undefined;
  /**
   * What Key Vault shows beyond `current` itself that a key_id must reflect (key-id.ts): set when
   * the version was updated since it was created, or newer versions are unusable; undefined in
   * the ordinary case, whose key_id is the Go plugin's. Derived from Key Vault's state alone, so
   * every instance reading the same state gets the same value.
   */
  readonly currentEpoch?: string | undefined;
  /**
   * Every version of the configured key Key Vault listed, newest first, revoked ones included
   * (ask `revocation`). Legacy ciphertexts name no version: Decrypt finds theirs among these.
   */
  readonly versions: readonly KeyReference[];
  /** Why `keyVersion` of the configured key is revoked, or undefined if it may still be read. */
  revocation(keyVersion: string): RevocationReason | undefined;
  /** What this view cannot see (e.g. no permission to list versions), for the operator. */
  readonly limitation?: string;
}

export interface KeyWrapper {
  /**
   * Reads the key's versions from Key Vault (one request in steady state) and loads what wrapping
   * under the resulting `current` needs. Throws KmsError; the caller keeps its previous state.
   */
  refresh(): Promise<KeyState>;
  /** Wraps a seed under `key` (a `current` from refresh). RSA keys wrap locally with the public key. */
  wrap(seed: Uint8Array, key: KeyReference): Promise<WrappedSeed>;
  /** Unwraps a seed with the exact version named in `wrapped.key`. Throws KmsError. */
  unwrap(wrapped: WrappedSeed, options?: UnwrapOptions): Promise<Uint8Array>;
  /**
   * Key Vault `decrypt` of raw RSA `ciphertext` with exactly the version `key` names (reading
   * Azure/kubernetes-kms ciphertexts). Returns a buffer the caller owns. Throws KmsError: a
   * ciphertext that is not for this version is INVALID_ARGUMENT (Key Vault's 400 BadParameter).
   */
  decryptLegacy(
    key: KeyReference,
    algorithm: LegacyAlgorithm,
    ciphertext: Uint8Array,
    options?: UnwrapOptions,
  ): Promise<Uint8Array>;
}
