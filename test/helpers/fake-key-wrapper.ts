/**
 * A KeyWrapper for tests: one Key Vault key with versions and attributes, real RSA-OAEP-256 with
 * local key pairs (node:crypto), call counters, optional latency, injectable failures and a gate
 * to hold unwraps in flight.
 */
import {
  constants,
  generateKeyPairSync,
  privateDecrypt,
  publicEncrypt,
  randomBytes,
  type KeyObject,
} from "node:crypto";
import { KmsError } from "../../src/kms/errors.js";
import type {
  KeyReference,
  KeyState,
  KeyWrapper,
  LegacyAlgorithm,
  RevocationReason,
  UnwrapOptions,
  WrappedSeed,
} from "../../src/kms/key-wrapper.js";

export interface FakeKeyPair {
  readonly publicKey: KeyObject;
  readonly privateKey: KeyObject;
}

export interface FakeKeyWrapperOptions {
  readonly vaultHost?: string;
  readonly keyName?: string;
  /** The first version (default: 32 random lowercase hex characters, like Key Vault). */
  readonly keyVersion?: string;
  /** RSA modulus of generated keys (default 2048). */
  readonly modulusLength?: number;
  /** Use this key pair for the first version instead of generating one. */
  readonly keyPair?: FakeKeyPair;
  /** Delay before every refresh/wrap/unwrap answers (default 0). */
  readonly latencyMs?: number;
  /** `--key-version` set: current is the first version while usable, never a newer one. */
  readonly pinned?: boolean;
}

export interface FakeCallCounts {
  wrap: number;
  unwrap: number;
  refresh: number;
}

interface FailureRule {
  remaining: number;
  readonly error: KmsError;
}

interface FakeVersion {
  readonly ref: KeyReference;
  readonly pair: FakeKeyPair;
  enabled: boolean;
  expired: boolean;
  deleted: boolean;
}

/** The Key Vault side, shared by every fake made with withSameKeys (a plugin "restart"). */
export interface FakeVault {
  readonly vaultHost: string;
  readonly keyName: string;
  readonly modulusLength: number;
  /** Oldest first. */
  readonly versions: FakeVersion[];
}

const keyPairs = new Map<number, FakeKeyPair>();

/**
 * RSA1_5 (PKCS#1 v1.5) decryption, test code only. Node's RSA_PKCS1_PADDING decryption uses
 * implicit rejection (a wrong ciphertext yields random bytes, not an error), so do the raw RSA
 * operation and check EM = 00 02 PS(≥8 non-zero) 00 M by hand.
 */
function rsa15Decrypt(privateKey: KeyObject, ciphertext: Uint8Array): Buffer | undefined {
  const k = Math.ceil((privateKey.asymmetricKeyDetails?.modulusLength ?? 0) / 8);
  if (ciphertext.length !== k) return undefined;
  const em = privateDecrypt({ key: privateKey, padding: constants.RSA_NO_PADDING }, ciphertext);
  if (em.length < 11 || em[0] !== 0x00 || em[1] !== 0x02) return undefined;
  const separator = em.indexOf(0x00, 2);
  if (separator < 10) return undefined;
  return Buffer.from(em.subarray(separator + 1));
}

/** A key pair per modulus length, generated once per test file (RSA-4096 takes a while). */
export function sharedKeyPair(modulusLength = 2048): FakeKeyPair {
  let pair = keyPairs.get(modulusLength);
  if (pair === undefined) {
    pair = generateKeyPairSync("rsa", { modulusLength });
    keyPairs.set(modulusLength, pair);
  }
  return pair;
}

function randomVersion(): string {
  return randomBytes(16).toString("hex");
}

function reasonOf(v: FakeVersion): RevocationReason | undefined {
  if (v.deleted) return "deleted";
  if (!v.enabled) return "disabled";
  return undefined;
}

/** Usable for new seeds: not revoked, and (like Key Vault's exp) not expired. */
function usable(v: FakeVersion): boolean {
  return reasonOf(v) === undefined && !v.expired;
}

