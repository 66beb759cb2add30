/**
 * Which keys Decrypt may ask Key Vault about: the configured one plus any the operator names for
 * a migration. A crafted ciphertext must never make the plugin contact a host it was not told about.
 */
import { KmsError } from "./errors.js";
import type { KeyReference } from "./key-wrapper.js";

export interface AllowedKey {
  /** Host (and `:port` when not 443) of the vault. */
  readonly vaultHost: string;
  readonly keyName: string;
}

// Hosts are case-insensitive DNS names and Key Vault key names are case-insensitive too.
function entryOf(vaultHost: string, keyName: string): string {
  const host = vaultHost.toLowerCase();
  return `${host.endsWith(":443") ? host.slice(0, -4) : host}/${keyName.toLowerCase()}`;
}

export class KeyAllowlist {
  readonly #entries: ReadonlySet<string>;
  readonly #keys: readonly AllowedKey[];
  readonly #configured: string;

  /** `configured` is the key this plugin encrypts with; `extra` the ones it may also decrypt. */
  constructor(configured: AllowedKey, extra: Iterable<AllowedKey> = []) {
    const keys = [configured, ...extra];
    this.#keys = keys.map((k) => Object.freeze({ vaultHost: k.vaultHost, keyName: k.keyName }));
    this.#entries = new Set(keys.map((k) => entryOf(k.vaultHost, k.keyName)));
    this.#configured = entryOf(configured.vaultHost, configured.keyName);
  }

  get keys(): readonly AllowedKey[] {
    return this.#keys;
  }

  allows(key: Pick<KeyReference, "vaultHost" | "keyName">): boolean {
    return this.#entries.has(entryOf(key.vaultHost, key.keyName));
  }

  /** Whether `key` is the configured key (not an extra one), compared as `allows` does. */
  isConfigured(key: Pick<KeyReference, "vaultHost" | "keyName">): boolean {
    return entryOf(key.vaultHost, key.keyName) === this.#configured;
  }

  /** Throws KmsError FAILED_PRECONDITION unless `key` is allowlisted. */
  check(key: Pick<KeyReference, "vaultHost" | "keyName">): void {
    if (this.allows(key)) return;
    throw new KmsError(
      "FAILED_PRECONDITION",
      `ciphertext names key ${JSON.stringify(key.keyName)} in vault ${JSON.stringify(key.vaultHost)}, ` +
        "which this plugin is not configured to use; add it to the allowed keys to decrypt it",
    );
  }
}
