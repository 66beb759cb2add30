/**
 * A seed: 32 random bytes, wrapped once by Key Vault, from which every Encrypt derives a one-time
 * AES-256-GCM key (docs/architecture.md, "Seeds"). The plaintext bytes live only here and are zeroed
 * when the seed is dropped.
 */
import {
  createCipheriv,
  createDecipheriv,
  createHmac,
  randomBytes,
  timingSafeEqual,
} from "node:crypto";
import {
  draftEnvelope,
  encodeEnvelopePrefix,
  ENVELOPE_TAIL_OVERHEAD,
  finishEnvelope,
  TAG_LENGTH,
  wrapBlockDigest,
  wrappedSeedProblem,
  type Envelope,
} from "./envelope.js";
import { KmsError, toKmsError } from "./errors.js";
import { fillRandom } from "./random-pool.js";
import { keyIdOf, keyUrl } from "./key-id.js";
import type { KeyReference, KeyWrapper, WrappedSeed } from "./key-wrapper.js";

export const SEED_LENGTH = 32;
/** HKDF info: binds derived keys to this envelope format version. */
export const KDF_INFO = Buffer.from("keyvault-kms envelope v1 data key", "latin1");
/** HKDF-Expand's input for the first (only) 32-byte block: info ‖ 0x01. */
const KDF_INFO_BLOCK_1 = Buffer.concat([KDF_INFO, Buffer.from([1])]);
const CIPHER = "aes-256-gcm";
/** Bound on the unwrap that proves a new seed (a background step: a refresh or the age timer). */
const PROOF_TIMEOUT_MS = 30_000;

/**
 * HKDF-SHA256(ikm = seed, salt, info = KDF_INFO, L = 32) per RFC 5869. One output block, so it
 * is two HMACs; written out because crypto.hkdfSync costs ~2.5x as much per call (a test checks
 * both agree).
 */
export function deriveKey(seed: Uint8Array, salt: Uint8Array): Buffer {
  const prk = createHmac("sha256", salt).update(seed).digest();
  try {
    return createHmac("sha256", prk).update(KDF_INFO_BLOCK_1).digest();
  } finally {
    prk.fill(0);
  }
}

export class Seed {
  readonly wrapped: WrappedSeed;
  /** Hex SHA-256 of the canonical wrap block (algorithm, key reference, wrapped bytes). */
  readonly cacheKey: string;
  readonly keyId: string;
  /** Envelope bytes up to the salt; the same for every Encrypt under this seed. */
  readonly #prefix: Buffer;
  /** The wrap block inside #prefix. */
  readonly #block: Buffer;
  readonly #bytes: Uint8Array;
  #destroyed = false;

  /**
   * Adopts `bytes` (no copy, so no unzeroed copy is left behind) and copies `wrapped.wrapped`
   * (it may be a view into a request buffer). Throws KmsError if either is unusable.
   */
  /** KeyState.currentEpoch the seed was made for (its key_id); undefined for unwrapped seeds. */
  readonly epoch: string | undefined;

