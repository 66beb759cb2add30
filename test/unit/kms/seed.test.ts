import { hkdfSync, randomBytes } from "node:crypto";
import fc from "fast-check";
import { abortError, cancelledReason, deadlineExceededReason } from "../../../src/kms/abort.js";
import { parseEnvelope } from "../../../src/kms/envelope.js";
import { KmsError } from "../../../src/kms/errors.js";
import type { KeyWrapper, WrappedSeed } from "../../../src/kms/key-wrapper.js";
import { fillRandom } from "../../../src/kms/random-pool.js";
import { createSeed, deriveKey, KDF_INFO, Seed } from "../../../src/kms/seed.js";
import { FakeKeyWrapper, sharedKeyPair } from "../../helpers/fake-key-wrapper.js";
import { expectCode, isZero } from "./fixtures.js";

const wrapped: WrappedSeed = {
  key: {
    vaultHost: "v.vault.azure.net",
    keyName: "k",
    keyVersion: "0123456789abcdef0123456789abcdef",
  },
  algorithm: "RSA-OAEP-256",
  wrapped: randomBytes(256),
};

describe("Seed", () => {
  it("seals and opens, with a fresh salt and nonce every time", () => {
    const seed = new Seed(randomBytes(32), wrapped);
    const plaintext = randomBytes(32);
    const a = parseEnvelope(seed.seal(plaintext));
    const b = parseEnvelope(seed.seal(plaintext));
    expect(Buffer.from(a.salt)).not.toEqual(Buffer.from(b.salt));
    expect(Buffer.from(a.nonce)).not.toEqual(Buffer.from(b.nonce));
    expect(seed.open(a)).toEqual(plaintext);
    expect(seed.open(b)).toEqual(plaintext);
    expect(a.seedCacheKey).toBe(seed.cacheKey);
  });

  it("authenticates the header as AES-GCM additional data", async () => {
    const seed = new Seed(randomBytes(32), wrapped);
    const envelope = parseEnvelope(seed.seal(randomBytes(32)));
    const altered = Buffer.from(envelope.header);
    altered[5] = (altered[5] as number) ^ 1; // inside the vault host: key derivation is unchanged
    const error = await expectCode(
      () => seed.open({ ...envelope, header: altered }),
      "INVALID_ARGUMENT",
    );
    expect(error.message).toContain("authentication");
  });

  it("does not open with another seed", async () => {
    const seed = new Seed(randomBytes(32), wrapped);
    const other = new Seed(randomBytes(32), wrapped);
    const envelope = parseEnvelope(seed.seal(randomBytes(32)));
    await expectCode(() => other.open(envelope), "INVALID_ARGUMENT");
  });

  it("zeroes the bytes it adopted when destroyed, and refuses to work after", async () => {
    const bytes = randomBytes(32);
    const seed = new Seed(bytes, wrapped);
    const envelope = parseEnvelope(seed.seal(randomBytes(8)));
    seed.destroy();
    expect(seed.destroyed).toBe(true);
    expect(isZero(bytes)).toBe(true);
    await expectCode(() => seed.seal(randomBytes(8)), "INTERNAL");
    await expectCode(() => seed.open(envelope), "INTERNAL");
  });

  it("copies the wrapped bytes (they may be a view into a request buffer)", () => {
    const request = Buffer.from(wrapped.wrapped);
    const seed = new Seed(randomBytes(32), { ...wrapped, wrapped: request });
    request.fill(7);
    expect(Buffer.from(seed.wrapped.wrapped)).toEqual(Buffer.from(wrapped.wrapped));
  });

  it("refuses and zeroes bytes that are not 32 long", async () => {
    const bytes = randomBytes(31);
    await expectCode(() => new Seed(bytes, wrapped), "INVALID_ARGUMENT");
    expect(isZero(bytes)).toBe(true);
  });

  it("is created by wrapping 32 random bytes under the key it is given", async () => {
    const fake = new FakeKeyWrapper({ keyPair: sharedKeyPair() });
    const first = fake.currentKey();
    const second = fake.rotate();
    const seed = await createSeed(fake, first);
    expect(seed.wrapped.key).toEqual(first);
    expect((await createSeed(fake, second)).wrapped.key).toEqual(second);
    expect(fake.calls.wrap).toBe(2);
    fake.failNextWraps(1, new KmsError("UNAVAILABLE", "down"));
    await expectCode(() => createSeed(fake, first), "UNAVAILABLE");
  });

  it("refuses a wrapper result that cannot go into an envelope", async () => {
    const fake = new FakeKeyWrapper({ keyPair: sharedKeyPair(), keyName: "bad_name" });
    const error = await expectCode(
      () => createSeed(fake, fake.currentKey()),
      "FAILED_PRECONDITION",
    );
    expect(error.message).toContain("key name");
  });

  it("refuses a wrapper result under another key than the one asked for", async () => {
    const fake = new FakeKeyWrapper({ keyPair: sharedKeyPair() });
    const asked = fake.currentKey();
    const other = fake.rotate();
    const wrong: KeyWrapper = {
      refresh: () => fake.refresh(),
      wrap: (seed) => fake.wrap(seed, other),
      unwrap: (wrapped) => fake.unwrap(wrapped),
      decryptLegacy: (...args) => fake.decryptLegacy(...args),
    };
    const error = await expectCode(() => createSeed(wrong, asked), "INTERNAL");
    expect(error.message).toContain(other.keyVersion);
  });
});

describe("key derivation", () => {
  it("is HKDF-SHA256 exactly as crypto.hkdfSync computes it", () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ minLength: 32, maxLength: 32 }),
        fc.uint8Array({ minLength: 32, maxLength: 32 }),
        (seed, salt) => {
          const expected = Buffer.from(hkdfSync("sha256", seed, salt, KDF_INFO, 32));
          expect(deriveKey(seed, salt)).toEqual(expected);
        },
      ),
      { numRuns: 200 },
    );
    expect(KDF_INFO.toString()).toContain("v1");
  });

  it("gets salt and nonce bytes that never repeat across pool refills", () => {
    const seen = new Set<string>();
    for (let i = 0; i < 1000; i++) {
      const out = Buffer.alloc(44);
      fillRandom(out);
      seen.add(out.toString("hex"));
    }
    const big = Buffer.alloc(5000);
    fillRandom(big);
    expect(isZero(big)).toBe(false);
    expect(seen.size).toBe(1000);
  });
});

describe("abort reasons", () => {
  it("map to DEADLINE_EXCEEDED or CANCELLED", () => {
    expect(abortError(deadlineExceededReason()).code).toBe("DEADLINE_EXCEEDED");
    expect(abortError(cancelledReason()).code).toBe("CANCELLED");
    const timeout = AbortSignal.timeout(0);
    return new Promise<void>((resolve) => {
      timeout.addEventListener("abort", () => {
        expect(abortError(timeout.reason).code).toBe("DEADLINE_EXCEEDED");
        expect(abortError(new Error("whatever")).code).toBe("CANCELLED");
        expect(abortError(undefined).code).toBe("CANCELLED");
        resolve();
      });
    });
  });
});
