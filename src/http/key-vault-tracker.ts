import { toKmsError, type KeyWrapper, type KmsErrorCode } from "../kms/index.js";

/** Key Vault as the plugin's own traffic last saw it; probes read this and never call Key Vault. */
export interface KeyVaultView {
  /** Whether the last counted call succeeded; null before any call. */
  readonly healthy: boolean | null;
  /** ISO 8601 times of the last successful and last failed call, or null. */
  readonly lastSuccessAt: string | null;
  readonly lastFailureAt: string | null;
  /** The gRPC-style code of the last failure (UNAVAILABLE, PERMISSION_DENIED…): never its text. */
  readonly lastError: KmsErrorCode | null;
  readonly consecutiveFailures: number;
}

/** Remembers the outcome of the last real Key Vault calls. */
export class KeyVaultTracker {
  #lastSuccess: number | undefined;
  #lastFailure: number | undefined;
  #lastError: KmsErrorCode | undefined;
  #healthy: boolean | undefined;
  #failures = 0;
  readonly #now: () => number;

  constructor(now: () => number = Date.now) {
    this.#now = now;
  }

  succeeded(): void {
    this.#lastSuccess = this.#now();
    this.#healthy = true;
    this.#failures = 0;
  }

  failed(error: unknown): void {
    const kmsError = toKmsError(error, "a Key Vault call");
    const { code } = kmsError;
    // Key Vault answered about the input (a forged envelope, a version that does not exist):
    // it is there, whoever sent that input.
    if (kmsError.refusedInput) {
      this.succeeded();
      return;
    }
    // The caller gave up, or sent a ciphertext that is not ours (possibly refused before any
    // request left): neither says anything about Key Vault.
    if (code === "CANCELLED" || code === "INVALID_ARGUMENT") return;
    this.#lastFailure = this.#now();
    this.#lastError = code;
    this.#healthy = false;
    this.#failures++;
  }

  view(): KeyVaultView {
    const iso = (t: number | undefined) => (t === undefined ? null : new Date(t).toISOString());
    return {
      healthy: this.#healthy ?? null,
      lastSuccessAt: iso(this.#lastSuccess),
      lastFailureAt: iso(this.#lastFailure),
      lastError: this.#lastError ?? null,
      consecutiveFailures: this.#failures,
    };
  }
}

/**
 * `wrapper` with every outcome reported to `tracker`. Sits outside src/kms and src/keyvault so the
 * domain stays unaware of probes. `wrap` successes are not counted: RSA keys wrap locally.
 */
export function trackKeyVaultCalls(wrapper: KeyWrapper, tracker: KeyVaultTracker): KeyWrapper {
  const observe = async <T>(call: Promise<T>, countSuccess = true): Promise<T> => {
    try {
      const result = await call;
      if (countSuccess) tracker.succeeded();
      return result;
    } catch (err) {
      tracker.failed(err);
      throw err;
    }
  };
  return {
    refresh: () => observe(wrapper.refresh()),
    wrap: (seed, key) => observe(wrapper.wrap(seed, key), false),
    unwrap: (wrapped, options) => observe(wrapper.unwrap(wrapped, options)),
    decryptLegacy: (key, algorithm, ciphertext, options) =>
      observe(wrapper.decryptLegacy(key, algorithm, ciphertext, options)),
  };
}
