import { constants as cryptoConstants, publicEncrypt } from "node:crypto";
import type { TokenCredential } from "@azure/identity";
import { CryptographyClient, KeyClient, type KeyVaultKey } from "@azure/keyvault-keys";
import { KmsError } from "../kms/errors.js";
import type {
  KeyReference,
  KeyState,
  KeyWrapper,
  RevocationReason,
  UnwrapOptions,
  WrappedSeed,
} from "../kms/key-wrapper.js";
import { keyVaultClientOptions } from "./client-options.js";
import { isKeyNotFound, kmsErrorFromAzure } from "./errors.js";
import { throughFirstRequestGate } from "./first-request-gate.js";
import { createLegacyDecrypt } from "./legacy-decrypt.js";
import type { KeyVaultCallObserver } from "./metrics-policy.js";
import type { ProxyModeSettings } from "./proxy-mode.js";
import {
  deterministicPick,
  newestUsable,
  revocationOf,
  versionInfo,
  type VersionInfo,
} from "./key-versions.js";
import { loadKey, LoadedKeys, type LoadedKey } from "./loaded-keys.js";
import {
  createResilience,
  deadlineSignal,
  defaultResilience,
  type ResilienceSettings,
} from "./resilience.js";
import { SingleFlight } from "./single-flight.js";

/** Bound on one refresh (list + GETs), which no caller's deadline limits. */
export const DEFAULT_REFRESH_TIMEOUT_MS = 30_000;

export interface KeyVaultWrapperOptions {
  readonly vaultUrl: string;
  /** Lowercase `host[:port]`, as written into envelopes and key_ids. */
  readonly vaultHost: string;
  readonly keyName: string;
  /** Empty: follow the newest usable version. Otherwise: only ever wrap under this one. */
  readonly keyVersion: string;
  readonly credential: TokenCredential;
  readonly caPem?: string;
  readonly userAgent: string;
  /** Defence in depth: the domain checks first, but no unwrap leaves for a key not listed here. */
  readonly isAllowed: (ref: KeyReference) => boolean;
  /** Versions kept loaded (public key / client), and unwrap-only clients kept; each costs a GET. */
  readonly maxVersionClients?: number;
  /** The Go plugin's `--proxy-mode`: every Key Vault request goes through that HTTP proxy. */
  readonly proxyMode?: ProxyModeSettings;
  /** Sees every try sent to Key Vault (metrics), rate limiting and the circuit state. */
  readonly callObserver?: KeyVaultCallObserver;
  /** Retries, rate limit and circuit breaker (defaults: `defaultResilience`). */
  readonly resilience?: Partial<ResilienceSettings>;
  readonly refreshTimeoutMs?: number;
}

export type KeyVaultWrapper = KeyWrapper;

const allDeleted = (): RevocationReason => "deleted";
const deletedState: KeyState = { current: undefined, versions: [], revocation: allDeleted };