  constructor(bytes: Uint8Array, wrapped: WrappedSeed, epoch?: string) {
    if (bytes.length !== SEED_LENGTH) {
      bytes.fill(0);
      throw new KmsError(
        "INVALID_ARGUMENT",
        `unwrapped seed is ${bytes.length} bytes, expected ${SEED_LENGTH}: the wrapped seed was not made by this plugin`,
      );
    }
    this.wrapped = Object.freeze({
      key: Object.freeze({ ...wrapped.key }),
      algorithm: wrapped.algorithm,
      wrapped: Uint8Array.from(wrapped.wrapped),
    });
    try {
      this.#prefix = encodeEnvelopePrefix(this.wrapped);
    } catch (error) {
      bytes.fill(0);
      throw error;
    }
    this.#block = this.#prefix.subarray(2);
    this.cacheKey = wrapBlockDigest(this.#block);
    this.epoch = epoch;
    this.keyId = keyIdOf(this.wrapped.key, epoch);
    this.#bytes = bytes;
  }

  get destroyed(): boolean {
    return this.#destroyed;
  }

  /** Zeroes the seed; it can no longer seal or open. Idempotent. */
  destroy(): void {
    this.#bytes.fill(0);
    this.#destroyed = true;
  }

  /** Whether `bytes` are this seed's (constant time). */
  matches(bytes: Uint8Array): boolean {
    return bytes.length === this.#bytes.length && timingSafeEqual(bytes, this.#bytes);
  }

  /** Whether `envelope` names this seed: a byte comparison, cheaper than its digest. */
  sealed(envelope: Envelope): boolean {
    return this.#block.equals(envelope.wrapBlock);
  }

  /** Size of the envelope that sealing `plaintextLength` bytes produces. */
  envelopeSize(plaintextLength: number): number {
    return this.#prefix.length + ENVELOPE_TAIL_OVERHEAD + plaintextLength;
  }

  /** Encrypts `plaintext` into a new envelope. Synchronous, no network. */
  seal(plaintext: Uint8Array): Buffer {
    this.#assertLive();
    const draft = draftEnvelope(this.#prefix, plaintext.length);
    fillRandom(draft.saltAndNonce);
    const key = deriveKey(this.#bytes, draft.salt);
    try {
      const cipher = createCipheriv(CIPHER, key, draft.nonce, { authTagLength: TAG_LENGTH });
      cipher.setAAD(draft.header);
      const body = cipher.update(plaintext);
      body.copy(draft.bytes, draft.bodyOffset);
      cipher.final();
      cipher.getAuthTag().copy(draft.bytes, draft.tagOffset);
    } finally {
      key.fill(0);
    }
    return finishEnvelope(draft.bytes);
  }

  /** Decrypts a parsed envelope sealed by this seed into a fresh buffer. */
  open(envelope: Envelope): Buffer {
    this.#assertLive();
    const key = deriveKey(this.#bytes, envelope.salt);
    let plaintext: Buffer | undefined;
    try {
      const decipher = createDecipheriv(CIPHER, key, envelope.nonce, { authTagLength: TAG_LENGTH });
      decipher.setAAD(envelope.header);
      decipher.setAuthTag(envelope.tag);
      plaintext = decipher.update(envelope.ciphertext);
      decipher.final();
      return plaintext;
    } catch (error) {
      plaintext?.fill(0); // unauthenticated output must not escape
      throw new KmsError(
        "INVALID_ARGUMENT",
        "ciphertext failed authentication (AES-GCM tag mismatch): it was altered or was not sealed by this seed",
        { cause: error },
      );
    } finally {
      key.fill(0);
    }
  }

  #assertLive(): void {
    if (this.#destroyed) throw new KmsError("INTERNAL", "seed used after it was destroyed");
  }
}

function sameRef(a: KeyReference, b: KeyReference): boolean {
  return a.vaultHost === b.vaultHost && a.keyName === b.keyName && a.keyVersion === b.keyVersion;
}

/** Makes a fresh seed and has `wrapper` wrap it under `key`. */
export async function createSeed(
  wrapper: KeyWrapper,
  key: KeyReference,
  epoch?: string,
): Promise<Seed> {
  const bytes = randomBytes(SEED_LENGTH);
  try {
    const wrapped = await wrapper.wrap(bytes, key);
    const problem = wrappedSeedProblem(wrapped);
    if (problem !== undefined) {
      throw new KmsError(
        "FAILED_PRECONDITION",
        `the key wrapper's result cannot go into an envelope: ${problem}`,
      );
    }
    // The seed's key_id goes into Status: it must be the version that was asked for.
    if (!sameRef(wrapped.key, key)) {
      throw new KmsError(
        "INTERNAL",
        `the key wrapper wrapped under ${keyUrl(wrapped.key)}, not ${keyUrl(key)}`,
      );
    }
    await proveUnwrap(
      wrapper,
      wrapped,
      (back) => back.length === bytes.length && timingSafeEqual(back, bytes),
    );
    return new Seed(bytes, wrapped, epoch);
  } catch (error) {
    bytes.fill(0);
    throw error;
  }
}

/**
 * Has Key Vault unwrap a new seed once before anything is sealed with it. RSA seeds are wrapped
 * locally with the public key, which only needs `get`: without this, an identity lacking
 * unwrapKey would seal every Secret and fail only after the next restart, with the data lost.
 */
function proveUnwrap(
  wrapper: KeyWrapper,
  wrapped: WrappedSeed,
  matches: (back: Uint8Array) => boolean,
): Promise<void> {
  const at = keyUrl(wrapped.key);
  return unwrapsTo(wrapper, wrapped, matches, (detail) => {
    return detail === undefined
      ? `Key Vault unwrapped a seed wrapped under ${at} to other bytes: its public key does not match the version; no seed is used`
      : `Key Vault could not unwrap a seed just wrapped under ${at}, so none is used: ${detail}`;
  });
}

/**
 * Has Key Vault unwrap the current seed again (once per poll): an identity that lost unwrapKey,
 * or a version whose key_ops changed, shows now rather than at the next restart, as an outage.
 */
export function reproveUnwrap(wrapper: KeyWrapper, seed: Seed): Promise<void> {
  const at = keyUrl(seed.wrapped.key);
  return unwrapsTo(
    wrapper,
    seed.wrapped,
    (back) => seed.matches(back),
    (detail) =>
      `Key Vault no longer unwraps the current seed (under ${at}): ${detail ?? "it answered other bytes"}; Status and Encrypt go on, but what is sealed now cannot be read after a restart until this is fixed`,
  );
}

/** Throws a KmsError worded by `message` (given Key Vault's refusal, or undefined for other bytes). */
async function unwrapsTo(
  wrapper: KeyWrapper,
  wrapped: WrappedSeed,
  matches: (back: Uint8Array) => boolean,
  message: (detail: string | undefined) => string,
): Promise<void> {
  let back: Uint8Array;
  try {
    back = await wrapper.unwrap(wrapped, { signal: AbortSignal.timeout(PROOF_TIMEOUT_MS) });
  } catch (error) {
    const cause = toKmsError(error, "unwrap proof");
    throw new KmsError(cause.code, message(cause.message), { cause });
  }
  const same = matches(back);
  back.fill(0);
  if (!same) throw new KmsError("FAILED_PRECONDITION", message(undefined));
}
