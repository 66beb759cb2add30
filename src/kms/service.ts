/**
 * Status / Encrypt / Decrypt over envelope seeding (architecture.md, "The data path"). Encrypt and
 * Status never leave memory; Decrypt reaches the KeyWrapper only for a seed it has not cached,
 * and only after every local check has passed.
 */
import type { KeyAllowlist } from "./allowlist.js";
import { expectNoAnnotations, validateAnnotations } from "./annotations.js";
import { parseEnvelope } from "./envelope.js";
import { KmsError, toKmsError } from "./errors.js";
import { keyIdOf, keyUrl } from "./key-id.js";
import type { KeyWrapper } from "./key-wrapper.js";
import { legacyCiphertextNotSupported, looksLikeLegacyCiphertext } from "./legacy-ciphertext.js";
import { MAX_V1_CIPHERTEXT, MAX_V1_PLAINTEXT, MAX_V2_CIPHERTEXT } from "./limits.js";
import { createSeed, type Seed } from "./seed.js";
import { SeedCache } from "./seed-cache.js";
import type {
  CallContext,
  DecryptInput,
  EncryptResult,
  KmsService,
  StatusResult,
} from "./service-types.js";

export interface KmsServiceOptions {
  readonly wrapper: KeyWrapper;
  readonly allowlist: KeyAllowlist;
  /** Unwrapped seeds kept in memory (default 1000). */
  readonly cacheSize?: number;
  /** Status.version: "v2" for 1.29+, "v2beta1" for 1.27+ (default "v2"). */
  readonly statusVersion?: "v2" | "v2beta1";
  /** Deadline of one shared Key Vault unwrap (default 30000). */
  readonly unwrapTimeoutMs?: number;
}

export interface ManagedKmsService extends KmsService {
  /** Makes and wraps the first current seed; until it succeeds Encrypt is UNAVAILABLE. */
  start(): Promise<void>;
  /** Zeroes every seed; afterwards Encrypt and Decrypt fail UNAVAILABLE. */
  close(): void;
}

const NO_ANNOTATIONS: ReadonlyMap<string, Uint8Array> = new Map();

function invalid(message: string): KmsError {
  return new KmsError("INVALID_ARGUMENT", message);
}

function quoted(text: string): string {
  return JSON.stringify(text.length > 100 ? `${text.slice(0, 100)}…` : text);
}

export function createKmsService(options: KmsServiceOptions): ManagedKmsService {
  const { wrapper, allowlist } = options;
  const version = options.statusVersion ?? "v2";
  const cache = new SeedCache({
    wrapper,
    ...(options.cacheSize === undefined ? {} : { max: options.cacheSize }),
    ...(options.unwrapTimeoutMs === undefined ? {} : { unwrapTimeoutMs: options.unwrapTimeoutMs }),
  });

  // The current seed is one replaceable slot; rotation (a later issue) swaps it with replaceCurrent.
  let current: Seed | undefined;
  let currentStatus: StatusResult | undefined;
  let notReady = notReadyStatus("not ready: no seed yet");
  let closed = false;

  function notReadyStatus(healthz: string): StatusResult {
    return Object.freeze({ version, healthz, keyId: "" });
  }

  function replaceCurrent(seed: Seed): void {
    const previous = current;
    current = seed;
    currentStatus = Object.freeze({ version, healthz: "ok", keyId: seed.keyId });
    // Ciphertexts sealed by the previous seed stay readable without a Key Vault call.
    if (previous !== undefined) cache.add(previous);
  }

  // A function, not the variable, so checks after an await are not narrowed away by the compiler.
  function isClosed(): boolean {
    return closed;
  }

  function closedError(): KmsError {
    return new KmsError("UNAVAILABLE", "the KMS service is shutting down");
  }

  async function start(): Promise<void> {
    if (closed) throw closedError();
    try {
      const seed = await createSeed(wrapper);
      if (isClosed()) {
        seed.destroy();
        throw closedError();
      }
      replaceCurrent(seed);
    } catch (error) {
      const failure = toKmsError(error, "seed creation");
      if (current === undefined && !isClosed()) {
        notReady = notReadyStatus(`not ready: wrapping a seed failed (${failure.code})`);
      }
      throw failure;
    }
  }

  function close(): void {
    closed = true;
    notReady = notReadyStatus("not ready: shutting down");
    current?.destroy();
    current = undefined;
    currentStatus = undefined;
    cache.clear();
  }

  function status(): StatusResult {
    return currentStatus ?? notReady;
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
      const seed = current;
      if (seed === undefined) {
        throw closed
          ? closedError()
          : new KmsError(
              "UNAVAILABLE",
              "no seed is ready yet (Key Vault has not wrapped one); retry",
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

  // Seam for ciphertexts written by Azure/kubernetes-kms (Key Vault `decrypt`): a later issue.
  function decryptLegacy(_input: DecryptInput, _ctx: CallContext): Promise<Uint8Array> {
    return Promise.reject(legacyCiphertextNotSupported());
  }

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
      if (looksLikeLegacyCiphertext(ciphertext)) return await decryptLegacy(input, ctx);

      const envelope = parseEnvelope(ciphertext);
      validateAnnotations(input.annotations);
      expectNoAnnotations(input.annotations);
      const key = envelope.seed.key;
      // The current seed is recognised by its bytes, which also gives its key_id for free.
      const live = current;
      const own = live?.sealed(envelope) === true ? live : undefined;
      if (!v1) {
        const keyId = own?.keyId ?? keyIdOf(key);
        if (input.keyId !== keyId) {
          throw invalid(
            `request key_id ${quoted(input.keyId)} does not match the key that sealed this ciphertext ` +
              `(${keyUrl(key)}, key_id ${quoted(keyId)})`,
          );
        }
      }
      allowlist.check(key);
      if (own !== undefined) return own.open(envelope);
      if (closed) throw closedError();

      const cacheKey = envelope.seedCacheKey;
      const cached = cache.get(cacheKey);
      if (cached !== undefined) return cached.open(envelope);
      return await cache.use(envelope.seed, cacheKey, ctx.signal, (s) => s.open(envelope));
    } catch (error) {
      throw toKmsError(error, "decrypt");
    }
  }

  return { start, close, status, encrypt, decrypt };
}
