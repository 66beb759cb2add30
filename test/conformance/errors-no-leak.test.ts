/**
 * Errors never leak key material (docs/architecture.md, "Errors → gRPC status"; kube-apiserver
 * logs every plugin error text, docs/kms-contract.md §2.1–§2.3): for tampered ciphertexts on every
 * service, the gRPC status message contains no encoding of the plaintext, of the seed that sealed
 * it, or of the derived data key. The seed is recovered independently (Key Vault unwrapKey
 * through the Azure SDK) and proven right by opening the envelope with it, so the check cannot
 * pass vacuously.
 */
import { createDecipheriv, randomBytes, randomUUID } from "node:crypto";
import { KeyManagementService as V1 } from "../../src/gen/v1beta1/api_pb.js";
import { KeyManagementService as V2 } from "../../src/gen/v2/api_pb.js";
import { KeyManagementService as V2alpha1 } from "../../src/gen/v2alpha1/api_pb.js";
import { encodeEnvelope, parseEnvelope, type Envelope } from "../../src/kms/index.js";
import { deriveKey } from "../../src/kms/seed.js";
import { emulatorClients } from "../helpers/emulator-clients.js";
import { callError, createClient, type KmsClientError } from "../helpers/grpc-client.js";
import { startPluginHarness, type PluginHarness } from "../helpers/plugin-harness.js";

/** Every way a secret could show up in a message: hex (any case), base64/base64url at any alignment, byte lists. */
function encodings(secret: Buffer): string[] {
  const out = [secret.toString("hex"), secret.toString("hex").toUpperCase(), secret.join(",")];
  out.push(secret.join(", "), secret.toString("latin1"));
  for (let k = 0; k < 3; k++) {
    const aligned = secret.subarray(k, k + 3 * Math.floor((secret.length - k) / 3));
    out.push(aligned.toString("base64"), aligned.toString("base64url"));
  }
  return out.filter((s) => s.length >= 8);
}

function expectNoLeak(err: KmsClientError, secrets: readonly Buffer[]): void {
  const texts = [err.message, err.details, err.stack ?? ""];
  for (const secret of secrets) {
    for (const needle of encodings(secret)) {
      for (const text of texts) expect(text.includes(needle)).toBe(false);
    }
  }
}

/** Re-encodes an envelope with one part changed; the check value is recomputed, so only the AEAD (or Key Vault) can notice. */
function reencode(env: Envelope, patch: Partial<Parameters<typeof encodeEnvelope>[0]>): Buffer {
  return encodeEnvelope({
    seed: env.seed,
    salt: env.salt,
    nonce: env.nonce,
    ciphertext: env.ciphertext,
    tag: env.tag,
    ...patch,
  });
}

function flipped(bytes: Uint8Array, at: number): Buffer {
  const copy = Buffer.from(bytes);
  copy[at]! ^= 0x01;
  return copy;
}

/** The status codes docs/architecture.md gives bad input (tampering) and unknown key material. */
const REFUSED = / → (INVALID_ARGUMENT|FAILED_PRECONDITION)$/;

interface Sealed {
  plaintext: Buffer;
  ciphertext: Buffer;
  keyId: string;
  secrets: Buffer[];
}

let h: PluginHarness;

beforeAll(async () => {
  h = await startPluginHarness();
});
afterAll(async () => {
  await h.close();
});

/** The seed under `env`, unwrapped independently, and the envelope's data key; checked by opening the envelope. */
async function secretsOf(env: Envelope, plaintext: Buffer): Promise<Buffer[]> {
  const { key } = env.seed;
  const kid = `https://${key.vaultHost}/keys/${key.keyName}/${key.keyVersion}`;
  const { result } = await emulatorClients(h.emu)
    .crypto(kid)
    .unwrapKey("RSA-OAEP-256", env.seed.wrapped);
  const seed = Buffer.from(result);
  const dataKey = deriveKey(seed, env.salt);
  const decipher = createDecipheriv("aes-256-gcm", dataKey, env.nonce);
  decipher.setAAD(env.header);
  decipher.setAuthTag(env.tag);
  const opened = Buffer.concat([decipher.update(env.ciphertext), decipher.final()]);
  expect(opened.equals(plaintext)).toBe(true); // we really hold the seed and the data key
  return [plaintext, seed, dataKey];
}

