/** The errors a revoked key version produces; they name the version and what brings it back. */
import { KmsError } from "./errors.js";
import type { RevocationReason } from "./key-wrapper.js";

const REMEDY: Readonly<Record<RevocationReason, string>> = {
  disabled: "re-enable it",
  deleted: "recover the deleted key",
};

/** Decrypt of data under a revoked version. */
export function revokedVersionError(
  keyName: string,
  keyVersion: string,
  reason: RevocationReason,
): KmsError {
  return new KmsError(
    "FAILED_PRECONDITION",
    `key version ${keyVersion} of ${keyName} is ${reason} in Key Vault; ` +
      `${REMEDY[reason]} to read data written under it`,
  );
}

/**
 * Status and Encrypt while Key Vault knows no version of the key at all (KeyNotFound) and this
 * plugin never saw one: most often a misspelt name, since a key deleted under the plugin is
 * reported as deleted, by version.
 */
export function keyNotFoundError(keyName: string): KmsError {
  return new KmsError(
    "FAILED_PRECONDITION",
    `key ${keyName} not found in Key Vault: check --key-name and the vault (--keyvault-name or ` +
      "--keyvault-url), or recover the key if it was deleted (new writes fail until then)",
  );
}

/** Status and Encrypt while Key Vault says no version of the key may be used. */
export function noUsableVersionError(
  keyName: string,
  last: { readonly keyVersion: string; readonly reason: RevocationReason } | undefined,
): KmsError {
  const why =
    last === undefined
      ? "every version is disabled, expired, not yet valid or deleted; enable one"
      : `${last.keyVersion} is ${last.reason}; ${REMEDY[last.reason]}`;
  return new KmsError(
    "FAILED_PRECONDITION",
    `no usable version of key ${keyName} in Key Vault: ${why} or create a new version ` +
      "(new writes fail until then)",
  );
}

/** Status and Encrypt when the current version was revoked and a seed under its successor failed. */
export function noUsableSeedError(
  keyName: string,
  revoked: { readonly keyVersion: string; readonly reason: RevocationReason } | undefined,
  successor: string,
  failure: KmsError,
): KmsError {
  const before = revoked === undefined ? "" : `${revoked.keyVersion} is ${revoked.reason} and `;
  return new KmsError(
    failure.code,
    `no usable seed for key ${keyName}: ${before}wrapping a seed under ${successor} failed ` +
      `(${failure.code}: ${failure.message}); retrying at the next poll`,
    { cause: failure },
  );
}
