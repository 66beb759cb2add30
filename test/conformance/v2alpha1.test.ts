/**
 * KMS v2alpha1 (`/v2alpha1.KeyManagementService`) conformance, as kube-apiserver 1.25/1.26 used
 * it (docs/kms-contract.md §1.2, §2.1, §3.3): Status must say exactly "v2alpha1", and Encrypt was called on
 * every write with a fresh 32-byte DEK. Same messages as v2, same seeds on the same socket.
 */
import { randomBytes, randomUUID } from "node:crypto";
import { KeyManagementService as V2 } from "../../src/gen/v2/api_pb.js";
import { KeyManagementService as V2alpha1 } from "../../src/gen/v2alpha1/api_pb.js";
import {
  APISERVER_1_25_1_26,
  APISERVER_1_29_PLUS,
  ApiserverKmsV2,
  StatusValidator,
  validateEncryptedObject,
  type EncryptedObject,
} from "../helpers/apiserver-kms.js";
import { callError, createClient, type PromiseClient } from "../helpers/grpc-client.js";
import { startPluginHarness, type PluginHarness } from "../helpers/plugin-harness.js";
import { totalRequests } from "../helpers/emulator-counters.js";

describe("v2alpha1 as kube-apiserver 1.25/1.26 calls it", () => {
  let h: PluginHarness;
  let alpha: PromiseClient<typeof V2alpha1>;
  let v2: PromiseClient<typeof V2>;
  let api: ApiserverKmsV2;

  beforeAll(async () => {
    h = await startPluginHarness();
    alpha = createClient(V2alpha1, h.socketPath);
    v2 = createClient(V2, h.socketPath);
    api = new ApiserverKmsV2(alpha, APISERVER_1_25_1_26);
  });
  afterAll(async () => {
    alpha.close();
    v2.close();
    await h.close();
  });

  it('§2.1 Status: version exactly "v2alpha1", healthz "ok", key_id non-empty — on every poll', async () => {
    const first = await alpha.status({});
    expect(first.version).toBe("v2alpha1");
    expect(first.healthz).toBe("ok");
    expect(first.keyId).not.toBe("");
    const validator = new StatusValidator(APISERVER_1_25_1_26);
    for (let i = 0; i < 10; i++) {
      const status = await api.probe();
      expect(validator.check(status)).toEqual([]);
      expect(status).toEqual(first);
    }
    // And a 1.29+ apiserver would refuse it: the string is per service, not a v2 value.
    expect(new StatusValidator(APISERVER_1_29_PLUS).check(first)).toHaveLength(1);
  });

  it("§3.3 (1.25/1.26) 200 sequential per-write Encrypts of fresh 32-byte DEKs, then all 200 Decrypts", async () => {
    const { keyId } = await alpha.status({});
    const writes: { dek: Buffer; stored: EncryptedObject }[] = [];
    for (let i = 0; i < 200; i++) {
      const dek = randomBytes(32);
      const stored = await api.encryptObject(dek, randomUUID()); // validated like 1.26 did
      expect(stored.keyId).toBe(keyId);
      expect(stored.encryptedDEKSource.length).toBeLessThanOrEqual(1024);
      writes.push({ dek, stored });
    }
    expect(
      new Set(writes.map((w) => Buffer.from(w.stored.encryptedDEKSource).toString("hex"))).size,
    ).toBe(200);
    for (const { dek, stored } of writes) {
      expect((await api.decryptObject(stored)).equals(dek)).toBe(true);
    }
  });

  it("§1.2 ciphertexts from v2 decrypt through v2alpha1 and vice versa (one seed store)", async () => {
    const v2api = new ApiserverKmsV2(v2);
    await v2api.probe();
    const fromV2 = v2api.state!;
    expect((await api.decryptObject(fromV2.stored)).equals(fromV2.seed)).toBe(true);
    const dek = randomBytes(32);
    const fromAlpha = await api.encryptObject(dek);
    expect((await v2api.decryptObject(fromAlpha)).equals(dek)).toBe(true);
    expect((await alpha.status({})).keyId).toBe((await v2.status({})).keyId);
  });

  it("§2.2 the 1024-byte ciphertext limit applies on v2alpha1 too (INVALID_ARGUMENT, never an oversized answer)", async () => {
    for (const size of [2000, 65_535]) {
      const err = await callError(
        alpha.encrypt({ plaintext: randomBytes(size), uid: randomUUID() }),
      );
      expect(err.codeName).toBe("INVALID_ARGUMENT");
    }
    const ok = await alpha.encrypt({ plaintext: randomBytes(100), uid: randomUUID() });
    expect(
      validateEncryptedObject({
        keyId: ok.keyId,
        encryptedDEKSource: ok.ciphertext,
        annotations: ok.annotations,
      }),
    ).toBeUndefined();
  });

  it("§2.2 an empty plaintext → INVALID_ARGUMENT", async () => {
    expect(
      (await callError(alpha.encrypt({ plaintext: new Uint8Array(0), uid: randomUUID() })))
        .codeName,
    ).toBe("INVALID_ARGUMENT");
  });

  it("§8 Status and Encrypt make zero Key Vault requests", async () => {
    const before = totalRequests(h.emu.counters());
    for (let i = 0; i < 50; i++) {
      await api.probe();
      await api.encryptObject(randomBytes(32));
    }
    expect(totalRequests(h.emu.counters())).toBe(before);
  });

  it("§3.5 after a restart, per-write ciphertexts decrypt on the new instance, also as parallel duplicates", async () => {
    const dek = randomBytes(32);
    const stored = await api.encryptObject(dek);
    await h.restart();
    const all = await Promise.all(Array.from({ length: 20 }, () => api.decryptObject(stored)));
    for (const p of all) expect(p.equals(dek)).toBe(true);
    expect((await api.probe()).version).toBe("v2alpha1");
  });
});
