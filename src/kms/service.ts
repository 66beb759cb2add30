/**
 * Status / Encrypt / Decrypt over envelope seeding (docs/architecture.md, "The data path").
 * Encrypt and Status never leave memory; Decrypt reaches the KeyWrapper only for a seed it has not cached,
 * and only after every local check has passed. Which seeds may be used is the SeedKeeper's call.
 */
import type { KeyAllowlist } from "./allowlist.js";
import { expectNoAnnotations, validateAnnotations } from "./annotations.js";
import { parseEnvelope } from "./envelope.js";
import { KmsError, toKmsError } from "./errors.js";
import { handOver } from "./handoff.js";
import { keyIdNames, keyIdOf, keyUrl } from "./key-id.js";
import type { KeyReference, KeyWrapper } from "./key-wrapper.js";
import { looksLikeLegacyCiphertext } from "./legacy-ciphertext.js";
import { createLegacyDecrypt } from "./legacy-decrypt.js";
import { MAX_V1_CIPHERTEXT, MAX_V1_PLAINTEXT, MAX_V2_CIPHERTEXT } from "./limits.js";
import { notify, type KmsObserver } from "./observer.js";
import type { Seed } from "./seed.js";
import { closedError, SeedKeeper } from "./seed-keeper.js";
import type {
  CallContext,
  DecryptInput,
  EncryptResult,
  KmsService,
  StatusResult,
} from "./service-types.js";

export interface KmsServiceOptions {
  readonly wrapper: KeyWrapper;
  /** Its first entry is the configured key: the only one whose versions can be revoked. */
  readonly allowlist: KeyAllowlist;
  /** Unwrapped seeds kept in memory (default 1000). */
  readonly cacheSize?: number;
  /** Status.version: "v2" for 1.29+, "v2beta1" for 1.27+ (default "v2"). */
  readonly statusVersion?: "v2" | "v2beta1";
  /** Deadline of one shared Key Vault unwrap (default 30000). */
  readonly unwrapTimeoutMs?: number;
  /** How often Key Vault's view of the key is refreshed (default 300000; 0: only by poll()). */
  readonly pollIntervalMs?: number;
  /** Age after which the current seed is replaced under the same version (default 7 days; 0: never). */
  readonly seedMaxAgeMs?: number;
  readonly observer?: KmsObserver;
  /** Clock for seed ages (default Date.now). */
  readonly now?: () => number;
}

export interface ManagedKmsService extends KmsService {
  /**
   * Refreshes the key and makes the first current seed, then starts the timers; until it
   * succeeds Encrypt fails and Status is not ok. Throws KmsError; the caller retries.
   */
  start(): Promise<void>;
  /** Refreshes the key and applies the result now; never rejects (failures go to the observer). */
  poll(): Promise<void>;
  /** Stops the timers and zeroes every seed; afterwards Encrypt and Decrypt fail UNAVAILABLE. */
  close(): void;
  /** Counters and sizes for metrics, read at scrape time (the hot path only increments). */
  stats(): KmsStats;
  /** Key Vault's refusal of the last poll's unwrap of the current seed; undefined while it works. */
  unwrapRefused(): KmsError | undefined;
}

export interface KmsStats {
  /** Decrypts whose seed was in memory (the current seed or a cached one). */
  readonly seedCacheHits: number;
  /** Decrypts that had to wait for a Key Vault unwrap (or for one already in flight). */
  readonly seedCacheMisses: number;
  readonly seedCacheSize: number;
  readonly seedCacheEvictions: number;
  /** Seconds the current seed has been current; undefined while there is none. */
  readonly currentSeedAgeSeconds: number | undefined;
}
const NO_ANNOTATIONS: ReadonlyMap<string, Uint8Array> = new Map();

function invalid(message: string): KmsError {
  return new KmsError("INVALID_ARGUMENT", message);
}

function quoted(text: string): string {
  return JSON.stringify(text.length > 100 ? `${text.slice(0, 100)}…` : text);
}

