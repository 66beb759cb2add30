/**
 * Key Vault `decrypt` for ciphertexts written by Azure/kubernetes-kms, which used `encrypt` and
 * `decrypt` (never wrapKey/unwrapKey). The Go plugin sent its stored base64url text as the REST
 * `value`; the domain hands us the decoded RSA bytes of canonical text, which the SDK encodes back
 * to that very string, and the SDK decodes the result's `value` as the Go plugin did.
 */
import { KmsError } from "../kms/errors.js";
import type { KeyReference, LegacyAlgorithm, UnwrapOptions } from "../kms/key-wrapper.js";
import { kmsErrorFromAzure } from "./errors.js";
import type { RemoteClients } from "./remote-clients.js";
import { throughFirstRequestGate } from "./first-request-gate.js";
import { deadlineSignal } from "./resilience.js";
import { SingleFlight } from "./single-flight.js";

/** Bound on one shared legacy decrypt, whichever callers wait on it. */
const legacyDecryptTimeoutMs = 30_000;

export interface LegacyDecryptOptions {
  /** Shared with unwrap: one remote-only client per version. */
  readonly clients: RemoteClients;
  readonly isAllowed: (ref: KeyReference) => boolean;
}

export type LegacyDecryptFn = (
  key: KeyReference,
  algorithm: LegacyAlgorithm,
  ciphertext: Uint8Array,
  options?: UnwrapOptions,
) => Promise<Uint8Array>;

export function createLegacyDecrypt(options: LegacyDecryptOptions): LegacyDecryptFn {
  // Concurrent Decrypts of one Go-plugin ciphertext send one Key Vault decrypt.
  const flights = new SingleFlight<Uint8Array>();

  return async (key, algorithm, ciphertext, decryptOptions) => {
    if (!options.isAllowed(key)) {
      throw new KmsError(
        "FAILED_PRECONDITION",
        `key ${key.keyName} in ${key.vaultHost} is not on this plugin's allowlist`,
      );
    }
    const what = `decrypt (${algorithm}) with ${key.keyName}/${key.keyVersion}`;
    const flightKey = [
      key.vaultHost,
      key.keyName.toLowerCase(),
      key.keyVersion.toLowerCase(),
      algorithm,
      Buffer.from(ciphertext).toString("base64"),
    ].join("|");
    try {
      return await flights.run(
        flightKey,
        decryptOptions?.signal,
        async (shared) => {
          const abortSignal = deadlineSignal(legacyDecryptTimeoutMs, what, shared);
          const client = options.clients.for(key);
          const result = await throughFirstRequestGate(
            client,
            () => client.decrypt({ algorithm, ciphertext }, { abortSignal }),
            abortSignal,
          );
          // Every waiter copies the plaintext in a microtask; then the shared one is zeroed.
          setImmediate(() => result.result.fill(0));
          return result.result;
        },
        (plaintext) => Uint8Array.from(plaintext),
      );
    } catch (err) {
      const error = kmsErrorFromAzure(err, what);
      // The Go plugin's permissions were encrypt/decrypt, not the wrapKey/unwrapKey ours name.
      if (error.code === "PERMISSION_DENIED") {
        throw new KmsError(
          "PERMISSION_DENIED",
          `${what}: Key Vault denied the request; grant the identity the decrypt permission ` +
            "(role Key Vault Crypto User) to read data written by Azure/kubernetes-kms",
          { cause: error },
        );
      }
      throw error;
    }
  };
}
