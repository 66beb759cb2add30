/**
 * A KeyWrapper for tests: real RSA-OAEP-256 with local key pairs (node:crypto), call counters,
 * optional latency, injectable failures and a gate to hold unwraps in flight.
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
  KeyWrapper,
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
  /** Default: 32 random lowercase hex characters, like Key Vault. */
  readonly keyVersion?: string;
  /** RSA modulus of generated keys (default 2048). */
  readonly modulusLength?: number;
  /** Use this key pair for the first version instead of generating one. */
  readonly keyPair?: FakeKeyPair;
  /** Delay before every wrap/unwrap answers (default 0). */
  readonly latencyMs?: number;
}

export interface FakeCallCounts {
  wrap: number;
  unwrap: number;
}

interface FailureRule {
  remaining: number;
  readonly error: KmsError;
}

const keyPairs = new Map<number, FakeKeyPair>();

/** A key pair per modulus length, generated once per test file (RSA-4096 takes a while). */
export function sharedKeyPair(modulusLength = 2048): FakeKeyPair {
  let pair = keyPairs.get(modulusLength);
  if (pair === undefined) {
    pair = generateKeyPairSync("rsa", { modulusLength });
    keyPairs.set(modulusLength, pair);
  }
  return pair;
}

function refKey(ref: KeyReference): string {
  return `${ref.vaultHost}/${ref.keyName}/${ref.keyVersion}`;
}

function randomVersion(): string {
  return randomBytes(16).toString("hex");
}

export class FakeKeyWrapper implements KeyWrapper {
  /** Calls made so far, successful or not. */
  readonly calls: FakeCallCounts = { wrap: 0, unwrap: 0 };
  /** Every buffer unwrap returned, in order: tests watch them get zeroed. */
  readonly unwrapped: Uint8Array[] = [];
  latencyMs: number;

  readonly #modulusLength: number;
  readonly #keys: Map<string, FakeKeyPair>;
  #current: KeyReference;
  readonly #unwrapFailures: FailureRule[] = [];
  readonly #wrapFailures: FailureRule[] = [];
  #gate: Promise<void> | undefined;

  constructor(options: FakeKeyWrapperOptions = {}, keys?: Map<string, FakeKeyPair>) {
    this.#modulusLength = options.modulusLength ?? 2048;
    this.latencyMs = options.latencyMs ?? 0;
    this.#current = Object.freeze({
      vaultHost: options.vaultHost ?? "fake-vault.vault.azure.net",
      keyName: options.keyName ?? "kms-key",
      keyVersion: options.keyVersion ?? randomVersion(),
    });
    this.#keys = keys ?? new Map<string, FakeKeyPair>();
    if (!this.#keys.has(refKey(this.#current))) {
      this.#keys.set(
        refKey(this.#current),
        options.keyPair ?? generateKeyPairSync("rsa", { modulusLength: this.#modulusLength }),
      );
    }
  }

  /** A fresh fake (zero counters, no rules) holding the same keys: a plugin "restart". */
  withSameKeys(options: Pick<FakeKeyWrapperOptions, "latencyMs"> = {}): FakeKeyWrapper {
    return new FakeKeyWrapper(
      { ...this.#current, modulusLength: this.#modulusLength, latencyMs: options.latencyMs ?? 0 },
      this.#keys,
    );
  }

  currentKey(): KeyReference {
    return this.#current;
  }

  /** Makes a new key version (new key pair) current; older versions still unwrap. */
  rotate(keyVersion: string = randomVersion()): KeyReference {
    const next = Object.freeze({ ...this.#current, keyVersion });
    this.#keys.set(
      refKey(next),
      generateKeyPairSync("rsa", { modulusLength: this.#modulusLength }),
    );
    this.#current = next;
    return next;
  }

  /** The next `count` unwraps fail with `error` (after latency). */
  failNextUnwraps(count: number, error: KmsError): void {
    if (count > 0) this.#unwrapFailures.push({ remaining: count, error });
  }

  /** The next `count` wraps fail with `error` (after latency). */
  failNextWraps(count: number, error: KmsError): void {
    if (count > 0) this.#wrapFailures.push({ remaining: count, error });
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

  async wrap(seed: Uint8Array): Promise<WrappedSeed> {
    this.calls.wrap++;
    const key = this.#current;
    await this.#delay(undefined);
    this.#maybeFail(this.#wrapFailures);
    const pair = this.#keys.get(refKey(key));
    if (pair === undefined) throw new KmsError("FAILED_PRECONDITION", "fake: no such key version");
    const wrapped = publicEncrypt(
      { key: pair.publicKey, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: "sha256" },
      seed,
    );
    return { key, algorithm: "RSA-OAEP-256", wrapped };
  }

  async unwrap(wrapped: WrappedSeed, options: UnwrapOptions = {}): Promise<Uint8Array> {
    this.calls.unwrap++;
    const gate = this.#gate;
    if (gate !== undefined) await gate;
    await this.#delay(options.signal);
    this.#maybeFail(this.#unwrapFailures);
    if (wrapped.algorithm !== "RSA-OAEP-256") {
      throw new KmsError("INVALID_ARGUMENT", `fake: unsupported algorithm ${wrapped.algorithm}`);
    }
    const pair = this.#keys.get(refKey(wrapped.key));
    if (pair === undefined) {
      throw new KmsError("FAILED_PRECONDITION", "fake: key version not found");
    }
    let plain: Buffer;
    try {
      plain = privateDecrypt(
        { key: pair.privateKey, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: "sha256" },
        wrapped.wrapped,
      );
    } catch (error) {
      throw new KmsError("INVALID_ARGUMENT", "fake: unwrap failed", { cause: error });
    }
    this.unwrapped.push(plain);
    return plain;
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