export function createKmsService(options: KmsServiceOptions): ManagedKmsService {
  const { allowlist, observer } = options;
  const version = options.statusVersion ?? "v2";
  const keeper = new SeedKeeper(options);
  const cache = keeper.cache;

  // One frozen StatusResult per current seed: Status allocates nothing.
  let statusSeed: Seed | undefined;
  // Plain counters: one increment per seed lookup, read by stats().
  let hits = 0;
  let misses = 0;
  let currentStatus: StatusResult | undefined;

  function notReadyStatus(healthz: string): StatusResult {
    return Object.freeze({ version, healthz, keyId: "" });
  }

  function decrypted(key: KeyReference, plaintext: Buffer): Buffer {
    notify(observer, "onDecrypt", key);
    // Seed.open made it for this call alone: the gRPC layer zeroes it once it is sent.
    return handOver(plaintext);
  }

  function status(): StatusResult {
    const seed = keeper.current;
    if (seed !== undefined) {
      if (seed !== statusSeed || currentStatus === undefined) {
        statusSeed = seed;
        currentStatus = Object.freeze({ version, healthz: "ok", keyId: seed.keyId });
      }
      return currentStatus;
    }
    // A gRPC error, not just healthz != "ok": only that stops kube-apiserver's writes.
    const unusable = keeper.unusable;
    if (unusable !== undefined && keeper.served) throw unusable;
    return notReadyStatus(keeper.notReady);
  }

  function encrypt(plaintext: Uint8Array, ctx: CallContext): EncryptResult {
    try {
      if (plaintext.length === 0) throw invalid("plaintext is empty");
      const v1 = ctx.api === "v1beta1";
      if (v1 && plaintext.length > MAX_V1_PLAINTEXT) {
        throw invalid(
          `plaintext is ${plaintext.length} bytes; KMS v1 allows at most ${MAX_V1_PLAINTEXT}`,
        );
      }
      const seed = keeper.current;
      if (seed === undefined) {
        if (keeper.closed) throw closedError();
        throw (
          keeper.unusable ??
          new KmsError("UNAVAILABLE", "no seed is ready yet (Key Vault has not wrapped one); retry")
        );
      }
      if (!v1) {
        const size = seed.envelopeSize(plaintext.length);
        if (size > MAX_V2_CIPHERTEXT) {
          throw invalid(
            `a ${plaintext.length}-byte plaintext makes a ${size}-byte ciphertext; KMS v2 allows at most ${MAX_V2_CIPHERTEXT} bytes`,
          );
        }
      }
      return { ciphertext: seed.seal(plaintext), keyId: seed.keyId, annotations: NO_ANNOTATIONS };
    } catch (error) {
      throw toKmsError(error, "encrypt");
    }
  }

  // Ciphertexts written by Azure/kubernetes-kms: one Key Vault `decrypt` each (v1: a bounded few).
  const decryptLegacy = createLegacyDecrypt({
    wrapper: options.wrapper,
    allowlist,
    keeper,
    observer,
  });

  async function decrypt(input: DecryptInput, ctx: CallContext): Promise<Uint8Array> {
    try {
      const { ciphertext } = input;
      const v1 = ctx.api === "v1beta1";
      if (ciphertext.length === 0) throw invalid("ciphertext is empty");
      const limit = v1 ? MAX_V1_CIPHERTEXT : MAX_V2_CIPHERTEXT;
      if (ciphertext.length > limit) {
        throw invalid(
          `ciphertext is ${ciphertext.length} bytes; ${ctx.api} allows at most ${limit}`,
        );
      }
      // A fresh copy of Key Vault's answer (legacy-decrypt.ts): handed over like a seed's.
      if (looksLikeLegacyCiphertext(ciphertext)) return handOver(await decryptLegacy(input, ctx));

      const envelope = parseEnvelope(ciphertext);
      validateAnnotations(input.annotations);
      expectNoAnnotations(input.annotations);
      const key = envelope.seed.key;
      // The current seed is recognised by its bytes, which also gives its key_id for free.
      const live = keeper.current;
      const own = live?.sealed(envelope) === true ? live : undefined;
      // Any key_id the version has had: its Go plugin key_id or a derivative (key-id.ts).
      if (!v1 && input.keyId !== own?.keyId && !keyIdNames(key, input.keyId)) {
        throw invalid(
          `request key_id ${quoted(input.keyId)} does not match the key that sealed this ciphertext ` +
            `(${keyUrl(key)}, key_id ${quoted(keyIdOf(key))} or a derivative of it)`,
        );
      }
      allowlist.check(key);
      // Before any seed lookup: a revoked version's seed may still be current or cached.
      const refused = keeper.refusal(key);
      if (refused !== undefined) throw refused;
      if (own !== undefined) {
        hits++;
        return decrypted(key, own.open(envelope));
      }
      if (keeper.closed) throw closedError();

      const cacheKey = envelope.seedCacheKey;
      const cached = cache.get(cacheKey);
      if (cached !== undefined) {
        hits++;
        return decrypted(key, cached.open(envelope));
      }
      misses++;
      const out = await cache.use(envelope.seed, cacheKey, ctx, (s) => s.open(envelope));
      return decrypted(key, out);
    } catch (error) {
      throw toKmsError(error, "decrypt");
    }
  }

  return {
    start: () => keeper.start(),
    poll: () => keeper.poll(),
    close: () => {
      keeper.close();
      statusSeed = undefined;
      currentStatus = undefined;
    },
    stats: () => {
      const age = keeper.currentAgeMs;
      return {
        seedCacheHits: hits,
        seedCacheMisses: misses,
        seedCacheSize: cache.size,
        seedCacheEvictions: cache.evictions,
        currentSeedAgeSeconds: age === undefined ? undefined : age / 1000,
      };
    },
    unwrapRefused: () => keeper.unwrapRefused,
    status,
    encrypt,
    decrypt,
  };
}
