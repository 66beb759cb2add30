/**
 * One version of the configured key as Key Vault describes it, with the `Date` header of the
 * answer: what `keyvault-kms doctor` reports (key type, key_ops, expiry, clock skew).
 */
import type { TokenCredential } from "@azure/identity";
import { KeyClient } from "@azure/keyvault-keys";
import { apiVersionPolicy } from "./api-version.js";
import { keyVaultClientOptions } from "./client-options.js";
import { kmsErrorFromAzure } from "./errors.js";
import type { ProxyModeSettings } from "./proxy-mode.js";

export interface KeyDetailsInput {
  readonly vaultUrl: string;
  readonly vaultHost: string;
  readonly keyName: string;
  readonly credential: TokenCredential;
  readonly userAgent: string;
  readonly caPem?: string;
  readonly proxyMode?: ProxyModeSettings;
  readonly apiVersion?: string;
}

export interface KeyDetails {
  readonly keyType: string | undefined;
  readonly keyOps: readonly string[];
  readonly enabled: boolean | undefined;
  readonly expiresOn: Date | undefined;
  readonly notBefore: Date | undefined;
  /** Key Vault's `Date` response header, if it sent one. */
  readonly serverDate: string | undefined;
  /** Local clock (epoch ms) when that response arrived. */
  readonly receivedAtMs: number;
}

/** GET of one key version. Throws KmsError (the plugin's Key Vault error mapping). */
export async function readKeyDetails(
  input: KeyDetailsInput,
  version: string,
  signal?: AbortSignal,
): Promise<KeyDetails> {
  const client = new KeyClient(
    input.vaultUrl,
    input.credential,
    keyVaultClientOptions({
      vaultHost: input.vaultHost,
      userAgent: input.userAgent,
      ...(input.caPem === undefined ? {} : { caPem: input.caPem }),
      ...(input.proxyMode === undefined ? {} : { proxyMode: input.proxyMode }),
      apiVersion: apiVersionPolicy(input.apiVersion),
    }),
  );
  let serverDate: string | undefined;
  let receivedAtMs = Date.now();
  try {
    const key = await client.getKey(input.keyName, {
      version,
      ...(signal === undefined ? {} : { abortSignal: signal }),
      onResponse: (raw) => {
        receivedAtMs = Date.now();
        serverDate = raw.headers.get("date");
      },
    });
    return {
      keyType: key.keyType,
      keyOps: key.keyOperations ?? [],
      enabled: key.properties.enabled,
      expiresOn: key.properties.expiresOn,
      notBefore: key.properties.notBefore,
      serverDate,
      receivedAtMs,
    };
  } catch (err) {
    throw kmsErrorFromAzure(err, `reading key ${input.keyName}/${version}`);
  }
}
