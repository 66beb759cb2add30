/**
 * KMS v2 (`/v2.KeyManagementService`) conformance: the real plugin (grpc-js server on a unix
 * socket, domain, Key Vault wrapper over the Azure SDK, HTTPS to the emulator) driven and judged
 * the way kube-apiserver drives and judges it (docs/kms-contract.md §2, §3, §8).
 */
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { randomBytes, randomUUID } from "node:crypto";
import {
  DecryptRequestSchema,
  DecryptResponseSchema,
  EncryptResponseSchema,
  KeyManagementService as V2,
} from "../../src/gen/v2/api_pb.js";
import { KeyManagementService as V2alpha1 } from "../../src/gen/v2alpha1/api_pb.js";
import { encodeEnvelope, parseEnvelope } from "../../src/kms/index.js";
import {
  APISERVER_1_27_1_28,
  APISERVER_1_29_PLUS,
  ApiserverKmsV2,
  ApiserverRejection,
  ENCRYPTED_DEK_SOURCE_MAX_SIZE,
  UUID_V4,
  validateAnnotations,
  validateEncryptedObject,
  type EncryptedObject,
} from "../helpers/apiserver-kms.js";
import { callError, callRaw, createClient, type PromiseClient } from "../helpers/grpc-client.js";
import { startPluginHarness, type PluginHarness } from "../helpers/plugin-harness.js";
import { totalRequests } from "../helpers/emulator-counters.js";

type V2Client = PromiseClient<typeof V2>;

/** Protobuf field 2 (uid) present on the wire with an empty value: tag 0x12, length 0. */
const EXPLICIT_EMPTY_UID = Buffer.from([0x12, 0x00]);

/**
 * Bisects the plaintext size at which v2 Encrypt starts refusing (INVALID_ARGUMENT): returns the
 * largest accepted size with its ciphertext length and the smallest refused size.
 */
async function plaintextLimit(client: V2Client): Promise<{
  largest: number;
  largestCiphertext: number;
  smallestRejected: number;
}> {
  let lo = 1;
  let hi = 65_535;
  let largestCiphertext = (await client.encrypt({ plaintext: randomBytes(lo) })).ciphertext.length;
  expect((await callError(client.encrypt({ plaintext: randomBytes(hi) }))).codeName).toBe(
    "INVALID_ARGUMENT",
  );
  while (hi - lo > 1) {
    const mid = Math.floor((lo + hi) / 2);
    try {
      const res = await client.encrypt({ plaintext: randomBytes(mid), uid: randomUUID() });
      lo = mid;
      largestCiphertext = res.ciphertext.length;
    } catch (error) {
      expect((error as { codeName?: string }).codeName).toBe("INVALID_ARGUMENT");
      hi = mid;
    }
  }
  return { largest: lo, largestCiphertext, smallestRejected: hi };
}

function asStored(res: {
  ciphertext: Uint8Array;
  keyId: string;
  annotations: { [key: string]: Uint8Array };
}): EncryptedObject {
  return { keyId: res.keyId, encryptedDEKSource: res.ciphertext, annotations: res.annotations };
}

