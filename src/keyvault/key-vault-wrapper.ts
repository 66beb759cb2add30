import {
  createPublicKey,
  constants as cryptoConstants,
  publicEncrypt,
  type KeyObject,
} from "node:crypto";
import type { TokenCredential } from "@azure/identity";
import {
  CryptographyClient,
  KeyClient,
  type KeyProperties,
  type KeyVaultKey,
} from "@azure/keyvault-keys";
import { KmsError } from "../kms/errors.js";
import type {
  KeyReference,
  KeyWrapper,
  UnwrapOptions,
  WrapAlgorithm,
  WrappedSeed,
} from "../kms/key-wrapper.js";
import { keyVaultClientOptions } from "./client-options.js";
import { kmsErrorFromAzure } from "./errors.js";

export interface KeyVaultWrapperOptions {
  readonly vaultUrl: string;
  /** Lowercase `host[:port]`, as written into envelopes and key_ids. */
  readonly vaultHost: string;
  readonly keyName: string;
  /** Empty: the newest enabled version, resolved by init(). */
  readonly keyVersion: string;
  readonly credential: TokenCredential;
  readonly caPem?: string;
  readonly userAgent: string;
  /** Defence in depth: the domain checks first, but no unwrap leaves for a key not listed here. */
  readonly isAllowed: (ref: KeyReference) => boolean;
  /** CryptographyClients kept for older versions (each one costs a GET on first use). */
  readonly maxVersionClients?: number;
}

interface CurrentKey {
  readonly ref: KeyReference;
  readonly algorithm: WrapAlgorithm;
  /** RSA keys wrap locally with the public key: no Key Vault call per new seed. */
  readonly publicKey?: KeyObject;
  readonly client: CryptographyClient;
}

export interface KeyVaultWrapper extends KeyWrapper {
  /** Resolves the key version and reads its public key (one GET unless the latest is unusable). */
  init(): Promise<void>;
  readonly ready: boolean;
}

function isUsable(p: KeyProperties, now: Date): boolean {
  if (p.enabled !== true) return false;
  if (p.notBefore !== undefined && p.notBefore > now) return false;
  if (p.expiresOn !== undefined && p.expiresOn <= now) return false;
  return true;
}

function algorithmFor(key: KeyVaultKey): WrapAlgorithm {
  const kty = key.keyType ?? "unknown";
  if (kty === "RSA" || kty === "RSA-HSM") return "RSA-OAEP-256";
  if (kty === "oct-HSM") return "A256KW";
  throw new KmsError(
    "FAILED_PRECONDITION",
    `key ${key.name} has type ${kty}; use an RSA, RSA-HSM or oct-HSM key`,
  );
}

function b64url(bytes: Uint8Array | undefined): string {
  return Buffer.from(bytes ?? new Uint8Array()).toString("base64url");
}

/** Reads `https://host/keys/name/version` as Key Vault writes it in a kid. */
function refFromKid(kid: string | undefined, vaultHost: string): KeyReference {
  const m = kid === undefined ? null : /^https:\/\/[^/]+\/keys\/([^/]+)\/([^/]+)$/.exec(kid);
  if (m === null) throw new KmsError("INTERNAL", "Key Vault returned a key without a versioned id");
  return { vaultHost, keyName: m[1] ?? "", keyVersion: m[2] ?? "" };
}

