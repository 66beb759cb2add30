/**
 * Ciphertexts written by the Go plugin Azure/kubernetes-kms are the ASCII base64url text of a Key
 * Vault `encrypt` result (architecture.md, "Legacy ciphertexts"); ours start with a binary version
 * byte that is never one of those characters.
 */
import { KmsError } from "./errors.js";

const BASE64URL = new Uint8Array(256);
for (const c of "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_") {
  BASE64URL[c.charCodeAt(0)] = 1;
}

export function looksLikeLegacyCiphertext(ciphertext: Uint8Array): boolean {
  const first = ciphertext[0];
  return first !== undefined && BASE64URL[first] === 1;
}

/** The seam for reading legacy ciphertexts (Key Vault `decrypt`); a later issue fills it in. */
export function legacyCiphertextNotSupported(): KmsError {
  return new KmsError(
    "INVALID_ARGUMENT",
    "ciphertext looks like a ciphertext written by Azure/kubernetes-kms; reading those is not supported yet",
  );
}
