import { randomBytes } from "node:crypto";
import fc from "fast-check";
import {
  encodeEnvelope,
  ENVELOPE_TAIL_OVERHEAD,
  envelopeSize,
  finishEnvelope,
  parseEnvelope,
  type Envelope,
} from "../../../src/kms/envelope.js";
import { KmsError } from "../../../src/kms/errors.js";
import { keyIdOf, keyUrl } from "../../../src/kms/key-id.js";
import type { KeyReference, WrappedSeed } from "../../../src/kms/key-wrapper.js";
import { MAX_V2_CIPHERTEXT } from "../../../src/kms/limits.js";
import { Seed } from "../../../src/kms/seed.js";
import { FakeKeyWrapper, sharedKeyPair } from "../../helpers/fake-key-wrapper.js";
import { ctx, expectCode, kmsErrorOf, startedServiceFor } from "./fixtures.js";

const LONGEST_HOST = `${"a".repeat(63)}.${"b".repeat(63)}.${"c".repeat(63)}.${"d".repeat(61)}`;
const LONGEST_NAME = "k".repeat(100) + "-0123456789ABCDEFGHIJKLMNOP";
const KV_VERSION = "0123456789abcdef0123456789abcdef";

function wrappedSeed(key: KeyReference, length = 256): WrappedSeed {
  return { key, algorithm: "RSA-OAEP-256", wrapped: randomBytes(length) };
}

function envelopeFor(seed: WrappedSeed, body = randomBytes(32)): Buffer {
  return encodeEnvelope({
    seed,
    salt: randomBytes(32),
    nonce: randomBytes(12),
    ciphertext: body,
    tag: randomBytes(16),
  });
}

function expectInvalid(bytes: Uint8Array): KmsError {
  let thrown: unknown;
  try {
    parseEnvelope(bytes);
  } catch (error) {
    thrown = error;
  }
  expect(thrown).toBeInstanceOf(KmsError);
  expect((thrown as KmsError).code).toBe("INVALID_ARGUMENT");
  return thrown as KmsError;
}

/** Re-encodes what parseEnvelope returned; equal bytes mean nothing was lost or invented. */
function reencode(envelope: Envelope): Buffer {
  return encodeEnvelope({
    seed: envelope.seed,
    salt: envelope.salt,
    nonce: envelope.nonce,
    ciphertext: envelope.ciphertext,
    tag: envelope.tag,
  });
}