describe("v2 as kube-apiserver 1.29+ calls it (default flags, RSA-2048)", () => {
  let h: PluginHarness;
  let client: V2Client;
  let api: ApiserverKmsV2;

  beforeAll(async () => {
    h = await startPluginHarness();
    client = createClient(V2, h.socketPath, { timeoutMs: 3_000 }); // EncryptionConfiguration default
    api = new ApiserverKmsV2(client, APISERVER_1_29_PLUS);
  });
  afterAll(async () => {
    client.close();
    await h.close();
  });

  it("§3.2 probe: Status, then Encrypt(32 random bytes, UUIDv4 uid) passes every §2.1/§2.2 check", async () => {
    const status = await api.probe();
    expect(status).toEqual(expect.objectContaining({ healthz: "ok", version: "v2" }));
    expect(api.encryptCalls).toBe(1);
    const state = api.state!;
    expect(state.uid).toMatch(UUID_V4);
    expect(state.seed).toHaveLength(32);
    expect(state.keyId).toBe(status.keyId);
    expect(state.stored.keyId).toBe(status.keyId);
    expect(validateEncryptedObject(state.stored)).toBeUndefined();
    expect(state.stored.encryptedDEKSource.length).toBeGreaterThan(0);
    expect(state.stored.encryptedDEKSource.length).toBeLessThanOrEqual(1024);
  });

  it("§2.3 Decrypt with {ciphertext, key_id, annotations} exactly as stored and a fresh uid → byte-identical seed", async () => {
    if (api.state === undefined) await api.probe();
    const state = api.state!;
    const plaintext = await api.decryptObject(state.stored);
    expect(plaintext.equals(state.seed)).toBe(true);
  });

  it('§1.2 Status.version defaults to "v2"', async () => {
    expect((await client.status({})).version).toBe("v2");
  });

  it("§3.2 repeated Status polls are stable: version and key_id constant, no re-Encrypt needed", async () => {
    await api.probe();
    const first = await client.status({});
    for (let i = 0; i < 30; i++) {
      const status = await api.probe(); // includes the 1.29+ "version never changes" check
      expect(status).toEqual(first);
    }
    expect(api.encryptCalls).toBe(1);
    expect(api.keyIds).toEqual([first.keyId]);
  });

  it("§2.2 every Encrypt returns the key_id Status reports (KEP-3299)", async () => {
    const { keyId } = await client.status({});
    for (let i = 0; i < 20; i++) {
      const res = await client.encrypt({ plaintext: randomBytes(32), uid: randomUUID() });
      expect(res.keyId).toBe(keyId);
      expect(validateEncryptedObject(asStored(res))).toBeUndefined();
    }
  });

  it.each([1, 16, 24, 32, 64, 100])(
    "§2.2 a %i-byte plaintext round-trips and its ciphertext is 1..1024 bytes",
    async (size) => {
      const plaintext = randomBytes(size);
      const stored = await api.encryptObject(plaintext); // throws if kube-apiserver would refuse it
      expect(stored.encryptedDEKSource.length).toBeLessThanOrEqual(ENCRYPTED_DEK_SOURCE_MAX_SIZE);
      expect((await api.decryptObject(stored)).equals(plaintext)).toBe(true);
    },
  );

  it("§2.2 the smallest plaintext whose envelope would exceed 1024 bytes → INVALID_ARGUMENT, and beyond", async () => {
    const limit = await plaintextLimit(client);
    expect(limit.smallestRejected).toBe(limit.largest + 1);
    expect(limit.largestCiphertext).toBeLessThanOrEqual(1024);
    // Only a plaintext that cannot fit is refused (docs/architecture.md, "The data path"): the
    // largest one fills 1 KiB.
    expect(limit.largestCiphertext).toBe(1024);
    for (const size of [limit.smallestRejected, limit.smallestRejected + 1, 4096, 70_000]) {
      const err = await callError(client.encrypt({ plaintext: randomBytes(size) }));
      expect(err.codeName).toBe("INVALID_ARGUMENT");
      expect(err.details).toMatch(/1024/);
    }
    const largest = randomBytes(limit.largest);
    const stored = await api.encryptObject(largest);
    expect((await api.decryptObject(stored)).equals(largest)).toBe(true);
  });

  it("§2.2 an empty plaintext → INVALID_ARGUMENT", async () => {
    expect((await callError(client.encrypt({ plaintext: new Uint8Array(0) }))).codeName).toBe(
      "INVALID_ARGUMENT",
    );
    expect((await callError(client.encrypt({}))).codeName).toBe("INVALID_ARGUMENT");
  });

  it("§3.3 uid absent, empty, explicitly-present-but-empty, or not a UUID is accepted by Encrypt and Decrypt", async () => {
    const plaintext = randomBytes(32);
    const absent = await client.encrypt({ plaintext });
    const empty = await client.encrypt({ plaintext, uid: "" });
    const odd = await client.encrypt({ plaintext, uid: "not-a-uuid ✓ ".repeat(50) });
    const rawEncrypt = Buffer.concat([Buffer.from([0x0a, 32]), plaintext, EXPLICIT_EMPTY_UID]);
    const explicit = fromBinary(
      EncryptResponseSchema,
      await callRaw(h.socketPath, "/v2.KeyManagementService/Encrypt", rawEncrypt),
    );
    for (const res of [absent, empty, odd, explicit]) {
      expect(validateEncryptedObject(asStored(res))).toBeUndefined();
      const stored = asStored(res);
      const req = {
        ciphertext: stored.encryptedDEKSource,
        keyId: stored.keyId,
        annotations: stored.annotations,
      };
      for (const out of [
        await client.decrypt(req),
        await client.decrypt({ ...req, uid: "" }),
        fromBinary(
          DecryptResponseSchema,
          await callRaw(
            h.socketPath,
            "/v2.KeyManagementService/Decrypt",
            Buffer.concat([
              toBinary(DecryptRequestSchema, create(DecryptRequestSchema, req)),
              EXPLICIT_EMPTY_UID,
            ]),
          ),
        ),
      ]) {
        expect(Buffer.from(out.plaintext).equals(plaintext)).toBe(true);
      }
    }
    expect((await client.status({})).healthz).toBe("ok");
  });

  it("§3.5 parallel duplicate Decrypts of one object (kube-apiserver has no single-flight) all succeed", async () => {
    const seed = randomBytes(32);
    const stored = await api.encryptObject(seed);
    const all = await Promise.all(Array.from({ length: 50 }, () => api.decryptObject(stored)));
    for (const p of all) expect(p.equals(seed)).toBe(true);
  });

  describe("§2.2 Decrypt with annotations kube-apiserver could never have stored → INVALID_ARGUMENT", () => {
    const cases: [string, { [key: string]: Uint8Array }][] = [
      ["a single-label key", { foo: Buffer.from("1") }],
      ["an uppercase key", { "Foo.example.com": Buffer.from("1") }],
      ["an underscore key", { "a_b.example.com": Buffer.from("1") }],
      ["an empty key", { "": Buffer.from("1") }],
      ["a 64-character label", { [`${"a".repeat(64)}.example.com`]: Buffer.from("1") }],
      ["a 254-character key", { [`${"a.".repeat(126)}bc`]: Buffer.from("1") }],
      ["32769 bytes in total", { "kms.example.com": Buffer.alloc(32769 - 15) }],
    ];

    it.each(cases)("%s", async (_name, annotations) => {
      // The premise: kube-apiserver's own check refuses these, so no etcd object can hold them.
      expect(validateAnnotations(annotations)).toBeDefined();
      const seed = randomBytes(32);
      const stored = await api.encryptObject(seed);
      const err = await callError(
        client.decrypt({
          ciphertext: stored.encryptedDEKSource,
          keyId: stored.keyId,
          annotations,
          uid: randomUUID(),
        }),
      );
      expect(err.codeName).toBe("INVALID_ARGUMENT");
      // …and the plugin keeps serving the real object.
      expect((await api.decryptObject(stored)).equals(seed)).toBe(true);
    });
  });

  it("§8 Status and Encrypt make zero Key Vault requests (all emulator counters unchanged)", async () => {
    const before = totalRequests(h.emu.counters());
    const fresh = new ApiserverKmsV2(client);
    for (let i = 0; i < 20; i++) {
      await fresh.probe();
      await client.status({});
      await client.encrypt({ plaintext: randomBytes(32), uid: randomUUID() });
    }
    expect(fresh.encryptCalls).toBe(1);
    expect(totalRequests(h.emu.counters())).toBe(before);
  });
});

