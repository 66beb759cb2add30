/**
 * The whole plugin (real gRPC server on a unix socket, real Key Vault wrapper over the Azure SDK)
 * against the emulator over HTTPS; emulator counters prove which calls reach Key Vault.
 */
import { randomBytes, randomUUID } from "node:crypto";
import { KeyManagementService as V2 } from "../../src/gen/v2/api_pb.js";
import { KeyManagementService as V1 } from "../../src/gen/v1beta1/api_pb.js";
import { createEmulator, type Emulator } from "@keyvault-kms/emulator";
import { encodeEnvelope, keyIdOf, parseEnvelope } from "../../src/kms/index.js";
import { callError, createClient } from "../helpers/grpc-client.js";
import { startPluginHarness, type PluginHarness } from "../helpers/plugin-harness.js";
import { totalRequests } from "../helpers/emulator-counters.js";

const emptyMap = {};

const keyVaultRequests = totalRequests;

describe("plugin against the Key Vault emulator", () => {
  let h: PluginHarness;
  beforeAll(async () => {
    h = await startPluginHarness();
  });
  afterAll(async () => {
    await h.close();
  });

  it("answers Status and Encrypt without a single Key Vault request", async () => {
    const client = createClient(V2, h.socketPath);
    h.emu.resetCounters();
    const status = await client.status({});
    for (let i = 0; i < 50; i++) {
      const res = await client.encrypt({ plaintext: randomBytes(32), uid: randomUUID() });
      expect(res.keyId).toBe(status.keyId);
      await client.status({});
    }
    expect(keyVaultRequests(h.emu.counters())).toBe(0);
    client.close();
  });

  it("after a restart, 1000 concurrent Decrypts sharing one seed make exactly one unwrapkey", async () => {
    let client = createClient(V2, h.socketPath);
    const plaintexts = Array.from({ length: 1000 }, () => randomBytes(32));
    const sealed = [];
    for (const plaintext of plaintexts) {
      sealed.push(await client.encrypt({ plaintext, uid: randomUUID() }));
    }
    client.close();
    await h.restart();
    h.emu.resetCounters();
    client = createClient(V2, h.socketPath, { timeoutMs: 20_000 });
    const opened = await Promise.all(
      sealed.map((s) =>
        client.decrypt({
          ciphertext: s.ciphertext,
          keyId: s.keyId,
          annotations: s.annotations,
          uid: randomUUID(),
        }),
      ),
    );
    opened.forEach((o, i) => {
      expect(Buffer.from(o.plaintext).equals(plaintexts[i]!)).toBe(true);
    });
    const counters = h.emu.counters();
    expect(counters["unwrapkey"]).toBe(1);
    // Nothing else either: the new plugin's start-up (list + get) happened before the reset.
    expect(
      keyVaultRequests(counters) -
        (counters["challenge"] ?? 0) -
        (counters["token"] ?? 0) -
        (counters["openid"] ?? 0),
    ).toBe(1);
    client.close();
  });

  describe("bad input gets the architecture's status code and the plugin keeps serving", () => {
    let good: { ciphertext: Uint8Array; keyId: string };
    beforeAll(async () => {
      const client = createClient(V2, h.socketPath);
      good = await client.encrypt({ plaintext: randomBytes(32), uid: randomUUID() });
      client.close();
    });

    const cases: [string, string, () => { ciphertext: Uint8Array; keyId?: string }][] = [
      ["empty ciphertext", "INVALID_ARGUMENT", () => ({ ciphertext: new Uint8Array() })],
      ["oversized ciphertext", "INVALID_ARGUMENT", () => ({ ciphertext: randomBytes(1025) })],
      ["random bytes", "INVALID_ARGUMENT", () => ({ ciphertext: randomBytes(600) })],
      ["truncated", "INVALID_ARGUMENT", () => ({ ciphertext: good.ciphertext.subarray(0, 200) })],
      [
        "tampered",
        "INVALID_ARGUMENT",
        () => {
          const c = Buffer.from(good.ciphertext);
          c[c.length - 30]! ^= 0x40;
          return { ciphertext: c };
        },
      ],
      [
        "unknown envelope version",
        "INVALID_ARGUMENT",
        () => {
          const c = Buffer.from(good.ciphertext);
          c[0] = 0x7f;
          return { ciphertext: c };
        },
      ],
      [
        "wrong key_id",
        "INVALID_ARGUMENT",
        () => ({ ciphertext: good.ciphertext, keyId: "0".repeat(64) }),
      ],
    ];

    it.each(cases)("%s → %s with no Key Vault request", async (_name, code, make) => {
      const client = createClient(V2, h.socketPath);
      const input = make();
      h.emu.resetCounters();
      const err = await callError(
        client.decrypt({
          ciphertext: input.ciphertext,
          keyId: input.keyId ?? good.keyId,
          annotations: emptyMap,
          uid: randomUUID(),
        }),
      );
      expect(err.codeName).toBe(code);
      expect(keyVaultRequests(h.emu.counters())).toBe(0);
      const again = await client.decrypt({
        ciphertext: good.ciphertext,
        keyId: good.keyId,
        annotations: emptyMap,
        uid: randomUUID(),
      });
      expect(again.plaintext.length).toBe(32);
      client.close();
    });

    it("never contacts a vault or key that is not allowlisted, even a live one", async () => {
      const other: Emulator = await createEmulator({ keys: [{ name: "kek", kty: "RSA" }] });
      try {
        const envelope = parseEnvelope(good.ciphertext);
        const otherHost = new URL(other.vaultUrl).host;
        const client = createClient(V2, h.socketPath);
        for (const key of [
          { ...envelope.seed.key, vaultHost: otherHost },
          { ...envelope.seed.key, keyName: "another-key" },
        ]) {
          const crafted = encodeEnvelope({
            seed: { ...envelope.seed, key },
            salt: envelope.salt,
            nonce: envelope.nonce,
            ciphertext: envelope.ciphertext,
            tag: envelope.tag,
          });
          h.emu.resetCounters();
          const err = await callError(
            client.decrypt({
              ciphertext: crafted,
              keyId: keyIdOf(key),
              annotations: {},
              uid: randomUUID(),
            }),
          );
          expect(err.codeName).toBe("FAILED_PRECONDITION");
          expect(keyVaultRequests(h.emu.counters())).toBe(0);
        }
        expect(keyVaultRequests(other.counters())).toBe(0);
        client.close();
      } finally {
        await other.close();
      }
    });
  });

  it("serves KMS v1 (v1beta1) from the same seed, with no Key Vault request", async () => {
    const client = createClient(V1, h.socketPath);
    h.emu.resetCounters();
    expect((await client.version({ version: "v1beta1" })).version).toBe("v1beta1");
    const plain = Buffer.from("ping");
    const { cipher } = await client.encrypt({ version: "v1beta1", plain });
    const { plain: back } = await client.decrypt({ version: "v1beta1", cipher });
    expect(Buffer.from(back).equals(plain)).toBe(true);
    expect(keyVaultRequests(h.emu.counters())).toBe(0);
    client.close();
  });
});