describe("envelope format", () => {
  const key = { vaultHost: "myvault.vault.azure.net", keyName: "kms-key", keyVersion: KV_VERSION };

  it("round-trips every field, with version byte 0x01 and one wrapped copy", () => {
    const seed = wrappedSeed(key, 384);
    const salt = randomBytes(32);
    const nonce = randomBytes(12);
    const body = randomBytes(32);
    const tag = randomBytes(16);
    const bytes = encodeEnvelope({ seed, salt, nonce, ciphertext: body, tag });
    expect(bytes[0]).toBe(0x01);
    expect(bytes[1]).toBe(1);

    const parsed = parseEnvelope(bytes);
    expect(parsed.formatVersion).toBe(1);
    expect(parsed.seed.key).toEqual(key);
    expect(parsed.seed.algorithm).toBe("RSA-OAEP-256");
    expect(Buffer.from(parsed.seed.wrapped)).toEqual(seed.wrapped);
    expect(Buffer.from(parsed.salt)).toEqual(salt);
    expect(Buffer.from(parsed.nonce)).toEqual(nonce);
    expect(Buffer.from(parsed.ciphertext)).toEqual(body);
    expect(Buffer.from(parsed.tag)).toEqual(tag);
    // The header (AES-GCM AAD) is every byte before the ciphertext.
    expect(Buffer.from(parsed.header)).toEqual(bytes.subarray(0, bytes.length - 4 - 16 - 32));
    expect(parsed.seedCacheKey).toMatch(/^[0-9a-f]{64}$/);
    expect(bytes.length).toBe(envelopeSize(32, seed));
  });

  it.each([
    ["a port", { ...key, vaultHost: "127.0.0.1:8443" }],
    ["an explicit :443", { ...key, vaultHost: "myvault.vault.azure.net:443" }],
    ["an IPv6 literal", { ...key, vaultHost: "[::1]:8443" }],
    ["an IPv6 literal without port", { ...key, vaultHost: "[::1]" }],
    ["the Go plugin's test version", { ...key, keyVersion: "ABCD" }],
    ["a 64-char text version", { ...key, keyVersion: "Z".repeat(64) }],
    ["a 64-char hex version", { ...key, keyVersion: "ab".repeat(32) }],
    ["an odd-length hex version", { ...key, keyVersion: "abc" }],
    ["an uppercase key name", { ...key, keyName: "My-KEY-1" }],
  ])("keeps the key reference exact with %s (so key_id is unchanged)", (_label, ref) => {
    const parsed = parseEnvelope(envelopeFor(wrappedSeed(ref)));
    expect(parsed.seed.key).toEqual(ref);
    expect(keyUrl(parsed.seed.key)).toBe(keyUrl(ref));
    expect(keyIdOf(parsed.seed.key)).toBe(keyIdOf(ref));
  });

  it("round-trips an A256KW (Managed HSM) wrap", () => {
    const seed: WrappedSeed = { key, algorithm: "A256KW", wrapped: randomBytes(40) };
    expect(parseEnvelope(envelopeFor(seed)).seed.algorithm).toBe("A256KW");
  });

  it.each([
    ["an uppercase host", { ...key, vaultHost: "MyVault.vault.azure.net" }],
    ["a host of 254 characters", { ...key, vaultHost: `${LONGEST_HOST}x` }],
    ["a host with a path", { ...key, vaultHost: "vault.example/keys" }],
    ["port 0", { ...key, vaultHost: "vault.example:0" }],
    ["port 65536", { ...key, vaultHost: "vault.example:65536" }],
    ["a key name of 128 characters", { ...key, keyName: "k".repeat(128) }],
    ["a key name with an underscore", { ...key, keyName: "my_key" }],
    ["an empty key version", { ...key, keyVersion: "" }],
    ["a key version of 65 characters", { ...key, keyVersion: "Z".repeat(65) }],
    ["a key version with a dash", { ...key, keyVersion: "ab-cd" }],
  ])("refuses to write %s", (_label, ref) => {
    expect(() => envelopeFor(wrappedSeed(ref))).toThrow(KmsError);
  });

  it("refuses wrapped seeds of impossible lengths", () => {
    expect(() => envelopeFor(wrappedSeed(key, 513))).toThrow(/256\.\.512/);
    expect(() => envelopeFor(wrappedSeed(key, 255))).toThrow(/256\.\.512/);
    expect(() => envelopeFor({ key, algorithm: "A256KW", wrapped: randomBytes(48) })).toThrow(
      /40 bytes/,
    );
  });
});