describe("--status-version v2beta1 (kube-apiserver 1.27/1.28)", () => {
  let h: PluginHarness;
  let client: V2Client;
  beforeAll(async () => {
    h = await startPluginHarness({ args: ["--status-version", "v2beta1"] });
    client = createClient(V2, h.socketPath);
  });
  afterAll(async () => {
    client.close();
    await h.close();
  });

  it('§1.2 Status says "v2beta1" and never changes; 1.27/1.28 and 1.29+ probes both pass', async () => {
    const old = new ApiserverKmsV2(client, APISERVER_1_27_1_28);
    const current = new ApiserverKmsV2(client, APISERVER_1_29_PLUS);
    for (let i = 0; i < 10; i++) {
      expect((await old.probe()).version).toBe("v2beta1");
      expect((await current.probe()).version).toBe("v2beta1");
    }
    expect(current.statusValidator.firstVersion).toBe("v2beta1");
    expect((await old.decryptObject(old.state!.stored)).equals(old.state!.seed)).toBe(true);
  });

  it('§1.2 the v2alpha1 service on the same socket still says "v2alpha1"', async () => {
    const alpha = createClient(V2alpha1, h.socketPath);
    expect((await alpha.status({})).version).toBe("v2alpha1");
    alpha.close();
  });

  it('§1.2 a default plugin is refused by a 1.27/1.28 probe (it says "v2"), which is why the flag exists', async () => {
    const other = await startPluginHarness();
    try {
      const c = createClient(V2, other.socketPath);
      await expect(new ApiserverKmsV2(c, APISERVER_1_27_1_28).probe()).rejects.toBeInstanceOf(
        ApiserverRejection,
      );
      c.close();
    } finally {
      await other.close();
    }
  });
});

