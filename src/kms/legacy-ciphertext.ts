/**
 * Ciphertexts written by the Go plugin Azure/kubernetes-kms are the ASCII base64url text of a Key
 * Vault `encrypt` result (docs/architecture.md, "Legacy ciphertexts"); ours start with a binary
 * version byte that is never one of those characters.
 */
import { KmsError } from "./errors.js";

const BASE64URL = new Uint8Array(256);
for (const c of "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_") {
  BASE64URL[c.charCodeAt(0)] = 1;
}
const PAD = 0x3d; // "="

/** RSA output sizes of the key sizes Key Vault offers: 2048, 3072 and 4096 bits. */
const RSA_BYTES: ReadonlySet<number> = new Set([256, 384, 512]);

export function looksLikeLegacyCiphertext(ciphertext: Uint8Array): boolean {
  const first = ciphertext[0];
  return first !== undefined && BASE64URL[first] === 1;
}

function invalid(problem: string): KmsError {
  return new KmsError(
    "INVALID_ARGUMENT",
    `ciphertext looks like one written by Azure/kubernetes-kms (base64url text), but ${problem}`,
  );
}

/**
 * The raw RSA bytes of a legacy ciphertext. Throws KmsError INVALID_ARGUMENT, before any Key Vault
 * call, unless it is canonical base64url of an RSA-2048/3072/4096 result. Canonical text is what
 * makes the SDK's re-encoding of these bytes the very `value` string the Go plugin sent.
 */
export function decodeLegacyCiphertext(ciphertext: Uint8Array): Buffer {
  let end = ciphertext.length;
  // Key Vault writes no padding; accept it anyway in case some writer kept it.
  while (end > 0 && ciphertext[end - 1] === PAD && ciphertext.length - end < 2) end--;
  if (end < ciphertext.length && ciphertext.length % 4 !== 0) {
    throw invalid("its base64 padding is wrong");
  }
  for (let i = 0; i < end; i++) {
    if (BASE64URL[ciphertext[i] ?? 0] !== 1) {
      throw invalid(`byte ${i} is not a base64url character`);
    }
  }
  const text = Buffer.from(ciphertext.buffer, ciphertext.byteOffset, end).toString("latin1");
  const raw = Buffer.from(text, "base64url");
  if (!RSA_BYTES.has(raw.length)) {
    throw invalid(
      `it decodes to ${raw.length} bytes, not the 256, 384 or 512 of an RSA-2048/3072/4096 result`,
    );
  }
  if (raw.toString("base64url") !== text) throw invalid("it is not canonical base64url");
  return raw;
}
