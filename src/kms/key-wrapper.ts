/** What the domain needs from a key-encryption service (Key Vault, Managed HSM, a test fake). */

/** Wrap algorithms the envelope can name. */
export type WrapAlgorithm = "RSA-OAEP-256" | "A256KW";

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
}

export interface KeyWrapper {
  /** The key version that new seeds are wrapped under. */
  currentKey(): KeyReference;
  /** Wraps a seed under currentKey(). For RSA keys this runs locally with the public key. */
  wrap(seed: Uint8Array): Promise<WrappedSeed>;
  /** Unwraps a seed with the exact version named in `wrapped.key`. Throws KmsError. */
  unwrap(wrapped: WrappedSeed, options?: UnwrapOptions): Promise<Uint8Array>;
}