export function createKeyVaultWrapper(options: KeyVaultWrapperOptions): KeyVaultWrapper {
  const observer = options.callObserver;
  const resilience = createResilience(
    { ...defaultResilience, ...options.resilience },
    {
      onRateLimited: (outcome) => observer?.onRateLimited?.(outcome),
      onCircuitState: (state) => observer?.onCircuitState?.(state),
    },
  );
  // One policy instance for every client: one limiter and one breaker per plugin.
  const clientOptions = keyVaultClientOptions({ ...options, resilience });
  const refreshTimeoutMs = options.refreshTimeoutMs ?? DEFAULT_REFRESH_TIMEOUT_MS;
  const refreshes = new SingleFlight<KeyState>();
  const keys = new KeyClient(options.vaultUrl, options.credential, clientOptions);
  const name = options.keyName;
  const pinned = options.keyVersion.toLowerCase();
  const maxClients = options.maxVersionClients ?? 64;
  const loaded = new LoadedKeys(maxClients);
  // Versions only ever unwrapped (seeds from before this process): version → client.
  const unwrapClients = new Map<string, CryptographyClient>();
  // A tie is settled once per set of tied versions, so steady state stays at one request.
  let settledTie: { tied: string; version: string } | undefined;
  // Ciphertexts of Azure/kubernetes-kms: Key Vault `decrypt`, with clients of their own.
  const decryptLegacy = createLegacyDecrypt({
    vaultUrl: options.vaultUrl,
    credential: options.credential,
    clientOptions,
    isAllowed: options.isAllowed,
    maxClients,
  });
  // From the last successful refresh: wrap() never uses a version Key Vault has revoked.
  let lastRevocation: (version: string) => RevocationReason | undefined = () => undefined;

  /** Every version's state, or "deleted" when Key Vault says the key itself is gone. */
  async function listVersions(
    abortSignal: AbortSignal,
  ): Promise<Map<string, VersionInfo> | "deleted"> {
    const now = new Date();
    const versions = new Map<string, VersionInfo>();
    try {
      for await (const p of keys.listPropertiesOfKeyVersions(name, { abortSignal })) {
        const info = versionInfo(p, now);
        if (info !== undefined) versions.set(info.version, info);
      }
    } catch (err) {
      if (isKeyNotFound(err)) return "deleted";
      throw kmsErrorFromAzure(err, `listing the versions of key ${name}`);
    }
    return versions;
  }

  async function getKey(abortSignal: AbortSignal, version?: string): Promise<KeyVaultKey> {
    try {
      return await keys.getKey(
        name,
        version === undefined ? { abortSignal } : { version, abortSignal },
      );
    } catch (err) {
      throw kmsErrorFromAzure(err, `reading key ${name}/${version ?? "(current)"}`);
    }
  }

  function load(key: KeyVaultKey): LoadedKey {
    const entry = loadKey(key, options.vaultHost, options.credential, clientOptions);
    loaded.add(entry);
    return entry;
  }

  /**
   * Versions created within the same second: Key Vault's own current version (the version-less
   * GET) wins if it is one of them; otherwise the greatest version string, the same on every node.
   */
  async function settle(
    tied: string[],
    all: Iterable<string>,
    signal: AbortSignal,
  ): Promise<string> {
    // Any new version may change Key Vault's answer, so the memo is keyed by every version too.
    const id = `${tied.join(",")}|${[...all].sort().join(",")}`;
    if (settledTie?.tied === id) return settledTie.version;
    let latest: KeyVaultKey | undefined;
    try {
      latest = await getKey(signal);
    } catch (err) {
      // A key-state answer (e.g. its latest version is disabled) just means "not one of these".
      if (!(err instanceof KmsError) || err.code !== "FAILED_PRECONDITION") throw err;
    }
    const latestVersion = latest?.properties.version?.toLowerCase();
    const chosen =
      latestVersion !== undefined && tied.includes(latestVersion)
        ? latestVersion
        : (deterministicPick(tied) ?? "");
    settledTie = { tied: id, version: chosen };
    // The GET already returned the whole key: no second GET to load it.
    if (latest !== undefined && chosen === latestVersion && loaded.get(chosen) === undefined) {
      load(latest);
    }
    return chosen;
  }

  async function select(
    versions: Map<string, VersionInfo>,
    signal: AbortSignal,
  ): Promise<string | undefined> {
    if (pinned !== "") {
      const info = versions.get(pinned);
      if (info === undefined) {
        // Versions cannot be deleted one by one: an absent pin is a typo, not a revocation.
        throw new KmsError(
          "FAILED_PRECONDITION",
          `key ${name} has no version ${options.keyVersion}; check --key-version`,
        );
      }
      return info.reason === undefined ? pinned : undefined;
    }
    const tied = newestUsable(versions.values());
    if (tied.length <= 1) return tied[0];
    return settle(tied, versions.keys(), signal);
  }

  function clientFor(ref: KeyReference): CryptographyClient {
    const fetched = loaded.get(ref.keyVersion);
    if (fetched !== undefined && sameKey(fetched.ref, ref)) return fetched.client;
    const id = ref.keyVersion.toLowerCase();
    let client = unwrapClients.get(id);
    if (client === undefined) {
      // Always a versioned kid: a version-less client caches the first GET and mislabels results.
      const kid = `${options.vaultUrl}/keys/${ref.keyName}/${ref.keyVersion}`;
      client = new CryptographyClient(kid, options.credential, clientOptions);
      if (unwrapClients.size >= maxClients) {
        const oldest = unwrapClients.keys().next().value;
        if (oldest !== undefined) unwrapClients.delete(oldest);
      }
      unwrapClients.set(id, client);
    }
    return client;
  }

  /** One refresh (list, then GETs as needed), under its own deadline. */
  async function refreshOnce(bound: AbortSignal): Promise<KeyState> {
    const signal = deadlineSignal(refreshTimeoutMs, `refreshing key ${name}`, bound);
    const versions = await listVersions(signal);
    if (versions === "deleted") {
      settledTie = undefined;
      lastRevocation = allDeleted;
      return deletedState;
    }
    const version = await select(versions, signal);
    let current: KeyReference | undefined;
    if (version !== undefined) {
      current = (loaded.use(version) ?? load(await getKey(signal, version))).ref;
    }
    const revocation = (v: string) => revocationOf(versions.get(v.toLowerCase()));
    lastRevocation = revocation;
    return {
      current,
      versions: newestFirst(versions, current?.keyName ?? name, options.vaultHost),
      revocation,
    };
  }

  return {
    // Concurrent refreshes (start-up retry, poll, rotation) share one list and its GETs.
    refresh: () => refreshes.run("refresh", undefined, refreshOnce),

    async wrap(seed, key) {
      const entry = loaded.get(key.keyVersion);
      if (entry === undefined || !sameKey(entry.ref, key)) {
        throw new KmsError(
          "INTERNAL",
          `key ${key.keyName}/${key.keyVersion} is not loaded; wrap only under a current key from refresh()`,
        );
      }
      const reason = lastRevocation(key.keyVersion);
      if (reason !== undefined) {
        throw new KmsError(
          "FAILED_PRECONDITION",
          `key ${key.keyName}/${key.keyVersion} is ${reason} in Key Vault; no new seed is wrapped under it`,
        );
      }
      if (entry.publicKey !== undefined) {
        const wrapped = publicEncrypt(
          {
            key: entry.publicKey,
            padding: cryptoConstants.RSA_PKCS1_OAEP_PADDING,
            oaepHash: "sha256",
          },
          seed,
        );
        return { key: entry.ref, algorithm: entry.algorithm, wrapped };
      }
      try {
        const result = await throughFirstRequestGate(entry.client, () =>
          entry.client.wrapKey(entry.algorithm, seed),
        );
        return { key: entry.ref, algorithm: entry.algorithm, wrapped: result.result };
      } catch (err) {
        throw (
          kmsErrorFromLocalCheck(err) ??
          kmsErrorFromAzure(err, `wrapKey with ${key.keyName}/${key.keyVersion}`)
        );
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
        const client = clientFor(key);
        const result = await throughFirstRequestGate(
          client,
          () =>
            client.unwrapKey(
              wrapped.algorithm,
              wrapped.wrapped,
              signal === undefined ? {} : { abortSignal: signal },
            ),
          signal,
        );
        return result.result;
      } catch (err) {
        throw kmsErrorFromLocalCheck(err) ?? kmsErrorFromAzure(err, what);
      }
    },

    decryptLegacy,
  };
}

/** Every listed version as a reference, newest first (ties: greatest version string first). */
function newestFirst(
  versions: Map<string, VersionInfo>,
  keyName: string,
  vaultHost: string,
): KeyReference[] {
  return [...versions.values()]
    .sort((a, b) => b.createdMs - a.createdMs || (a.version < b.version ? 1 : -1))
    .map((v) => Object.freeze({ vaultHost, keyName, keyVersion: v.version }));
}

/** Key Vault names and versions are case-insensitive. */
function sameKey(a: KeyReference, b: KeyReference): boolean {
  return (
    a.vaultHost === b.vaultHost &&
    a.keyName.toLowerCase() === b.keyName.toLowerCase() &&
    a.keyVersion.toLowerCase() === b.keyVersion.toLowerCase()
  );
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
