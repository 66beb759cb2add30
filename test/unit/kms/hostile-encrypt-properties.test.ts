/**
 * Encrypt over every plaintext shape, in-process (fake Key Vault). Invariants: Encrypt never calls
 * Key Vault; it fails only with INVALID_ARGUMENT and only for an empty or oversized plaintext;
 * what it returns fits the API's limit and decrypts to exactly the plaintext, in this instance
 * and in another one that must unwrap the seed.
 */
import fc from "fast-check";
import { KmsError } from "../../../src/kms/errors.js";
import { MAX_V1_PLAINTEXT, MAX_V2_CIPHERTEXT } from "../../../src/kms/limits.js";
import { createKmsService, type ManagedKmsService } from "../../../src/kms/service.js";
import type { EncryptResult } from "../../../src/kms/service-types.js";
import { checkProperty } from "../../helpers/property-runs.js";
import { ctx } from "./fixtures.js";
import {
  apis,
  expectDecryptOutcome,
  propertyWorld,
  RecordingWrapper,
  type PropertyWorld,
} from "./property-fixtures.js";

describe("Encrypt: properties over every plaintext", () => {
  let world: PropertyWorld;
  let other: ManagedKmsService;
  let otherWrapper: RecordingWrapper;
  /** Envelope bytes besides the plaintext, for this key. */
  let overhead: number;

  beforeAll(async () => {
    world = await propertyWorld();
    otherWrapper = new RecordingWrapper(world.fake.withSameKeys());
    other = createKmsService({
      wrapper: otherWrapper,
      allowlist: world.allowlist,
      pollIntervalMs: 0,
      cacheSize: 1,
    });
    await other.start();
    overhead = world.reader.encrypt(new Uint8Array(1), ctx()).ciphertext.length - 1;
  });

  afterAll(() => {
    world.reader.close();
    other.close();
  });

  const plaintexts = fc.oneof(
    { weight: 10, arbitrary: fc.uint8Array({ maxLength: 1100 }) },
    { weight: 2, arbitrary: fc.uint8Array({ minLength: 32, maxLength: 32 }) },
    {
      weight: 1,
      arbitrary: fc
        .integer({ min: MAX_V1_PLAINTEXT - 2, max: MAX_V1_PLAINTEXT + 2 })
        .map((n) => new Uint8Array(n).fill(7)),
    },
  );

  const tooBig = (length: number, v1: boolean) =>
    v1 ? length > MAX_V1_PLAINTEXT : length + overhead > MAX_V2_CIPHERTEXT;

  it("succeeds or fails INVALID_ARGUMENT for the right reason; never calls Key Vault; round-trips", async () => {
    const calls = () => world.wrapper.asked.length;
    await checkProperty(
      "encrypt/plaintexts",
      fc.asyncProperty(plaintexts, apis, fc.boolean(), async (plaintext, api, elsewhere) => {
        const before = calls();
        let result: EncryptResult | undefined;
        let error: unknown;
        try {
          result = world.reader.encrypt(plaintext, ctx(api));
        } catch (e) {
          error = e;
        }
        expect(calls()).toBe(before);
        const v1 = api === "v1beta1";
        if (result === undefined) {
          expect(error).toBeInstanceOf(KmsError);
          expect((error as KmsError).code).toBe("INVALID_ARGUMENT");
          // Only empty or oversized plaintexts are refused.
          expect(plaintext.length === 0 || tooBig(plaintext.length, v1)).toBe(true);
          return;
        }
        expect(plaintext.length).toBeGreaterThan(0);
        expect(tooBig(plaintext.length, v1)).toBe(false);
        if (!v1) expect(result.ciphertext.length).toBeLessThanOrEqual(MAX_V2_CIPHERTEXT);
        expect(result.keyId).toBe(world.reader.status().keyId);
        expect(result.annotations.size).toBe(0);
        const service = elsewhere ? other : world.reader;
        const target = elsewhere ? { ...world, reader: other, wrapper: otherWrapper } : world;
        await expectDecryptOutcome(
          target,
          () =>
            service.decrypt(
              {
                ciphertext: result.ciphertext,
                keyId: result.keyId,
                annotations: result.annotations,
              },
              ctx(api),
            ),
          Buffer.from(plaintext),
        );
        // And the decrypt must actually have succeeded.
        const out = await service.decrypt(
          { ciphertext: result.ciphertext, keyId: result.keyId, annotations: result.annotations },
          ctx(api),
        );
        expect(Buffer.from(out).equals(Buffer.from(plaintext))).toBe(true);
      }),
      2000,
    );
  });
});