describe("envelope size", () => {
  it("fits 1024 bytes for a 32-byte plaintext, RSA-4096 and the longest legal names", async () => {
    const fake = new FakeKeyWrapper({
      vaultHost: LONGEST_HOST,
      keyName: LONGEST_NAME,
      keyVersion: KV_VERSION,
      keyPair: sharedKeyPair(4096),
    });
    expect(LONGEST_HOST).toHaveLength(253);
    expect(LONGEST_NAME).toHaveLength(127);
    const service = await startedServiceFor(fake);
    const plaintext = randomBytes(32);
    const { ciphertext, keyId } = service.encrypt(plaintext, ctx("v2"));

    // 76 fixed + host 253 + name 127 + version 16 (32 hex packed) + wrapped 512 + plaintext 32.
    expect(ciphertext.length).toBe(1016);
    expect(ciphertext.length).toBeLessThanOrEqual(MAX_V2_CIPHERTEXT);
    const parsed = parseEnvelope(ciphertext);
    expect(parsed.seed.wrapped).toHaveLength(512);
    expect(envelopeSize(32, parsed.seed)).toBe(1016);
    expect(
      Buffer.from(await service.decrypt({ ciphertext, keyId, annotations: new Map() }, ctx())),
    ).toEqual(plaintext);
  });

  it("is 76 bytes + host + name + stored version + wrapped seed + plaintext", () => {
    const ref = { vaultHost: "v.example:8443", keyName: "key", keyVersion: KV_VERSION };
    // The port goes into its own 2-byte field, so only "v.example" counts as host.
    const size = envelopeSize(32, wrappedSeed(ref, 256));
    expect(size).toBe(76 + 9 + 3 + 16 + 256 + 32);
    expect(ENVELOPE_TAIL_OVERHEAD).toBe(66);
    expect(envelopeFor(wrappedSeed(ref, 256))).toHaveLength(size);
    // A version that is not lowercase hex is stored as text: 16 bytes more.
    expect(envelopeSize(32, wrappedSeed({ ...ref, keyVersion: "Z".repeat(32) }, 256))).toBe(
      size + 16,
    );
  });

  it("makes Encrypt on v2 refuse what cannot fit, naming the limit", async () => {
    const fake = new FakeKeyWrapper({
      vaultHost: LONGEST_HOST,
      keyName: LONGEST_NAME,
      keyVersion: "Z".repeat(32), // not a Key Vault version: stored as text
      keyPair: sharedKeyPair(4096),
    });
    const service = await startedServiceFor(fake);
    const error = await expectCode(
      () => service.encrypt(randomBytes(32), ctx("v2")),
      "INVALID_ARGUMENT",
    );
    expect(error.message).toContain("1032-byte ciphertext");
    expect(error.message).toContain("1024");
    // v1beta1 has no such limit.
    expect(service.encrypt(randomBytes(32), ctx("v1beta1")).ciphertext).toHaveLength(1032);
  });
});

describe("parseEnvelope rejects", () => {
  const key = { vaultHost: "myvault.vault.azure.net", keyName: "kms-key", keyVersion: KV_VERSION };
  const good = envelopeFor(wrappedSeed(key));

  it("any single-byte change (XOR 0x01 and 0xff at every index)", () => {
    for (let i = 0; i < good.length; i++) {
      for (const mask of [0x01, 0xff]) {
        const bad = Buffer.from(good);
        bad[i] = (bad[i] as number) ^ mask;
        expectInvalid(bad);
      }
    }
  });

  it("every truncation", () => {
    for (let length = 0; length < good.length; length++) expectInvalid(good.subarray(0, length));
  });

  it("every truncation even when the check value is recomputed", () => {
    for (let length = 5; length < good.length; length++) {
      expectInvalid(finishEnvelope(Buffer.from(good.subarray(0, length))));
    }
  });

  it("trailing bytes", () => {
    const longer = Buffer.concat([good, Buffer.alloc(1)]);
    expectInvalid(longer);
    const resealed = Buffer.concat([good.subarray(0, -4), Buffer.from([0]), Buffer.alloc(4)]);
    expect(expectInvalid(finishEnvelope(resealed)).message).toContain("trailing");
  });

  it("unknown format versions and wrap counts other than 1", () => {
    for (const version of [0x00, 0x02, 0x7f, 0xff]) {
      const bad = Buffer.from(good);
      bad[0] = version;
      expect(expectInvalid(finishEnvelope(bad)).message).toContain(
        "unknown envelope format version",
      );
    }
    for (const count of [0, 2, 255]) {
      const bad = Buffer.from(good);
      bad[1] = count;
      expect(expectInvalid(finishEnvelope(bad)).message).toContain("wrapped seeds");
    }
  });

  it("a text-encoded version that should have been packed (one encoding per key)", () => {
    // "ABCD" is stored as text; lowercased in place it becomes hex that the writer would pack.
    const text = envelopeFor(wrappedSeed({ ...key, keyVersion: "ABCD" }));
    const at = text.indexOf(Buffer.from("ABCD"));
    text.write("abcd", at, "latin1");
    expect(expectInvalid(finishEnvelope(text)).message).toContain("not packed");
  });

  it("error messages that carry no key material", () => {
    const bad = Buffer.from(good);
    bad[100] = (bad[100] as number) ^ 0xff;
    const message = expectInvalid(bad).message;
    expect(message).not.toContain(good.subarray(100, 110).toString("hex"));
    expect(message).not.toContain(good.toString("base64"));
    expect(message).toMatch(/^invalid ciphertext: /);
  });
});

