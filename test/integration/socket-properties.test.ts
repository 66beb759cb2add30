/**
 * Hostile Decrypt / Encrypt input over the real socket (real plugin, real Key Vault wrapper,
 * emulator). A second emulator stands for a host outside the allowlist: envelopes that name it
 * must never make the plugin call it. Invariants: success only with exactly what was encrypted;
 * every failure has a status from the architecture's table and never INTERNAL.
 */
import { randomBytes } from "node:crypto";
import fc from "fast-check";
import { createEmulator, type Emulator } from "@keyvault-kms/emulator";
import { KeyManagementService as V2 } from "../../src/gen/v2/api_pb.js";
import { encodeEnvelope, finishEnvelope } from "../../src/kms/envelope.js";
import { keyIdOf } from "../../src/kms/key-id.js";
import { createClient, KmsClientError, type PromiseClient } from "../helpers/grpc-client.js";
import { startPluginHarness, type PluginHarness } from "../helpers/plugin-harness.js";
import { checkProperty } from "../helpers/property-runs.js";
import { totalRequests } from "../helpers/emulator-counters.js";

const TABLE = [
  "INVALID_ARGUMENT",
  "FAILED_PRECONDITION",
  "UNAUTHENTICATED",
  "PERMISSION_DENIED",
  "UNAVAILABLE",
  "DEADLINE_EXCEEDED",
  "CANCELLED",
];

interface Sample {
  plaintext: Buffer;
  ciphertext: Buffer;
  keyId: string;
}

describe("socket: hostile input properties", () => {
  let h: PluginHarness;
  let outside: Emulator;
  let client: PromiseClient<typeof V2>;
  const samples: Sample[] = [];

  beforeAll(async () => {
    h = await startPluginHarness();
    outside = await createEmulator({ keys: [{ name: "kek", kty: "RSA" }] });
    outside.resetCounters();
    client = createClient(V2, h.socketPath, { timeoutMs: 10_000 });
    for (const size of [1, 32, 200, 500]) {
      const plaintext = randomBytes(size);
      const r = await client.encrypt({ plaintext, uid: "p" });
      samples.push({ plaintext, ciphertext: Buffer.from(r.ciphertext), keyId: r.keyId });
    }
  });

  afterAll(async () => {
    client.close();
    await outside.close();
    await h.close();
  });

  afterEach(() => {
    // Never a single request (not even a token or a challenge) to the host outside the allowlist.
    const calls = totalRequests(outside.counters());
    expect(calls).toBe(0);
  });

  async function expectOutcome(
    call: Promise<{ plaintext: Uint8Array }>,
    expected: Buffer | undefined,
  ): Promise<void> {
    let r: { plaintext: Uint8Array } | undefined;
    try {
      r = await call;
    } catch (error) {
      if (!(error instanceof KmsClientError)) throw error;
      if (!TABLE.includes(error.codeName)) {
        throw new Error(`status ${error.codeName} (${error.details}) is not allowed for input`, {
          cause: error,
        });
      }
      return;
    }
    if (expected === undefined) throw new Error("Decrypt returned a plaintext for garbage");
    if (!Buffer.from(r.plaintext).equals(expected)) throw new Error("wrong plaintext");
  }

  const annotations = fc.oneof(
    fc.constant({}),
    fc.dictionary(fc.string({ maxLength: 80 }), fc.uint8Array({ maxLength: 64 }), {
      maxKeys: 5,
    }),
    fc.constant({
      "version.azure.akv.io": Buffer.from("1"),
      "algorithm.azure.akv.io": Buffer.from("RSA-OAEP-256"),
    }),
  );

  it("random bytes and legacy-looking text, random key_ids and annotations", async () => {
    const ciphertext = fc.oneof(
      fc.uint8Array({ maxLength: 1100 }),
      fc
        .constantFrom(256, 384, 512)
        .map((n) => Buffer.from(randomBytes(n).toString("base64url"), "latin1")),
    );
    const keyId = fc.oneof(fc.constant(samples[0]!.keyId), fc.string({ maxLength: 80 }));
    await checkProperty(
      "socket/random",
      fc.asyncProperty(ciphertext, keyId, annotations, async (c, id, a) => {
        await expectOutcome(
          client.decrypt({ ciphertext: c, keyId: id, annotations: a, uid: "p" }),
          undefined,
        );
      }),
      150,
    );
  });

  it("mutated envelopes (check value re-sealed half the time)", async () => {
    await checkProperty(
      "socket/mutated",
      fc.asyncProperty(
        fc.nat({ max: samples.length - 1 }),
        fc.nat(),
        fc.nat({ max: 7 }),
        fc.boolean(),
        async (index, at, bit, reseal) => {
          const s = samples[index]!;
          let c: Buffer = Buffer.from(s.ciphertext);
          c[at % c.length]! ^= 1 << bit;
          if (reseal) c = finishEnvelope(c);
          await expectOutcome(
            client.decrypt({ ciphertext: c, keyId: s.keyId, uid: "p" }),
            c.equals(s.ciphertext) ? s.plaintext : undefined,
          );
        },
      ),
      120,
    );
  });

  it("valid envelopes with annotations, and plaintexts of every size round-trip", async () => {
    await checkProperty(
      "socket/encrypt-roundtrip",
      fc.asyncProperty(fc.uint8Array({ maxLength: 700 }), annotations, async (plaintext, a) => {
        let r;
        try {
          r = await client.encrypt({ plaintext, uid: "p" });
        } catch (error) {
          expect(error).toBeInstanceOf(KmsClientError);
          expect((error as KmsClientError).codeName).toBe("INVALID_ARGUMENT");
          return;
        }
        await expectOutcome(
          client.decrypt({ ciphertext: r.ciphertext, keyId: r.keyId, annotations: a, uid: "p" }),
          Buffer.from(plaintext),
        );
        const out = await client.decrypt({ ciphertext: r.ciphertext, keyId: r.keyId, uid: "p" });
        expect(Buffer.from(out.plaintext).equals(Buffer.from(plaintext))).toBe(true);
      }),
      100,
    );
  });

  it("envelopes naming a host outside the allowlist (a second emulator) never reach it", async () => {
    const outsideHost = new URL(outside.vaultUrl).host;
    await checkProperty(
      "socket/outside-host",
      fc.asyncProperty(
        fc.constantFrom(outsideHost, outsideHost.replace("127.0.0.1", "localhost")),
        fc.stringMatching(/^[0-9a-f]{32}$/),
        fc.boolean(),
        async (vaultHost, keyVersion, ownKeyId) => {
          const key = { vaultHost, keyName: "kek", keyVersion };
          const c = encodeEnvelope({
            seed: { key, algorithm: "RSA-OAEP-256", wrapped: randomBytes(256) },
            salt: randomBytes(32),
            nonce: randomBytes(12),
            ciphertext: randomBytes(32),
            tag: randomBytes(16),
          });
          await expectOutcome(
            client.decrypt({
              ciphertext: c,
              keyId: ownKeyId ? keyIdOf(key) : samples[0]!.keyId,
              uid: "p",
            }),
            undefined,
          );
        },
      ),
      50,
    );
  });
});
