/**
 * Key Vault `decrypt` for ciphertexts written by Azure/kubernetes-kms, which used `encrypt` and
 * `decrypt` (never wrapKey/unwrapKey). The Go plugin sent its stored base64url text as the REST
 * `value`; the domain hands us the decoded RSA bytes of canonical text, which the SDK encodes back
 * to that very string, and the SDK decodes the result's `value` as the Go plugin did.
 */
import type { TokenCredential } from "@azure/identity";
import {
  CryptographyClient,
  type CryptographyClientOptions,
  type KeyVaultKey,
} from "@azure/keyvault-keys";
import { KmsError } from "../kms/errors.js";
import type { KeyReference, LegacyAlgorithm, UnwrapOptions } from "../kms/key-wrapper.js";
import { kmsErrorFromAzure } from "./errors.js";
import { throughFirstRequestGate } from "./first-request-gate.js";
import { deadlineSignal } from "./resilience.js";
import { SingleFlight } from "./single-flight.js";

/** Bound on one shared legacy decrypt, whichever callers wait on it. */
const legacyDecryptTimeoutMs = 30_000;

export interface LegacyDecryptOptions {
  /** `https://host[:port]`, no trailing slash. */
  readonly vaultUrl: string;
  readonly credential: TokenCredential;
  readonly clientOptions: CryptographyClientOptions;
  readonly isAllowed: (ref: KeyReference) => boolean;
  /** Clients kept, one per version (default 64). */
  readonly maxClients?: number;
}

export type LegacyDecryptFn = (
  key: KeyReference,
  algorithm: LegacyAlgorithm,
  ciphertext: Uint8Array,
  options?: UnwrapOptions,
) => Promise<Uint8Array>;

/**
 * A client that only ever calls Key Vault. Given a bare kid, the SDK first GETs the key and then
 * refuses locally when it is expired or its key_ops lack `decrypt`; Key Vault itself decrypts with
 * an expired key and is the authority on key_ops. A key object without material or attributes
 * skips both: no extra GET, no local verdict.
 */
function remoteOnlyClient(
  kid: string,
  ref: KeyReference,
  vaultUrl: string,
  credential: TokenCredential,
  clientOptions: CryptographyClientOptions,
): CryptographyClient {
  const key: KeyVaultKey = {
    id: kid,
    name: ref.keyName,
    properties: { id: kid, name: ref.keyName, vaultUrl, version: ref.keyVersion },
  };
  return new CryptographyClient(key, credential, clientOptions);
}

export function createLegacyDecrypt(options: LegacyDecryptOptions): LegacyDecryptFn {
  const max = options.maxClients ?? 64;
  const clients = new Map<string, CryptographyClient>();
  // Concurrent Decrypts of one Go-plugin ciphertext send one Key Vault decrypt.
  const flights = new SingleFlight<Uint8Array>();

  function clientFor(ref: KeyReference): CryptographyClient {
    const kid = `${options.vaultUrl}/keys/${ref.keyName}/${ref.keyVersion}`;
    const id = kid.toLowerCase();
    let client = clients.get(id);
    if (client === undefined) {
      client = remoteOnlyClient(
        kid,
        ref,
        options.vaultUrl,
        options.credential,
        options.clientOptions,
      );
      if (clients.size >= max) {
        const oldest = clients.keys().next().value;
        if (oldest !== undefined) clients.delete(oldest);
      }
      clients.set(id, client);
    }
    return client;
  }

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
          const client = clientFor(key);
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