describe("across plugin restarts and key rotation (a second plugin instance, same Key Vault)", () => {
  let h: PluginHarness;
  let harnessReadyAt: number;
  let api: ApiserverKmsV2;
  let client: V2Client;
  const objects: { stored: EncryptedObject; plaintext: Buffer }[] = [];

  beforeAll(async () => {
    h = await startPluginHarness();
    harnessReadyAt = Date.now();
    client = createClient(V2, h.socketPath, { timeoutMs: 10_000 });
    api = new ApiserverKmsV2(client);
    await api.probe();
    objects.push({ stored: api.state!.stored, plaintext: api.state!.seed });
    for (const size of [1, 32, 100]) {
      const plaintext = randomBytes(size);
      objects.push({ stored: await api.encryptObject(plaintext), plaintext });
    }
  });
  afterAll(async () => {
    client.close();
    await h.close();
  });

  it("§3.3 key_id is stable across a restart when the key version is unchanged (no re-Encrypt)", async () => {
    const before = (await client.status({})).keyId;
    await h.restart();
    const status = await api.probe(); // same apiserver, same version memory, same DEK state
    expect(status.keyId).toBe(before);
    expect(api.encryptCalls).toBe(4); // 1 seed + 3 test objects; the restart caused no Encrypt
  });

  it("§3.5 Decrypt from the second instance returns every object written through the first", async () => {
    for (const { stored, plaintext } of objects) {
      expect((await api.decryptObject(stored)).equals(plaintext)).toBe(true);
    }
  });

  it("§3.5 parallel duplicate Decrypts on a cold instance (nothing cached) all succeed", async () => {
    await h.restart();
    const { stored, plaintext } = objects[0]!;
    const all = await Promise.all(Array.from({ length: 40 }, () => api.decryptObject(stored)));
    for (const p of all) expect(p.equals(plaintext)).toBe(true);
  });

  it("§3.3 after a Key Vault rotation and restart: new key_id never seen before, one re-Encrypt, old objects still decrypt", async () => {
    // Key Vault's createdOn has 1-second resolution: rotate in a later second than the creation.
    const wait = (Math.floor(harnessReadyAt / 1000) + 1) * 1000 - Date.now();
    if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait + 10));
    const oldKeyId = api.state!.keyId;
    await h.emu.rotateKey("kek");
    await h.restart();
    const encryptsBefore = api.encryptCalls;
    const status = await api.probe();
    expect(status.keyId).not.toBe(oldKeyId);
    expect(api.keyIds).toEqual([oldKeyId, status.keyId]);
    expect(api.encryptCalls).toBe(encryptsBefore + 1);
    expect(api.state!.keyId).toBe(status.keyId);
    expect((await api.decryptObject(api.state!.stored)).equals(api.state!.seed)).toBe(true);
    for (const { stored, plaintext } of objects) {
      expect(stored.keyId).toBe(oldKeyId);
      expect((await api.decryptObject(stored)).equals(plaintext)).toBe(true);
    }
    // Stable again on the new key_id.
    for (let i = 0; i < 5; i++) expect((await api.probe()).keyId).toBe(status.keyId);
    expect(api.encryptCalls).toBe(encryptsBefore + 1);
  });
});

