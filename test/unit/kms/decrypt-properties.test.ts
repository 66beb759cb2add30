import { randomBytes } from "node:crypto";
import fc from "fast-check";
import { finishEnvelope } from "../../../src/kms/envelope.js";
import { KmsError } from "../../../src/kms/errors.js";
import type { KmsApi } from "../../../src/kms/service-types.js";
import { FakeKeyWrapper, sharedKeyPair } from "../../helpers/fake-key-wrapper.js";
import { ctx, startedServiceFor } from "./fixtures.js";

describe("Decrypt properties", () => {
  const api = fc.constantFrom<KmsApi>("v2", "v2alpha1", "v1beta1");
  const annotations = fc
    .array(fc.tuple(fc.oneof(fc.string(), fc.domain()), fc.uint8Array({ maxLength: 64 })), {
      maxLength: 3,
    })
    .map((entries) => new Map(entries));

  async function setup(): Promise<{
    service: Awaited<ReturnType<typeof startedServiceFor>>;
    restarted: FakeKeyWrapper;
    good: Buffer;
    keyId: string;
  }> {
    const fake = new FakeKeyWrapper({ keyPair: sharedKeyPair() });
    const writer = await startedServiceFor(fake);
    const { ciphertext, keyId } = writer.encrypt(randomBytes(32), ctx());
    const restarted = fake.withSameKeys();
    return {
      service: await startedServiceFor(restarted),
      restarted,
      good: Buffer.from(ciphertext),
      keyId,
    };
  }

  async function expectKmsRejection(promise: Promise<Uint8Array>): Promise<KmsError> {
    let outcome: unknown = "resolved";
    try {
      await promise;
    } catch (error) {
      outcome = error;
    }
    expect(outcome).toBeInstanceOf(KmsError);
    return outcome as KmsError;
  }

  it("never returns a plaintext nor throws a non-KmsError for arbitrary input", async () => {
    const { service, restarted, keyId } = await setup();
    await fc.assert(
      fc.asyncProperty(
        fc.uint8Array({ maxLength: 1200 }),
        fc.oneof(fc.constant(keyId), fc.string()),
        annotations,
        api,
        async (ciphertext, id, ann, which) => {
          await expectKmsRejection(
            service.decrypt({ ciphertext, keyId: id, annotations: ann }, ctx(which)),
          );
        },
      ),
      { numRuns: 1000 },
    );
    expect(restarted.calls.unwrap).toBe(0);
  });

  it("never returns a plaintext for edited envelopes that still pass the check value", async () => {
    const { service, keyId, good } = await setup();
    const edit = fc.record({
      at: fc.nat({ max: good.length - 5 }),
      deleteCount: fc.nat({ max: 4 }),
      insert: fc.uint8Array({ minLength: 1, maxLength: 4 }),
    });
    await fc.assert(
      fc.asyncProperty(edit, api, async (e, which) => {
        const body = good.subarray(0, -4);
        const edited = Buffer.concat([
          body.subarray(0, e.at),
          e.insert,
          body.subarray(e.at + e.deleteCount),
        ]);
        if (edited.equals(body)) return;
        const candidate = finishEnvelope(Buffer.concat([edited, Buffer.alloc(4)]));
        const error = await expectKmsRejection(
          service.decrypt({ ciphertext: candidate, keyId, annotations: new Map() }, ctx(which)),
        );
        // Edits that keep the structure reach Key Vault or AES-GCM; none may succeed.
        expect(["INVALID_ARGUMENT", "FAILED_PRECONDITION"]).toContain(error.code);
      }),
      { numRuns: 500 },
    );
  });
});
