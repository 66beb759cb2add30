/**
 * One CryptographyClient per key version that only ever calls Key Vault: wrapKey, unwrapKey and
 * the legacy path's decrypt all go through it.
 *
 * Given a bare kid, the SDK first GETs the key and then refuses locally when the version is
 * expired, not yet valid, or its key_ops lack the operation. Key Vault itself still unwraps and
 * decrypts with an expired version (exp: "MUST NOT be used for encryption of new data, wrapping of
 * new keys, and signing", learn.microsoft.com/azure/key-vault/keys/about-keys-details, "Key
 * attributes") and is the authority on key_ops. A key object without material or attributes skips
 * both: no extra GET and no local verdict, so Key Vault decides every operation.
 */
import type { TokenCredential } from "@azure/identity";
import {
  CryptographyClient,
  type CryptographyClientOptions,
  type KeyVaultKey,
} from "@azure/keyvault-keys";
import { LRUCache } from "lru-cache";
import type { KeyReference } from "../kms/key-wrapper.js";

export class RemoteClients {
  /** Bounded: the least recently used version's client goes first. */
  private readonly byKid: LRUCache<string, CryptographyClient>;

  constructor(
    /** `https://host[:port]`, no trailing slash. */
    private readonly vaultUrl: string,
    private readonly credential: TokenCredential,
    private readonly clientOptions: CryptographyClientOptions,
    max = 64,
  ) {
    this.byKid = new LRUCache({ max });
  }

  /** The client of exactly this version (never a version-less kid: it mislabels results). */
  for(ref: KeyReference): CryptographyClient {
    const kid = `${this.vaultUrl}/keys/${ref.keyName}/${ref.keyVersion}`;
    const id = kid.toLowerCase();
    let client = this.byKid.get(id);
    if (client === undefined) {
      const key: KeyVaultKey = {
        id: kid,
        name: ref.keyName,
        properties: {
          id: kid,
          name: ref.keyName,
          vaultUrl: this.vaultUrl,
          version: ref.keyVersion,
        },
      };
      client = new CryptographyClient(key, this.credential, this.clientOptions);
      this.byKid.set(id, client);
    }
    return client;
  }
}