export function createKeyVaultWrapper(options: KeyVaultWrapperOptions): KeyVaultWrapper {
  const clientOptions = keyVaultClientOptions(options);
  const keys = new KeyClient(options.vaultUrl, options.credential, clientOptions);
  const maxClients = options.maxVersionClients ?? 64;
  // Version → client; Map order is insertion order, so the first entry is the oldest.
  const versionClients = new Map<string, CryptographyClient>();
  let current: CurrentKey | undefined;

  /**
   * The pinned version, else the key's current version (one GET), else — when that one is
   * disabled or outside nbf/exp — the newest usable version from the list. Key Vault's `created`
   * has one-second resolution, so the GET, not the list, decides between versions made together.
   */
  async function fetchKey(): Promise<KeyVaultKey> {
    if (options.keyVersion !== "") {
      return keys.getKey(options.keyName, { version: options.keyVersion });
    }
    const latest = await keys.getKey(options.keyName);
    const now = new Date();
    if (isUsable(latest.properties, now)) return latest;
    let best: KeyProperties | undefined;
    for await (const p of keys.listPropertiesOfKeyVersions(options.keyName)) {
      if (!isUsable(p, now)) continue;
      if (best === undefined || (p.createdOn ?? 0) > (best.createdOn ?? 0)) best = p;
    }
    if (best?.version === undefined) {
      throw new KmsError(
        "FAILED_PRECONDITION",
        `key ${options.keyName} has no enabled version that is valid now`,
      );
    }
    return keys.getKey(options.keyName, { version: best.version });
  }

  function clientFor(ref: KeyReference): CryptographyClient {
    if (current !== undefined && ref.keyVersion === current.ref.keyVersion) return current.client;
    let client = versionClients.get(ref.keyVersion);
    if (client === undefined) {
      // Always a versioned kid: a version-less client caches the first GET and mislabels results.
      const kid = `${options.vaultUrl}/keys/${ref.keyName}/${ref.keyVersion}`;
      client = new CryptographyClient(kid, options.credential, clientOptions);
      if (versionClients.size >= maxClients) {
        const oldest = versionClients.keys().next().value;
        if (oldest !== undefined) versionClients.delete(oldest);
      }
      versionClients.set(ref.keyVersion, client);
    }
    return client;
  }

  return {
    get ready() {
      return current !== undefined;
    },

    async init() {
      const what = `reading key ${options.keyName}`;
      let key: KeyVaultKey;
      try {
        key = await fetchKey();
      } catch (err) {
        throw kmsErrorFromAzure(err, what);
      }
      if (!isUsable(key.properties, new Date())) {
        throw new KmsError(
          "FAILED_PRECONDITION",
          `key ${options.keyName}/${key.properties.version ?? "?"} is disabled, expired or not yet valid`,
        );
      }
      const ops = key.keyOperations ?? [];
      if (!ops.includes("wrapKey") || !ops.includes("unwrapKey")) {
        throw new KmsError(
          "FAILED_PRECONDITION",
          `key ${options.keyName} does not permit wrapKey and unwrapKey (key_ops: ${ops.join(",")})`,
        );
      }
      const algorithm = algorithmFor(key);
      const ref = refFromKid(key.id, options.vaultHost);
      const publicKey =
        algorithm === "RSA-OAEP-256"
          ? createPublicKey({
              key: { kty: "RSA", n: b64url(key.key?.n), e: b64url(key.key?.e) },
              format: "jwk",
            })
          : undefined;
      // Built from the fetched key, so it makes no GET of its own.
      const client = new CryptographyClient(key, options.credential, clientOptions);
      current = { ref, algorithm, client, ...(publicKey === undefined ? {} : { publicKey }) };
    },

    currentKey() {
      if (current === undefined)
        throw new KmsError("UNAVAILABLE", "the Key Vault key is not loaded yet");
      return current.ref;
    },

    async wrap(seed) {
      const key = current;
      if (key === undefined)
        throw new KmsError("UNAVAILABLE", "the Key Vault key is not loaded yet");
      if (key.publicKey !== undefined) {
        const wrapped = publicEncrypt(
          {
            key: key.publicKey,
            padding: cryptoConstants.RSA_PKCS1_OAEP_PADDING,
            oaepHash: "sha256",
          },
          seed,
        );
        return { key: key.ref, algorithm: key.algorithm, wrapped };
      }
      try {
        const result = await key.client.wrapKey(key.algorithm, seed);
        return { key: key.ref, algorithm: key.algorithm, wrapped: result.result };
      } catch (err) {
        throw kmsErrorFromAzure(err, `wrapKey with ${key.ref.keyName}/${key.ref.keyVersion}`);
      }
    },

    async unwrap(wrapped: WrappedSeed, unwrapOptions?: UnwrapOptions) {
      const { key } = wrapped;
      if (!options.isAllowed(key)) {
        throw new KmsError(
          "FAILED_PRECONDITION",
          `key ${key.keyName} in ${key.vaultHost} is not on this plugin's allowlist`,
        );
      }
      const what = `unwrapKey with ${key.keyName}/${key.keyVersion}`;
      try {
        const signal = unwrapOptions?.signal;
        const result = await clientFor(key).unwrapKey(
          wrapped.algorithm,
          wrapped.wrapped,
          signal === undefined ? {} : { abortSignal: signal },
        );
        return result.result;
      } catch (err) {
        throw kmsErrorFromLocalCheck(err) ?? kmsErrorFromAzure(err, what);
      }
    },
  };
}

/**
 * CryptographyClient refuses some operations locally (key_ops, nbf/exp) with a plain Error and no
 * status code; those are key state, not outages.
 */
function kmsErrorFromLocalCheck(err: unknown): KmsError | undefined {
  if (!(err instanceof Error) || err.name !== "Error" || "statusCode" in err) return undefined;
  if (/not supported on key|expired|not yet valid|not valid before/i.test(err.message)) {
    return new KmsError(
      "FAILED_PRECONDITION",
      "the key version is not usable now (key_ops or nbf/exp)",
      {
        cause: err,
      },
    );
  }
  return undefined;
}
