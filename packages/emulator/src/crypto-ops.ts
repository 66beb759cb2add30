import { kidOf } from "./key-bundle.js";
import {
  aesKeyUnwrap,
  aesKeyWrap,
  aesKwBits,
  decodeBase64Url,
  encodeBase64Url,
  isRsaAlgorithm,
  rsaDecrypt,
  rsaEncrypt,
} from "./key-crypto.js";
import { nowSeconds, type KeyVersion } from "./key-store.js";
import { badParameter, KeyVaultError } from "./http-io.js";

export type CryptoOperation = "wrapkey" | "unwrapkey" | "encrypt" | "decrypt";

export const CRYPTO_OPERATIONS: readonly CryptoOperation[] = [
  "wrapkey",
  "unwrapkey",
  "encrypt",
  "decrypt",
];

/** The key_ops name of each operation. */
const KEY_OP: Record<CryptoOperation, string> = {
  wrapkey: "wrapKey",
  unwrapkey: "unwrapKey",
  encrypt: "encrypt",
  decrypt: "decrypt",
};

/**
 * Runs one crypto operation; answers Key Vault's KeyOperationResult: `{kid, value}` from a vault
 * (Azure/azure-sdk-for-net CryptographyClientLiveTests/EncryptDecryptRoundTrip(RSA-OAEP-256).json),
 * `{alg, kid, value}` from Managed HSM's AES key wrap (ManagedHsmCryptographyClientLiveTests/
 * AesKwWrapUnwrapRoundTrip(A256KW).json).
 */
export function runCryptoOperation(
  host: string,
  key: KeyVersion,
  operation: CryptoOperation,
  body: Record<string, unknown>,
): { alg?: string; kid: string; value: string } {
  const { alg } = body;
  if (typeof alg !== "string" || alg === "") throw badParameter("Property 'alg' is required.");
  const input = decodeBase64Url(body["value"], "value");
  checkUsable(key, operation);
  const output = transform(key, operation, alg, input);
  const result = { kid: kidOf(host, key.name, key.version), value: encodeBase64Url(output) };
  return key.material.kind === "oct" ? { alg, ...result } : result;
}

/**
 * Key state refusals. No capture of a key's 403 was found; the shape follows the secrets API's
 * recorded "(Forbidden) Operation get is not allowed on a expired secret." with inner code
 * SecretExpired (Azure/AzureKeyVault#19), and the refusal the SDKs' troubleshooting guides quote: "Operation decrypt is not permitted on this key.", inner KeyOperationForbidden
 * (Azure/azure-sdk-for-net sdk/keyvault/TROUBLESHOOTING.md, "Operation Not Permitted").
 */
function checkUsable(key: KeyVersion, operation: CryptoOperation): void {
  const op = KEY_OP[operation];
  const { enabled, nbf, exp } = key.attributes;
  if (!enabled) {
    throw forbidden(`Operation ${op} is not allowed on a disabled key.`, "KeyDisabled");
  }
  // Outside nbf..exp only new encryption and wrapping are refused; decrypt and unwrap go on
  // (learn.microsoft.com/azure/key-vault/keys/about-keys-details, "Key attributes").
  if (operation === "encrypt" || operation === "wrapkey") {
    const now = nowSeconds();
    if (nbf !== undefined && now < nbf) {
      throw forbidden(
        `Operation ${op} is not allowed on a key that is not yet valid.`,
        "KeyNotYetValid",
      );
    }
    if (exp !== undefined && now > exp) {
      throw forbidden(`Operation ${op} is not allowed on an expired key.`, "KeyExpired");
    }
  }
  if (!key.keyOps.includes(op)) {
    throw forbidden(`Operation ${op} is not permitted on this key.`, "KeyOperationForbidden");
  }
}

function forbidden(message: string, innerCode: string): KeyVaultError {
  return new KeyVaultError(403, "Forbidden", message, innerCode);
}

function transform(
  key: KeyVersion,
  operation: CryptoOperation,
  alg: string,
  input: Buffer,
): Buffer {
  const material = key.material;
  const forward = operation === "wrapkey" || operation === "encrypt";
  if (material.kind === "rsa") {
    if (!isRsaAlgorithm(alg)) throw unsupported(alg, key);
    return forward
      ? rsaEncrypt(material.publicKey, alg, input)
      : rsaDecrypt(material.privateKey, alg, input);
  }
  const bits = aesKwBits(alg);
  // AES-GCM/CBC encrypt and decrypt are not emulated; only key wrapping is.
  if (
    bits === undefined ||
    bits !== key.size ||
    operation === "encrypt" ||
    operation === "decrypt"
  ) {
    throw unsupported(alg, key);
  }
  return forward ? aesKeyWrap(material.secret, input) : aesKeyUnwrap(material.secret, input);
}

function unsupported(alg: string, key: KeyVersion): KeyVaultError {
  return badParameter(`Algorithm '${alg}' is not supported for a ${key.kty} ${key.size}-bit key.`);
}
