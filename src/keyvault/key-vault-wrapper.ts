import { constants as cryptoConstants, publicEncrypt } from "node:crypto";
import type { TokenCredential } from "@azure/identity";
import { KeyClient, type KeyVaultKey } from "@azure/keyvault-keys";
import { KmsError } from "../kms/errors.js";
import type {
  KeyReference,
  KeyState,
  KeyWrapper,
  RevocationReason,
  UnwrapOptions,
  WrappedSeed,
} from "../kms/key-wrapper.js";
import { apiVersionPolicy } from "./api-version.js";
import { keyVaultClientOptions } from "./client-options.js";
import { isKeyNotFound, kmsErrorFromAzure } from "./errors.js";
import { throughFirstRequestGate } from "./first-request-gate.js";
import { createLegacyDecrypt } from "./legacy-decrypt.js";
import type { KeyVaultCallObserver } from "./metrics-policy.js";
import type { ProxyModeSettings } from "./proxy-mode.js";
import {
  deterministicPick,
  epochOf,
  newestUsable,
  revocationOf,
  versionInfo,
  type VersionInfo,
} from "./key-versions.js";
import { loadKey, LoadedKeys, type LoadedKey } from "./loaded-keys.js";
import { RemoteClients } from "./remote-clients.js";
import {
  createResilience,
  deadlineSignal,
  defaultResilience,
  whenQueued,
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
  /** A Managed HSM (also recognised by its host): it sets the default rate limit. */
  readonly managedHsm?: boolean;
  readonly credential: TokenCredential;
  readonly caPem?: string;
  readonly userAgent: string;
  /** Defence in depth: the domain checks first, but no unwrap leaves for a key not listed here. */
  readonly isAllowed: (ref: KeyReference) => boolean;
  /** Versions kept loaded (each costs a GET), and Key Vault clients kept, one per version. */
  readonly maxVersionClients?: number;
  /** The Go plugin's `--proxy-mode`: every Key Vault request goes through that HTTP proxy. */
  readonly proxyMode?: ProxyModeSettings;
  /** Sees every try sent to Key Vault (metrics), rate limiting and the circuit state. */
  readonly callObserver?: KeyVaultCallObserver;
  /** Retries, rate limit and circuit breaker (defaults: `defaultResilience`). */
  readonly resilience?: Partial<ResilienceSettings>;
  readonly refreshTimeoutMs?: number;
  /** --keyvault-api-version; absent: the SDK's, falling back to what Key Vault says it knows. */
  readonly apiVersion?: string;
  /** Key Vault refused `from` and named `to`, which every request uses from now on. */
  readonly onApiVersionFallback?: (from: string, to: string) => void;
}

export type KeyVaultWrapper = KeyWrapper;

/** The versions one refresh saw; `fetched` when a GET already returned the whole key. */
interface Listing {
  readonly versions: Map<string, VersionInfo>;
  readonly fetched?: KeyVaultKey;
  /** What this view cannot see (KeyState.limitation). */
  readonly limitation?: string;
}

function noListLimitation(keyName: string): string {
  return (
    `the identity may not list the versions of key ${keyName} (no "list" permission): the plugin ` +
    "follows the current version by GET and does not see older versions being disabled (Key " +
    'Vault still refuses to unwrap with them); grant "list" (access policy) or the role Key ' +
    "Vault Crypto User (RBAC) to see them"
  );
}

const allDeleted = (): RevocationReason => "deleted";
const deletedState: KeyState = { current: undefined, versions: [], revocation: allDeleted };

