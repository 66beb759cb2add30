/**
 * Hostile Decrypt input against the in-process service (fake Key Vault that records every key it
 * is asked about). Invariants, for every case: a Decrypt that succeeds returns exactly what was
 * encrypted; a failure is a KmsError with a code from the architecture's table and never
 * INTERNAL; no request for a key outside the allowlist. Case counts: property-runs.ts.
 */
import { createHash, randomBytes } from "node:crypto";
import fc from "fast-check";
import { encodeEnvelope, finishEnvelope } from "../../../src/kms/envelope.js";
import { keyIdOf } from "../../../src/kms/key-id.js";
import type { KeyReference } from "../../../src/kms/key-wrapper.js";
import type { KmsApi } from "../../../src/kms/service-types.js";
import { checkProperty, fuzzing, ranCases } from "../../helpers/property-runs.js";
import { ctx } from "./fixtures.js";
import {
  annotationMaps,
  apis,
  expectDecryptOutcome,
  keyIds,
  legacyAnnotations,
  mutate,
  mutation,
  newTally,
  propertyWorld,
  type PropertyWorld,
} from "./property-fixtures.js";
import { report } from "../../helpers/report.js";

const NONE: ReadonlyMap<string, Uint8Array> = new Map();

describe("Decrypt: hostile input properties", () => {
  let world: PropertyWorld;

  beforeAll(async () => {
    world = await propertyWorld();
  });

  afterAll(() => {
    world.reader.close();
    if (!fuzzing)
      report(
        `hostile Decrypt properties: ${ranCases.total} cases (fast-check and exhaustive truncations)`,
      );
  });

  const decrypt = (
    ciphertext: Uint8Array,
    keyId: string,
    annotations: ReadonlyMap<string, Uint8Array>,
    api: KmsApi,
  ) => world.reader.decrypt({ ciphertext, keyId, annotations }, ctx(api));

  it("the valid samples decrypt (the properties start from real envelopes)", async () => {
    for (const s of [...world.samples, ...world.legacy]) {
      const annotations = world.legacy.includes(s) ? legacyAnnotations() : NONE;
      expect(Buffer.from(await decrypt(s.ciphertext, s.keyId, annotations, "v2"))).toEqual(
        s.plaintext,
      );
    }
  });

  it("random bytes, random key_ids, annotation maps of every shape", async () => {
    const bytes = fc.oneof(
      { weight: 8, arbitrary: fc.uint8Array({ maxLength: 1200 }) },
      {
        weight: 3,
        arbitrary: fc
          .uint8Array({ minLength: 1, maxLength: 1100 })
          .map((b) => Buffer.concat([Buffer.from([0x01, 0x01]), b])),
      },
      { weight: 1, arbitrary: fc.integer({ min: 1025, max: 70_000 }).map((n) => randomBytes(n)) },
    );
    await checkProperty(
      "decrypt/random-bytes",
      fc.asyncProperty(bytes, keyIds(world.keyId), annotationMaps, apis, async (c, id, a, api) => {
        await expectDecryptOutcome(world, () => decrypt(c, id, a, api), undefined);
      }),
      1800,
    );
  });

  it("mutations of valid envelopes (bit flips, byte swaps, insertions, deletions)", async () => {
    const tally = newTally();
    await checkProperty(
      "decrypt/mutated-envelopes",
      fc.asyncProperty(
        fc.nat({ max: world.samples.length - 1 }),
        fc.array(mutation, { minLength: 1, maxLength: 4 }),
        fc.boolean(),
        fc.oneof({ weight: 4, arbitrary: fc.constant(undefined) }, keyIds(world.keyId)),
        apis,
        async (index, mutations, refinish, id, api) => {
          const s = world.samples[index]!;
          let edited = mutate(s.ciphertext, mutations);
          // Re-sealing the check value lets the edit through to Key Vault and AES-GCM.
          if (refinish && edited.length > 4) edited = finishEnvelope(edited);
          const expected = edited.equals(s.ciphertext) ? s.plaintext : undefined;
          await expectDecryptOutcome(
            world,
            () => decrypt(edited, id ?? s.keyId, NONE, api),
            expected,
            tally,
          );
        },
      ),
      2500,
    );
    // Some edits get past the parser (to Key Vault or AES-GCM), so the property is not vacuous.
    expect(Object.keys(tally.byCode)).toContain("INVALID_ARGUMENT");
  });

  it("every truncation of every sample, raw and with a re-sealed check value", async () => {
    let cases = 0;
    for (const s of world.samples) {
      for (let length = 0; length < s.ciphertext.length; length++) {
        const cut = Buffer.from(s.ciphertext.subarray(0, length));
        for (const api of ["v2", "v1beta1"] as const) {
          await expectDecryptOutcome(world, () => decrypt(cut, s.keyId, NONE, api), undefined);
          cases++;
        }
        if (length > 4) {
          const sealed = finishEnvelope(Buffer.from(cut));
          await expectDecryptOutcome(world, () => decrypt(sealed, s.keyId, NONE, "v2"), undefined);
          cases++;
        }
      }
    }
    ranCases.total += cases;
    expect(cases).toBeGreaterThan(10_000);
  });

  it("structurally random envelopes with oversized and inconsistent fields", async () => {
    const ascii = (max: number) =>
      fc.oneof(
        fc.stringMatching(new RegExp(`^[a-z0-9.-]{1,${max}}$`)),
        fc.string({ maxLength: max }),
        fc.constant("a".repeat(max)),
      );
    const field = (text: fc.Arbitrary<string>) =>
      fc.tuple(text, fc.option(fc.nat({ max: 255 }))).map(([t, len]) => {
        const b = Buffer.from(t, "latin1");
        return Buffer.concat([Buffer.from([len ?? Math.min(b.length, 255)]), b]);
      });
    const u16 = fc.oneof(fc.constant(undefined), fc.nat({ max: 0xffff }));
    const envelope = fc
      .record({
        version: fc.oneof({ weight: 5, arbitrary: fc.constant(1) }, fc.nat({ max: 255 })),
        count: fc.oneof({ weight: 5, arbitrary: fc.constant(1) }, fc.nat({ max: 255 })),
        algorithm: fc.nat({ max: 3 }),
        host: fc.oneof(field(fc.constant(world.key.vaultHost.split(":")[0]!)), field(ascii(260))),
        port: fc.oneof(
          fc.constant(Number(world.key.vaultHost.split(":")[1] ?? 0)),
          fc.nat({ max: 0xffff }),
        ),
        name: fc.oneof(field(fc.constant(world.key.keyName)), field(ascii(200))),
        keyVersion: fc.oneof(
          fc.constant(
            Buffer.concat([Buffer.from([0x90]), Buffer.from(world.key.keyVersion, "hex")]),
          ),
          fc.uint8Array({ maxLength: 140 }).map((b) => Buffer.from(b)),
        ),
        wrappedLength: u16,
        wrapped: fc.oneof(
          fc.uint8Array({ minLength: 256, maxLength: 256 }),
          fc.uint8Array({ maxLength: 600 }),
        ),
        saltNonce: fc.uint8Array({ minLength: 44, maxLength: 44 }),
        bodyLength: u16,
        body: fc.uint8Array({ maxLength: 400 }),
        tag: fc.uint8Array({ minLength: 16, maxLength: 16 }),
        sealed: fc.boolean(),
      })
      .map((e) => {
        const u16be = (n: number) => {
          const b = Buffer.alloc(2);
          b.writeUInt16BE(n);
          return b;
        };
        const bytes = Buffer.concat([
          Buffer.from([e.version, e.count, e.algorithm]),
          e.host,
          u16be(e.port),
          e.name,
          e.keyVersion,
          u16be(e.wrappedLength ?? e.wrapped.length),
          e.wrapped,
          e.saltNonce,
          u16be(e.bodyLength ?? e.body.length),
          e.body,
          e.tag,
          Buffer.alloc(4),
        ]);
        return e.sealed ? finishEnvelope(bytes) : bytes;
      });
    await checkProperty(
      "decrypt/structured-envelopes",
      fc.asyncProperty(envelope, keyIds(world.keyId), apis, async (c, id, api) => {
        await expectDecryptOutcome(world, () => decrypt(c, id, NONE, api), undefined);
      }),
      1500,
    );
  });

  it("valid envelopes with annotation maps of every shape", async () => {
    await checkProperty(
      "decrypt/annotations",
      fc.asyncProperty(
        fc.nat({ max: world.samples.length - 1 }),
        annotationMaps,
        apis,
        async (index, annotations, api) => {
          const s = world.samples[index]!;
          // Success is only right with exactly the sample's plaintext.
          await expectDecryptOutcome(
            world,
            () => decrypt(s.ciphertext, s.keyId, annotations, api),
            s.plaintext,
          );
        },
      ),
      1200,
    );
  });

  it("legacy-looking ciphertexts: base64url text of RSA sizes, with and without azure.akv.io", async () => {
    const text = fc
      .record({
        size: fc.constantFrom(256, 384, 512, 255, 257, 128, 1),
        bytes: fc.uint8Array({ minLength: 512, maxLength: 512 }),
        variant: fc.constantFrom("canonical", "padded", "std-alphabet", "bad-char", "tail", "cut"),
        at: fc.nat(),
      })
      .map(({ size, bytes, variant, at }) => {
        let t = Buffer.from(bytes.subarray(0, size)).toString("base64url");
        if (variant === "padded") t = Buffer.from(bytes.subarray(0, size)).toString("base64");
        if (variant === "std-alphabet") t = t.replace(/-/g, "+").replace(/_/g, "/");
        if (variant === "bad-char")
          t = `${t.slice(0, at % t.length)}.${t.slice((at % t.length) + 1)}`;
        if (variant === "tail") t = `${t.slice(0, -1)}${t.endsWith("B") ? "C" : "B"}`;
        if (variant === "cut") t = t.slice(0, at % t.length || 1);
        return Buffer.from(t, "latin1");
      });
    const legacyKeyIds = fc.oneof(
      keyIds(world.keyId),
      fc.constant(createHash("sha256").update("https://other/keys/k/v").digest("hex")),
    );
    await checkProperty(
      "decrypt/legacy-looking",
      fc.asyncProperty(text, legacyKeyIds, annotationMaps, apis, async (c, id, a, api) => {
        await expectDecryptOutcome(world, () => decrypt(c, id, a, api), undefined);
      }),
      1200,
    );
  });

  it("genuine Azure/kubernetes-kms ciphertexts, edited or with other annotations", async () => {
    const tally = newTally();
    await checkProperty(
      "decrypt/legacy-genuine",
      fc.asyncProperty(
        fc.nat({ max: world.legacy.length - 1 }),
        fc.array(mutation, { maxLength: 3 }),
        fc.oneof(
          { weight: 3, arbitrary: fc.constant(undefined) },
          annotationMaps.map((m) => m as ReadonlyMap<string, Uint8Array> | undefined),
        ),
        fc.oneof({ weight: 3, arbitrary: fc.constant(undefined) }, keyIds(world.keyId)),
        apis,
        async (index, mutations, annotations, id, api) => {
          const s = world.legacy[index]!;
          const edited = mutate(s.ciphertext, mutations);
          const expected = edited.equals(s.ciphertext) ? s.plaintext : undefined;
          await expectDecryptOutcome(
            world,
            () => decrypt(edited, id ?? s.keyId, annotations ?? legacyAnnotations(), api),
            expected,
            tally,
          );
        },
      ),
      800,
    );
    expect(tally.decrypted).toBeGreaterThan(0);
  });

  it("well-formed envelopes naming keys outside the allowlist never reach Key Vault", async () => {
    const [host, port] = world.key.vaultHost.split(":");
    const foreign: fc.Arbitrary<KeyReference> = fc.record({
      vaultHost: fc.oneof(
        fc.domain().map((d) => d.toLowerCase()),
        fc.constant(host!),
        fc.nat({ max: 0xffff - 1 }).map((p) => `${host!}:${p + 1}`),
        fc.constant(`evil.example.com:${port ?? "443"}`),
      ),
      keyName: fc.oneof(
        fc.stringMatching(/^[0-9a-zA-Z-]{1,127}$/),
        fc.constant(world.key.keyName.toUpperCase()),
      ),
      keyVersion: fc.oneof(
        fc.stringMatching(/^[0-9a-f]{32}$/),
        fc.stringMatching(/^[0-9a-zA-Z]{1,64}$/),
      ),
    });
    await checkProperty(
      "decrypt/foreign-keys",
      fc.asyncProperty(foreign, apis, fc.boolean(), async (key, api, ownKeyId) => {
        const c = encodeEnvelope({
          seed: { key, algorithm: "RSA-OAEP-256", wrapped: randomBytes(256) },
          salt: randomBytes(32),
          nonce: randomBytes(12),
          ciphertext: randomBytes(32),
          tag: randomBytes(16),
        });
        await expectDecryptOutcome(
          world,
          () => decrypt(c, ownKeyId ? keyIdOf(key) : world.keyId, NONE, api),
          undefined,
        );
      }),
      600,
    );
  });
});