export class FakeKeyWrapper implements KeyWrapper {
  /** Calls made so far, successful or not. */
  readonly calls: FakeCallCounts = { wrap: 0, unwrap: 0, refresh: 0 };
  /**
   * Unwraps of the seed this fake wrapped last: the keeper's proof that Key Vault can unwrap a new
   * seed, and its proof again at each poll (seed.ts). Counted here, not in `calls.unwrap`, which
   * counts the unwraps Decrypts need.
   */
  proofUnwraps = 0;
  #lastWrapped: Uint8Array | undefined;
  /** Every buffer unwrap returned, in order: tests watch them get zeroed. */
  readonly unwrapped: Uint8Array[] = [];
  /** Every seed wrap was given (the very buffers a Seed adopts), in order: also watched. */
  readonly wrappedSeeds: Uint8Array[] = [];
  /** Every decryptLegacy call (Key Vault `decrypt`), successful or not, in order. */
  readonly legacyCalls: { key: KeyReference; algorithm: LegacyAlgorithm }[] = [];
  /** Every buffer decryptLegacy returned, in order. */
  readonly legacyPlaintexts: Uint8Array[] = [];
  latencyMs: number;

  readonly #vault: FakeVault;
  /** The pinned version, if any. */
  readonly #pinned: string | undefined;
  readonly #unwrapFailures: FailureRule[] = [];
  readonly #wrapFailures: FailureRule[] = [];
  readonly #refreshFailures: FailureRule[] = [];
  readonly #legacyFailures: FailureRule[] = [];
  #gate: Promise<void> | undefined;

  constructor(options: FakeKeyWrapperOptions = {}, vault?: FakeVault) {
    this.latencyMs = options.latencyMs ?? 0;
    if (vault === undefined) {
      const modulusLength = options.modulusLength ?? 2048;
      vault = {
        vaultHost: options.vaultHost ?? "fake-vault.vault.azure.net",
        keyName: options.keyName ?? "kms-key",
        modulusLength,
        versions: [],
      };
      vault.versions.push({
        ref: Object.freeze({
          vaultHost: vault.vaultHost,
          keyName: vault.keyName,
          keyVersion: options.keyVersion ?? randomVersion(),
        }),
        pair: options.keyPair ?? generateKeyPairSync("rsa", { modulusLength }),
        enabled: true,
        expired: false,
        deleted: false,
      });
    }
    this.#vault = vault;
    const first = vault.versions[0];
    this.#pinned =
      options.pinned === true ? (options.keyVersion ?? first?.ref.keyVersion) : undefined;
  }