export function createKeyVaultWrapper(options: KeyVaultWrapperOptions): KeyVaultWrapper {
  const observer = options.callObserver;
  const managedHsm = options.managedHsm === true || /\.managedhsm\./i.test(options.vaultHost);
  const resilience = createResilience(
    { ...defaultResilience, ...options.resilience },
    {
      onRateLimited: (outcome) => observer?.onRateLimited?.(outcome),
      onAllowance: (perWindow) => observer?.onAllowance?.(perWindow),
      onCircuitState: (state) => observer?.onCircuitState?.(state),
    },
  );
  // One policy instance for every client: one limiter and one breaker per plugin.
  const apiVersion = apiVersionPolicy(options.apiVersion, options.onApiVersionFallback);
  const clientOptions = keyVaultClientOptions({ ...options, resilience, apiVersion });
  const refreshTimeoutMs = options.refreshTimeoutMs ?? DEFAULT_REFRESH_TIMEOUT_MS;
  const refreshes = new SingleFlight<KeyState>();
  const keys = new KeyClient(options.vaultUrl, options.credential, clientOptions);
  const name = options.keyName;
  const pinned = options.keyVersion.toLowerCase();
  const maxClients = options.maxVersionClients ?? 64;
  const loaded = new LoadedKeys(maxClients);
  // wrapKey, unwrapKey and legacy decrypt: Key Vault decides, never a local validity check.
  const remote = new RemoteClients(options.vaultUrl, options.credential, clientOptions, maxClients);
  // A tie is settled once per set of tied versions, so steady state stays at one request.
  let settledTie: { tied: string; version: string } | undefined;
  // Ciphertexts of Azure/kubernetes-kms: Key Vault `decrypt`, through the same clients.
  const decryptLegacy = createLegacyDecrypt({ clients: remote, isAllowed: options.isAllowed });
  // From the last successful refresh: wrap() never uses a version Key Vault has revoked.
  let lastRevocation: (version: string) => RevocationReason | undefined = () => undefined;

  /** Every listed version's state; throws the SDK's error (404, 403, …) untranslated. */
  async function listVersions(abortSignal: AbortSignal): Promise<Map<string, VersionInfo>> {
    const now = new Date();
    const versions = new Map<string, VersionInfo>();
    for await (const p of keys.listPropertiesOfKeyVersions(name, { abortSignal })) {
      const info = versionInfo(p, now);
      if (info !== undefined) versions.set(info.version, info);
    }
    return versions;
  }

  /** The key's current version as a GET sees it, or "deleted" on Key Vault's KeyNotFound. */
  async function getCurrentOrDeleted(signal: AbortSignal): Promise<KeyVaultKey | "deleted"> {
    try {
      return await keys.getKey(name, { abortSignal: signal });
    } catch (err) {
      if (isKeyNotFound(err)) return "deleted";
      throw kmsErrorFromAzure(err, `reading key ${name}/(current)`);
    }
  }

  /** The pinned version by GET (no list to find it in); "deleted" if the key itself is gone. */
  async function getPinned(signal: AbortSignal): Promise<KeyVaultKey | "deleted"> {
    try {
      return await keys.getKey(name, { version: pinned, abortSignal: signal });
    } catch (err) {
      if (!isKeyNotFound(err)) throw kmsErrorFromAzure(err, `reading key ${name}/${pinned}`);
    }
    if ((await getCurrentOrDeleted(signal)) === "deleted") return "deleted";
    throw new KmsError(
      "FAILED_PRECONDITION",
      `key ${name} has no version ${options.keyVersion}; check --key-version`,
    );
  }

  /** One version known from a GET, as a listing of one. */
  function listingOf(key: KeyVaultKey, limitation?: string): Listing {
    const versions = new Map<string, VersionInfo>();
    const info = versionInfo(key.properties, new Date());
    if (info !== undefined) versions.set(info.version, info);
    return limitation === undefined
      ? { versions, fetched: key }
      : { versions, fetched: key, limitation };
  }

  /**
   * Key Vault's view of the key's versions. Key Vault lists a missing or deleted key as 200 and
   * empty, not 404 (Azure/azure-sdk-for-net KeyClientLiveTests/
   * GetPropertiesOfKeyVersionsNonExisting.json): only the key's own GET says KeyNotFound, so an
   * empty list is confirmed by one. An identity without `list` (RBAC's Key Vault Crypto Service
   * Encryption User has get, wrapKey and unwrapKey only) follows the current version by GET.
   */
  async function readVersions(signal: AbortSignal): Promise<Listing | "deleted"> {
    let versions: Map<string, VersionInfo>;
    try {
      versions = await listVersions(signal);
    } catch (err) {
      if (isKeyNotFound(err)) versions = new Map();
      else {
        const error = kmsErrorFromAzure(err, `listing the versions of key ${name}`);
        if (error.code !== "PERMISSION_DENIED") throw error;
        const seen = pinned === "" ? await getCurrentOrDeleted(signal) : await getPinned(signal);
        return seen === "deleted" ? "deleted" : listingOf(seen, noListLimitation(name));
      }
    }
    if (versions.size > 0) return { versions };
    const current = await getCurrentOrDeleted(signal);
    return current === "deleted" ? "deleted" : listingOf(current);
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
    const entry = loadKey(key, options.vaultHost);
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

  /** One refresh (list, then GETs as needed), under its own deadline. */
  async function refreshOnce(bound: AbortSignal): Promise<KeyState> {
    const signal = deadlineSignal(refreshTimeoutMs, `refreshing key ${name}`, bound);
    const listing = await readVersions(signal);
    if (listing === "deleted") {
      settledTie = undefined;
      lastRevocation = allDeleted;
      return deletedState;
    }
    const { versions, fetched } = listing;
    const version = await select(versions, signal);
    let current: KeyReference | undefined;
    if (version !== undefined) {
      let entry = loaded.use(version);
      if (entry === undefined) {
        entry =
          fetched?.properties.version?.toLowerCase() === version
            ? load(fetched)
            : load(await getKey(signal, version));
      }
      current = entry.ref;
      resilience.keyKnown({ managedHsm, keyType: entry.keyType, rsaBits: entry.rsaBits });
    }
    const revocation = (v: string) => revocationOf(versions.get(v.toLowerCase()));
    lastRevocation = revocation;
    const currentEpoch =
      current === undefined
        ? undefined
        : epochOf(versions, current.keyVersion.toLowerCase(), pinned !== "");
    const state: KeyState = {
      current,
      ...(currentEpoch === undefined ? {} : { currentEpoch }),
      versions: newestFirst(versions, current?.keyName ?? name, options.vaultHost),
      revocation,
    };
    return listing.limitation === undefined ? state : { ...state, limitation: listing.limitation };
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
        const client = remote.for(entry.ref);
        const result = await throughFirstRequestGate(client, () =>
          client.wrapKey(entry.algorithm, seed),
        );
        return { key: entry.ref, algorithm: entry.algorithm, wrapped: result.result };
      } catch (err) {
        throw kmsErrorFromAzure(err, `wrapKey with ${key.keyName}/${key.keyVersion}`);
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
        const onQueued = unwrapOptions?.onQueued;
        if (signal !== undefined && onQueued !== undefined) whenQueued(signal, onQueued);
        const client = remote.for(key);
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
        throw kmsErrorFromAzure(err, what);
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