describe("RSA-4096 key with the longest legal key name (127 characters)", () => {
  const keyName = `k${"-kms0123456789".repeat(9)}`.padEnd(127, "z");
  let h: PluginHarness;
  let client: V2Client;

  beforeAll(async () => {
    expect(keyName).toHaveLength(127);
    h = await startPluginHarness({ key: { name: keyName, kty: "RSA", size: 4096 } });
    client = createClient(V2, h.socketPath);
  });
  afterAll(async () => {
    client.close();
    await h.close();
  });

  it("§2.2 the seed's ciphertext stays ≤ 1024 bytes, passes the probe and round-trips after a restart", async () => {
    const api = new ApiserverKmsV2(client);
    await api.probe();
    const { stored, seed } = api.state!;
    expect(stored.encryptedDEKSource.length).toBeLessThanOrEqual(1024);
    await h.restart();
    await api.probe();
    expect(api.encryptCalls).toBe(1);
    expect((await api.decryptObject(stored)).equals(seed)).toBe(true);
  });

  it("§2.2 with the longest legal vault host too (253 characters), a 32-byte seed's envelope is ≤ 1024 bytes", async () => {
    // The emulator's host is fixed (127.0.0.1:port), so re-encode this plugin's real envelope
    // with a 253-character host: same key name, version, RSA-4096 wrapped seed and AEAD output.
    const res = await client.encrypt({ plaintext: randomBytes(32), uid: randomUUID() });
    const env = parseEnvelope(res.ciphertext);
    expect(env.seed.wrapped).toHaveLength(512);
    expect(env.seed.key.keyName).toBe(keyName);
    const longestHost = `${"a".repeat(63)}.${"b".repeat(63)}.${"c".repeat(63)}.${"d".repeat(61)}`;
    const reencoded = encodeEnvelope({
      seed: { ...env.seed, key: { ...env.seed.key, vaultHost: longestHost } },
      salt: env.salt,
      nonce: env.nonce,
      ciphertext: env.ciphertext,
      tag: env.tag,
    });
    expect(reencoded.length).toBeLessThanOrEqual(1024);
  });

  it("§2.2 the 1024-byte limit still holds at the boundary", async () => {
    const limit = await plaintextLimit(client);
    expect(limit.largest).toBeGreaterThanOrEqual(32);
    expect(limit.largestCiphertext).toBeLessThanOrEqual(1024);
  });
});

describe("start-up before Key Vault answers (§3.2: the probe fails, then recovers)", () => {
  it("Status fails the probe only on healthz/key_id, with the same version it reports once ready", async () => {
    const h = await startPluginHarness({
      beforeStart: (emu) => {
        emu.addFault({ operation: "list", kind: "503" }); // until cleared
      },
      waitReady: false,
    });
    const client = createClient(V2, h.socketPath);
    try {
      const api = new ApiserverKmsV2(client);
      const early = await api.probe().catch((e: unknown) => e);
      expect(early).toBeInstanceOf(ApiserverRejection);
      const errors = (early as ApiserverRejection).errors.join("\n");
      expect(errors).toMatch(/healthz/);
      expect(errors).not.toMatch(/version/);
      expect(api.encryptCalls).toBe(0); // empty key_id: kube-apiserver does not Encrypt
      expect((await callError(client.encrypt({ plaintext: randomBytes(32) }))).codeName).toBe(
        "UNAVAILABLE",
      );
      h.emu.clearFaults();
      await h.plugin.ready;
      await api.probe(); // a changed version would fail here (1.29+ remembers the first)
      expect(api.statusValidator.firstVersion).toBe("v2");
      expect((await api.decryptObject(api.state!.stored)).equals(api.state!.seed)).toBe(true);
    } finally {
      client.close();
      await h.close();
    }
  });
});