  /** A fresh fake (zero counters, no rules) on the same Key Vault key: a plugin "restart". */
  withSameKeys(options: Pick<FakeKeyWrapperOptions, "latencyMs" | "pinned"> = {}): FakeKeyWrapper {
    return new FakeKeyWrapper(
      {
        latencyMs: options.latencyMs ?? 0,
        pinned: options.pinned ?? this.#pinned !== undefined,
        ...(this.#pinned === undefined ? {} : { keyVersion: this.#pinned }),
      },
      this.#vault,
    );
  }

  /** What refresh() would make current now: the newest usable version, or the pinned one. */
  currentKey(): KeyReference {
    const ref = this.#current();
    if (ref === undefined) throw new Error("fake: no usable key version");
    return ref;
  }

  /** Every version, oldest first. */
  versions(): KeyReference[] {
    return this.#vault.versions.map((v) => v.ref);
  }

  /** Creates a new version (new key pair), which becomes the newest; older versions still unwrap. */
  rotate(keyVersion: string = randomVersion()): KeyReference {
    const ref = Object.freeze({
      vaultHost: this.#vault.vaultHost,
      keyName: this.#vault.keyName,
      keyVersion,
    });
    this.#vault.versions.push({
      ref,
      pair: generateKeyPairSync("rsa", { modulusLength: this.#vault.modulusLength }),
      enabled: true,
      expired: false,
      deleted: false,
    });
    return ref;
  }

  disable(keyVersion: string): void {
    this.#version(keyVersion).enabled = false;
  }

  enable(keyVersion: string): void {
    this.#version(keyVersion).enabled = true;
  }

  /** Moves the version's exp into the past (or, with `false`, back into the future). */
  expire(keyVersion: string, expired = true): void {
    this.#version(keyVersion).expired = expired;
  }

  /** Deletes the key: every version becomes "deleted" until recoverKey(). */
  deleteKey(): void {
    for (const v of this.#vault.versions) v.deleted = true;
  }

  recoverKey(): void {
    for (const v of this.#vault.versions) v.deleted = false;
  }

  /** The next `count` refreshes fail with `error` (after latency). */
  failNextRefreshes(count: number, error: KmsError): void {
    if (count > 0) this.#refreshFailures.push({ remaining: count, error });
  }

  /** The next `count` unwraps fail with `error` (after latency). */
  failNextUnwraps(count: number, error: KmsError): void {
    if (count > 0) this.#unwrapFailures.push({ remaining: count, error });
  }

  /** The next `count` wraps fail with `error` (after latency). */
  failNextWraps(count: number, error: KmsError): void {
    if (count > 0) this.#wrapFailures.push({ remaining: count, error });
  }

  /** The next `count` decryptLegacy calls fail with `error` (after latency). */
  failNextLegacyDecrypts(count: number, error: KmsError): void {
    if (count > 0) this.#legacyFailures.push({ remaining: count, error });
  }

  /**
   * What Key Vault `encrypt` returns under `key` (raw RSA bytes): how Azure/kubernetes-kms made
   * its ciphertexts (RSA-OAEP-256 on v2, RSA1_5 on v1), before base64url.
   */
  legacyEncrypt(key: KeyReference, algorithm: LegacyAlgorithm, plaintext: Uint8Array): Buffer {
    const found = this.#find(key);
    if (found === undefined) throw new Error("fake: no such key version");
    return algorithm === "RSA1_5"
      ? publicEncrypt(
          { key: found.pair.publicKey, padding: constants.RSA_PKCS1_PADDING },
          plaintext,
        )
      : publicEncrypt(
          {
            key: found.pair.publicKey,
            padding: constants.RSA_PKCS1_OAEP_PADDING,
            oaepHash: "sha256",
          },
          plaintext,
        );
  }

  /** Holds every unwrap (after it is counted) until the returned function is called. */
  holdUnwraps(): () => void {
    let release!: () => void;
    this.#gate = new Promise<void>((resolve) => {
      release = resolve;
    });
    return () => {
      this.#gate = undefined;
      release();
    };
  }

  async refresh(): Promise<KeyState> {
    this.calls.refresh++;
    await this.#delay(undefined);
    this.#maybeFail(this.#refreshFailures);
    // A snapshot: later changes to the fake must not leak into a state already handed out.
    const reasons = new Map<string, RevocationReason>();
    for (const v of this.#vault.versions) {
      const reason = reasonOf(v);
      if (reason !== undefined) reasons.set(v.ref.keyVersion, reason);
    }
    return Object.freeze({
      current: this.#current(),
      versions: Object.freeze(this.#vault.versions.map((v) => v.ref).reverse()),
      revocation: (keyVersion: string) => reasons.get(keyVersion),
    });
  }

  async wrap(seed: Uint8Array, key: KeyReference): Promise<WrappedSeed> {
    this.calls.wrap++;
    this.wrappedSeeds.push(seed);
    await this.#delay(undefined);
    this.#maybeFail(this.#wrapFailures);
    // Local wrapping with the version's own public key, as the real wrapper does for RSA.
    const found = this.#find(key);
    if (found === undefined) throw new KmsError("FAILED_PRECONDITION", "fake: no such key version");
    const wrapped = publicEncrypt(
      { key: found.pair.publicKey, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: "sha256" },
      seed,
    );
    this.#lastWrapped = wrapped;
    return { key: found.ref, algorithm: "RSA-OAEP-256", wrapped };
  }

  async unwrap(wrapped: WrappedSeed, options: UnwrapOptions = {}): Promise<Uint8Array> {
    const last = this.#lastWrapped;
    const proof = last !== undefined && Buffer.from(last).equals(wrapped.wrapped);
    if (proof) {
      this.proofUnwraps++;
    } else {
      this.calls.unwrap++;
    }
    // Key Vault decides when the request arrives (a held answer may land after a revocation), and
    // refuses unwrapKey on a disabled or deleted version; an expired one still unwraps.
    const found = this.#find(wrapped.key);
    const refusal =
      found !== undefined && (found.deleted || !found.enabled)
        ? new KmsError("FAILED_PRECONDITION", `fake: key version is ${reasonOf(found) ?? "?"}`)
        : undefined;
    // Holds model Decrypts' unwraps in flight; a new seed's proof is not held.
    const gate = proof ? undefined : this.#gate;
    if (gate !== undefined) await gate;
    await this.#delay(options.signal);
    this.#maybeFail(this.#unwrapFailures);
    if (wrapped.algorithm !== "RSA-OAEP-256") {
      throw new KmsError("INVALID_ARGUMENT", `fake: unsupported algorithm ${wrapped.algorithm}`);
    }
    if (found === undefined) {
      throw new KmsError("FAILED_PRECONDITION", "fake: key version not found");
    }
    if (refusal !== undefined) throw refusal;
    let plain: Buffer;
    try {
      plain = privateDecrypt(
        {
          key: found.pair.privateKey,
          padding: constants.RSA_PKCS1_OAEP_PADDING,
          oaepHash: "sha256",
        },
        wrapped.wrapped,
      );
    } catch (error) {
      throw new KmsError("INVALID_ARGUMENT", "fake: unwrap failed", { cause: error });
    }
    if (!proof) this.unwrapped.push(plain);
    return plain;
  }

  async decryptLegacy(
    key: KeyReference,
    algorithm: LegacyAlgorithm,
    ciphertext: Uint8Array,
    options: UnwrapOptions = {},
  ): Promise<Uint8Array> {
    this.legacyCalls.push({ key, algorithm });
    const found = this.#find(key);
    await this.#delay(options.signal);
    this.#maybeFail(this.#legacyFailures);
    if (found === undefined)
      throw new KmsError("FAILED_PRECONDITION", "fake: key version not found");
    if (found.deleted || !found.enabled) {
      throw new KmsError("FAILED_PRECONDITION", `fake: key version is ${reasonOf(found) ?? "?"}`);
    }
    let plain: Buffer | undefined;
    try {
      plain =
        algorithm === "RSA1_5"
          ? rsa15Decrypt(found.pair.privateKey, ciphertext)
          : privateDecrypt(
              {
                key: found.pair.privateKey,
                padding: constants.RSA_PKCS1_OAEP_PADDING,
                oaepHash: "sha256",
              },
              ciphertext,
            );
    } catch {
      plain = undefined;
    }
    // Key Vault's answer to a ciphertext of another key: 400 BadParameter.
    if (plain === undefined) throw new KmsError("INVALID_ARGUMENT", "fake: decrypt failed");
    this.legacyPlaintexts.push(plain);
    return plain;
  }

  #current(): KeyReference | undefined {
    if (this.#pinned !== undefined) {
      const pinned = this.#vault.versions.find((v) => v.ref.keyVersion === this.#pinned);
      return pinned === undefined || !usable(pinned) ? undefined : pinned.ref;
    }
    for (let i = this.#vault.versions.length - 1; i >= 0; i--) {
      const v = this.#vault.versions[i]!;
      if (usable(v)) return v.ref;
    }
    return undefined;
  }

  #find(key: KeyReference): FakeVersion | undefined {
    if (key.vaultHost !== this.#vault.vaultHost || key.keyName !== this.#vault.keyName) {
      return undefined;
    }
    return this.#vault.versions.find((v) => v.ref.keyVersion === key.keyVersion);
  }

  #version(keyVersion: string): FakeVersion {
    const found = this.#vault.versions.find((v) => v.ref.keyVersion === keyVersion);
    if (found === undefined) throw new Error(`fake: no version ${keyVersion}`);
    return found;
  }

  #maybeFail(rules: FailureRule[]): void {
    const rule = rules[0];
    if (rule === undefined) return;
    rule.remaining--;
    if (rule.remaining <= 0) rules.shift();
    throw rule.error;
  }

  #delay(signal: AbortSignal | undefined): Promise<void> {
    if (signal?.aborted) return Promise.reject(signal.reason as Error);
    if (this.latencyMs <= 0) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      const onAbort = (): void => {
        clearTimeout(timer);
        reject(signal?.reason as Error);
      };
      const timer = setTimeout(() => {
        signal?.removeEventListener("abort", onAbort);
        resolve();
      }, this.latencyMs);
      signal?.addEventListener("abort", onAbort, { once: true });
    });
  }
}