describe("plugin with a Managed HSM oct-HSM key (A256KW)", () => {
  it("wraps remotely once at start and round-trips", async () => {
    const h = await startPluginHarness({ key: { name: "hsm-kek", kty: "oct-HSM", size: 256 } });
    try {
      const client = createClient(V2, h.socketPath);
      const plaintext = randomBytes(32);
      const sealed = await client.encrypt({ plaintext, uid: randomUUID() });
      expect(sealed.ciphertext.length).toBeLessThanOrEqual(1024);
      await h.restart();
      h.emu.resetCounters();
      const client2 = createClient(V2, h.socketPath);
      const { plaintext: back } = await client2.decrypt({
        ciphertext: sealed.ciphertext,
        keyId: sealed.keyId,
        annotations: sealed.annotations,
        uid: randomUUID(),
      });
      expect(Buffer.from(back).equals(plaintext)).toBe(true);
      expect(h.emu.counters()["unwrapkey"]).toBe(1);
      client.close();
      client2.close();
    } finally {
      await h.close();
    }
  });
});

describe("start-up while Key Vault is unreachable", () => {
  it("serves the socket, reports not ready, and becomes ready by itself", async () => {
    const h = await startPluginHarness({
      beforeStart: (emu) => {
        emu.addFault({ operation: "list", kind: "503", count: 4 });
      },
      waitReady: false,
    });
    try {
      const client = createClient(V2, h.socketPath);
      const early = await client.status({});
      expect(early.healthz).not.toBe("ok");
      expect(early.keyId).toBe("");
      const err = await callError(
        client.encrypt({ plaintext: randomBytes(32), uid: randomUUID() }),
      );
      expect(err.codeName).toBe("UNAVAILABLE");
      await h.plugin.ready;
      const later = await client.status({});
      expect(later.healthz).toBe("ok");
      expect(later.keyId).toMatch(/^[0-9a-f]{64}$/);
      client.close();
    } finally {
      await h.close();
    }
  });
});