function tamperings(s: Sealed): [string, Buffer][] {
  const env = parseEnvelope(s.ciphertext);
  return [
    [
      "a flipped ciphertext byte (check value now wrong)",
      flipped(s.ciphertext, s.ciphertext.length - 25),
    ],
    [
      "a flipped AEAD ciphertext byte, check value fixed",
      reencode(env, { ciphertext: flipped(env.ciphertext, 0) }),
    ],
    ["a flipped GCM tag byte, check value fixed", reencode(env, { tag: flipped(env.tag, 15) })],
    ["a flipped salt byte, check value fixed", reencode(env, { salt: flipped(env.salt, 3) })],
    [
      "a flipped wrapped-seed byte, check value fixed (Key Vault refuses the unwrap)",
      reencode(env, { seed: { ...env.seed, wrapped: flipped(env.seed.wrapped, 7) } }),
    ],
    [
      "random bytes in place of the wrapped seed, check value fixed",
      reencode(env, { seed: { ...env.seed, wrapped: randomBytes(env.seed.wrapped.length) } }),
    ],
    ["truncated by one byte", s.ciphertext.subarray(0, s.ciphertext.length - 1)],
    [
      "ciphertext body swapped for the plaintext itself",
      reencode(env, { ciphertext: s.plaintext }),
    ],
  ];
}

describe.each([["v2"], ["v2alpha1"]] as const)(
  "%s Decrypt of a tampered ciphertext: the error names no secret",
  (service) => {
    const sealed: Sealed[] = [];
    const desc = service === "v2" ? V2 : V2alpha1;

    beforeAll(async () => {
      const client = createClient(desc, h.socketPath);
      for (const size of [32, 100]) {
        const plaintext = randomBytes(size);
        const res = await client.encrypt({ plaintext, uid: randomUUID() });
        const ciphertext = Buffer.from(res.ciphertext);
        const secrets = await secretsOf(parseEnvelope(ciphertext), plaintext);
        sealed.push({ plaintext, ciphertext, keyId: res.keyId, secrets });
      }
      client.close();
    });

    it("for every tampering, on the live seed and on a cold (restarted) plugin", async () => {
      for (const phase of ["live seed", "after restart"]) {
        if (phase === "after restart") await h.restart();
        const client = createClient(desc, h.socketPath, { timeoutMs: 10_000 });
        for (const s of sealed) {
          for (const [name, bad] of [
            ...tamperings(s),
            ["the right ciphertext with a wrong key_id", s.ciphertext] as [string, Buffer],
          ]) {
            const keyId = name.includes("wrong key_id") ? "f".repeat(64) : s.keyId;
            const err = await callError(
              client.decrypt({ ciphertext: bad, keyId, annotations: {}, uid: randomUUID() }),
            );
            expect(`${name} → ${err.codeName}`).toMatch(REFUSED);
            expectNoLeak(err, s.secrets);
          }
          // The untampered one still opens.
          const ok = await client.decrypt({
            ciphertext: s.ciphertext,
            keyId: s.keyId,
            annotations: {},
            uid: randomUUID(),
          });
          expect(Buffer.from(ok.plaintext).equals(s.plaintext)).toBe(true);
        }
        client.close();
      }
    });
  },
);

describe("v1beta1 Decrypt of a tampered cipher: the error names no secret", () => {
  it("for every tampering", async () => {
    const client = createClient(V1, h.socketPath, { timeoutMs: 10_000 });
    const plaintext = randomBytes(32);
    const { cipher } = await client.encrypt({ version: "v1beta1", plain: plaintext });
    const ciphertext = Buffer.from(cipher);
    const s: Sealed = {
      plaintext,
      ciphertext,
      keyId: "",
      secrets: await secretsOf(parseEnvelope(ciphertext), plaintext),
    };
    for (const [name, bad] of tamperings(s)) {
      const err = await callError(client.decrypt({ version: "v1beta1", cipher: bad }));
      expect(`${name} → ${err.codeName}`).toMatch(REFUSED);
      expectNoLeak(err, s.secrets);
    }
    client.close();
  });
});

describe("the leak check itself", () => {
  it("would catch a message quoting a secret in hex or base64 at any offset", () => {
    const secret = randomBytes(32);
    const fake = (text: string) =>
      ({ message: text, details: text, stack: "" }) as unknown as KmsClientError;
    for (const text of [
      `bad seed ${secret.toString("hex")}`,
      `bad seed ${Buffer.concat([Buffer.from([1]), secret]).toString("base64")}`,
      `bad seed ${Buffer.concat([Buffer.from([1, 2]), secret]).toString("base64url")}`,
      `bad seed {"type":"Buffer","data":[${secret.join(",")}]}`,
    ]) {
      expect(() => {
        expectNoLeak(fake(text), [secret]);
      }).toThrow();
    }
    expectNoLeak(fake("ciphertext failed authentication"), [secret]);
  });
});