describe("parseEnvelope properties", () => {
  const key = { vaultHost: "myvault.vault.azure.net", keyName: "kms-key", keyVersion: KV_VERSION };
  const good = envelopeFor(wrappedSeed(key));

  it("throws only KmsError INVALID_ARGUMENT on arbitrary bytes", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 2048 }), (bytes) => {
        expectInvalid(bytes);
      }),
      { numRuns: 2000 },
    );
  });

  it("on arbitrary edits of a valid envelope (check value recomputed), either rejects or returns exactly what re-encodes to the input", () => {
    const edit = fc.record({
      at: fc.nat({ max: good.length - 5 }),
      deleteCount: fc.nat({ max: 8 }),
      insert: fc.uint8Array({ maxLength: 8 }),
    });
    let accepted = 0;
    fc.assert(
      fc.property(fc.array(edit, { minLength: 1, maxLength: 3 }), (edits) => {
        let body = Buffer.from(good.subarray(0, -4));
        for (const e of edits) {
          const at = Math.min(e.at, body.length);
          body = Buffer.concat([body.subarray(0, at), e.insert, body.subarray(at + e.deleteCount)]);
        }
        const candidate = finishEnvelope(Buffer.concat([body, Buffer.alloc(4)]));
        let parsed: Envelope;
        try {
          parsed = parseEnvelope(candidate);
        } catch (error) {
          expect(error).toBeInstanceOf(KmsError);
          expect((error as KmsError).code).toBe("INVALID_ARGUMENT");
          return;
        }
        accepted++;
        expect(reencode(parsed)).toEqual(candidate);
      }),
      { numRuns: 3000 },
    );
    // Edits inside salt/nonce/ciphertext/tag keep the structure valid: the property saw both.
    expect(accepted).toBeGreaterThan(0);
  });

  it("re-encodes arbitrary valid field values exactly", () => {
    const label = fc.stringMatching(/^[a-z0-9]([a-z0-9-]{0,10}[a-z0-9])?$/);
    const ref = fc.record({
      vaultHost: fc
        .tuple(
          fc.array(label, { minLength: 1, maxLength: 4 }),
          fc.option(fc.integer({ min: 1, max: 65535 })),
        )
        .map(([labels, port]) => labels.join(".") + (port === null ? "" : `:${port}`)),
      keyName: fc.stringMatching(/^[0-9a-zA-Z-]{1,127}$/),
      keyVersion: fc.stringMatching(/^[0-9a-zA-Z]{1,64}$/),
    });
    fc.assert(
      fc.property(
        ref,
        fc.integer({ min: 256, max: 512 }),
        fc.integer({ min: 1, max: 300 }),
        (r, w, n) => {
          const seed = wrappedSeed(r, w);
          const bytes = envelopeFor(seed, randomBytes(n));
          const parsed = parseEnvelope(bytes);
          expect(parsed.seed.key).toEqual(r);
          expect(reencode(parsed)).toEqual(bytes);
          expect(bytes.length).toBe(envelopeSize(n, seed));
        },
      ),
      { numRuns: 300 },
    );
  });
});

describe("seed cache key", () => {
  it("is the same whether computed by the sealing seed or from a parsed envelope", async () => {
    const fake = new FakeKeyWrapper({ keyPair: sharedKeyPair() });
    const service = await startedServiceFor(fake);
    const { ciphertext } = service.encrypt(randomBytes(32), ctx());
    const parsed = parseEnvelope(ciphertext);
    const again = new Seed(randomBytes(32), parsed.seed);
    expect(again.cacheKey).toBe(parsed.seedCacheKey);
    expect(again.keyId).toBe(keyIdOf(fake.currentKey()));
    again.destroy();
    expect(await kmsErrorOf(() => again.seal(randomBytes(1)))).toHaveProperty("code", "INTERNAL");
  });
});
