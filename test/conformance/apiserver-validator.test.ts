/**
 * The suite's stand-in for kube-apiserver must itself be right: it has to refuse what
 * kube-apiserver refuses (docs/kms-contract.md §2), or the conformance tests could not fail.
 */
import {
  APISERVER_1_25_1_26,
  APISERVER_1_27_1_28,
  APISERVER_1_29_PLUS,
  ApiserverKmsV1,
  ApiserverKmsV2,
  ApiserverRejection,
  isFullyQualifiedDomainName,
  StatusValidator,
  validateAnnotations,
  validateEncryptedObject,
  validateKeyID,
  type KmsV1LikeClient,
  type KmsV2LikeClient,
  type StatusLike,
} from "../helpers/apiserver-kms.js";

const bytes = (n: number): Uint8Array => new Uint8Array(n);

describe("§2.1 ValidateKeyID: non-empty, at most 1024 bytes", () => {
  it.each([
    ["a 64-char hex key_id", "a".repeat(64)],
    ["exactly 1024 bytes (the check is >)", "k".repeat(1024)],
    ["512 two-byte characters = 1024 bytes", "é".repeat(512)],
  ])("accepts %s", (_name, keyId) => {
    expect(validateKeyID(keyId)).toBeUndefined();
  });

  it.each([
    ["empty", "", "keyID is empty"],
    ["1025 bytes", "k".repeat(1025), "keyID is 1025 bytes, which exceeds the max size of 1024"],
    [
      "513 two-byte characters (1026 bytes, counted as Go len)",
      "é".repeat(513),
      "keyID is 1026 bytes, which exceeds the max size of 1024",
    ],
  ])("rejects %s", (_name, keyId, message) => {
    expect(validateKeyID(keyId)).toBe(message);
  });
});

describe("§2.2 annotation keys: apimachinery IsFullyQualifiedDomainName", () => {
  it.each([
    ["kms.example.com"],
    ["version.azure.akv.io"],
    ["kms.example.com."], // one trailing dot is stripped
    ["a.b"],
    ["1.2"],
    ["x-y.example.com"],
    [`${"a".repeat(63)}.com`],
    [`${"a".repeat(63)}.${"b".repeat(63)}.${"c".repeat(63)}.${"d".repeat(61)}`], // 253
    [`${"a".repeat(63)}.${"b".repeat(63)}.${"c".repeat(63)}.${"d".repeat(61)}.`], // 253 + "."
  ])("accepts %j", (key) => {
    expect(isFullyQualifiedDomainName(key)).toEqual([]);
  });

  it.each([
    ["empty", ""],
    ["a single label", "foo"],
    ["a single label with a trailing dot", "foo."],
    ["uppercase", "Foo.example.com"],
    ["underscore", "a_b.example.com"],
    ["leading hyphen", "-a.example.com"],
    ["label ending in a hyphen", "a-.example.com"],
    ["two trailing dots", "kms.example.com.."],
    ["an empty label", "kms..example.com"],
    ["a leading dot", ".example.com"],
    ["just a dot", "."],
    ["a slash (label-style key)", "example.com/key"],
    ["a space", "kms example.com"],
    ["non-ASCII", "kms.exämple.com"],
    ["a 64-character label", `${"a".repeat(64)}.com`],
    ["254 characters", `${"a".repeat(63)}.${"b".repeat(63)}.${"c".repeat(63)}.${"d".repeat(62)}`],
  ])("rejects %s", (_name, key) => {
    expect(isFullyQualifiedDomainName(key).length).toBe(1);
  });
});

describe("§2.2 validateAnnotations: FQDN keys and Σ(len key + len value) ≤ 32768", () => {
  it("accepts none, empty values, and exactly 32768 bytes in total", () => {
    expect(validateAnnotations({})).toBeUndefined();
    expect(validateAnnotations({ "kms.example.com": bytes(0) })).toBeUndefined();
    const key = "kms.example.com"; // 15 bytes
    expect(validateAnnotations({ [key]: bytes(32768 - 15) })).toBeUndefined();
  });

  it("rejects 32769 bytes in total, summed over all entries", () => {
    expect(validateAnnotations({ "kms.example.com": bytes(32768 - 14) })).toBe(
      "total size of annotations is 32769, which exceeds the max size of 32768",
    );
    expect(
      validateAnnotations({ "a.example.com": bytes(16384), "b.example.com": bytes(16384 - 25) }),
    ).toMatch(/total size of annotations is 32769/);
  });

  it("rejects a bad key among good ones and reports every problem", () => {
    expect(validateAnnotations({ "ok.example.com": bytes(1), foo: bytes(1) })).toMatch(
      /"foo": should be a domain with at least two segments/,
    );
    const both = validateAnnotations({ Foo: bytes(40000) });
    expect(both).toMatch(/Foo/);
    expect(both).toMatch(/total size/);
  });
});

describe("§2.2 ValidateEncryptedObject on the EncryptResponse", () => {
  const good = { keyId: "k", encryptedDEKSource: bytes(1024), annotations: {} };

  it("accepts a 1..1024-byte ciphertext with a valid key_id and annotations", () => {
    expect(validateEncryptedObject(good)).toBeUndefined();
    expect(validateEncryptedObject({ ...good, encryptedDEKSource: bytes(1) })).toBeUndefined();
  });

  it.each([
    ["an empty ciphertext", { encryptedDEKSource: bytes(0) }, /encrypted DEK source is empty/],
    [
      "a 1025-byte ciphertext",
      { encryptedDEKSource: bytes(1025) },
      /encrypted DEK source is 1025 bytes, which exceeds the max size of 1024/,
    ],
    ["an empty key_id", { keyId: "" }, /failed to validate key id: keyID is empty/],
    ["a 1025-byte key_id", { keyId: "k".repeat(1025) }, /keyID is 1025 bytes/],
    ["a non-FQDN annotation", { annotations: { kms: bytes(1) } }, /failed to validate annot/],
  ])("rejects %s", (_name, patch, message) => {
    expect(validateEncryptedObject({ ...good, ...patch })).toMatch(message);
  });
});

describe('§2.1 Status: healthz exactly "ok", allowed version, constant version, valid key_id', () => {
  const ok: StatusLike = { version: "v2", healthz: "ok", keyId: "k" };

  it("1.29+ accepts v2 and v2beta1, each constant over polls", () => {
    for (const version of ["v2", "v2beta1"]) {
      const v = new StatusValidator(APISERVER_1_29_PLUS);
      for (let i = 0; i < 3; i++) expect(v.check({ ...ok, version })).toEqual([]);
      expect(v.firstVersion).toBe(version);
    }
  });

  it.each([
    ["healthz OK (case)", { healthz: "OK" }, "got unexpected healthz status: OK"],
    ["healthz with a space", { healthz: "ok " }, "got unexpected healthz status: ok "],
    ["healthz empty", { healthz: "" }, "got unexpected healthz status: "],
    ["version v2alpha1", { version: "v2alpha1" }, "expected KMSv2 API version v2, got v2alpha1"],
    ["version v1", { version: "v1" }, "expected KMSv2 API version v2, got v1"],
    ["empty key_id", { keyId: "" }, "got invalid KMSv2 KeyID: keyID is empty"],
  ])("1.29+ rejects %s", (_name, patch, message) => {
    expect(new StatusValidator(APISERVER_1_29_PLUS).check({ ...ok, ...patch })).toEqual([message]);
  });

  it("1.29+ rejects a version that changes after the first response (and aggregates errors)", () => {
    const v = new StatusValidator(APISERVER_1_29_PLUS);
    expect(v.check(ok)).toEqual([]);
    expect(v.check({ ...ok, version: "v2beta1", healthz: "no" })).toEqual([
      "got unexpected healthz status: no",
      "KMSv2 API version should not change after the initial status response version v2, got v2beta1",
    ]);
  });

  it("1.27/1.28 accept only v2beta1; 1.25/1.26 only v2alpha1", () => {
    expect(new StatusValidator(APISERVER_1_27_1_28).check({ ...ok, version: "v2beta1" })).toEqual(
      [],
    );
    expect(new StatusValidator(APISERVER_1_27_1_28).check(ok)).toHaveLength(1);
    expect(new StatusValidator(APISERVER_1_25_1_26).check({ ...ok, version: "v2alpha1" })).toEqual(
      [],
    );
    expect(
      new StatusValidator(APISERVER_1_25_1_26).check({ ...ok, version: "v2beta1" }),
    ).toHaveLength(1);
  });
});

/** An in-memory plugin whose answers a test can bend. */
function fakeV2(overrides: {
  status?: (n: number) => StatusLike;
  encrypt?: (plaintext: Uint8Array) => {
    ciphertext: Uint8Array;
    keyId: string;
    annotations: { [key: string]: Uint8Array };
  };
}): KmsV2LikeClient & { encrypts: number } {
  let statuses = 0;
  const client = {
    encrypts: 0,
    status: () =>
      Promise.resolve(
        overrides.status?.(statuses++) ?? { version: "v2", healthz: "ok", keyId: "k1" },
      ),
    encrypt: (req: { plaintext: Uint8Array }) => {
      client.encrypts++;
      return Promise.resolve(
        overrides.encrypt?.(req.plaintext) ?? {
          ciphertext: Buffer.concat([Buffer.from("x"), req.plaintext]),
          keyId: "k1",
          annotations: {},
        },
      );
    },
    decrypt: (req: { ciphertext: Uint8Array }) =>
      Promise.resolve({ plaintext: req.ciphertext.subarray(1) }),
  };
  return client;
}

describe("the simulated kube-apiserver probe (§3.2/§3.3)", () => {
  it("Encrypts once per key_id, with 32 random bytes, and reads its seed back", async () => {
    let keyId = "k1";
    const client = fakeV2({
      status: () => ({ version: "v2", healthz: "ok", keyId }),
      encrypt: (p) => ({
        ciphertext: Buffer.concat([Buffer.from("x"), p]),
        keyId,
        annotations: {},
      }),
    });
    const api = new ApiserverKmsV2(client);
    await api.probe();
    await api.probe();
    expect(client.encrypts).toBe(1);
    expect(api.state?.seed).toHaveLength(32);
    expect((await api.decryptObject(api.state!.stored)).equals(api.state!.seed)).toBe(true);
    keyId = "k2";
    await api.probe();
    expect(client.encrypts).toBe(2);
    expect(api.keyIds).toEqual(["k1", "k2"]);
  });

  it("fails the probe when Encrypt's key_id differs from Status's", async () => {
    const client = fakeV2({
      encrypt: () => ({ ciphertext: bytes(10), keyId: "other", annotations: {} }),
    });
    const api = new ApiserverKmsV2(client);
    await expect(api.probe()).rejects.toThrow(/Encrypt key_id "other" != Status key_id "k1"/);
    expect(api.state).toBeUndefined();
  });

  it("fails the probe on an oversized ciphertext or a bad annotation", async () => {
    for (const bad of [
      { ciphertext: bytes(1025), keyId: "k1", annotations: {} },
      { ciphertext: bytes(10), keyId: "k1", annotations: { Bad: bytes(1) } },
    ]) {
      const api = new ApiserverKmsV2(fakeV2({ encrypt: () => bad }));
      await expect(api.probe()).rejects.toBeInstanceOf(ApiserverRejection);
    }
  });

  it("fails the probe when the version flips, even if everything else is fine", async () => {
    const api = new ApiserverKmsV2(
      fakeV2({
        status: (n) => ({ version: n === 0 ? "v2" : "v2beta1", healthz: "ok", keyId: "k1" }),
      }),
    );
    await api.probe();
    await expect(api.probe()).rejects.toThrow(/should not change/);
  });

  it("refuses to send a stored object it would not have stored", async () => {
    const api = new ApiserverKmsV2(fakeV2({}));
    await expect(
      api.decryptObject({ keyId: "", encryptedDEKSource: bytes(1), annotations: {} }),
    ).rejects.toThrow(/keyID is empty/);
  });
});

describe("the simulated KMS v1 client (§2.4)", () => {
  const v1 = (version: string, cipherSize?: number): KmsV1LikeClient => ({
    version: () => Promise.resolve({ version }),
    encrypt: (r) =>
      Promise.resolve({ cipher: cipherSize === undefined ? r.plain : bytes(cipherSize) }),
    decrypt: (r) => Promise.resolve({ plain: r.cipher }),
  });

  it("checks Version once, then round-trips", async () => {
    const api = new ApiserverKmsV1(v1("v1beta1"));
    await api.healthCheck();
    await api.healthCheck();
    expect(api.versionCalls).toBe(1);
  });

  it("rejects another Version answer and a cipher of 65536 bytes", async () => {
    await expect(new ApiserverKmsV1(v1("v1")).encrypt(bytes(32))).rejects.toThrow(
      /api version v1 is not supported/,
    );
    await expect(new ApiserverKmsV1(v1("v1beta1", 65536)).encrypt(bytes(32))).rejects.toThrow(
      /at most 65535/,
    );
    await expect(new ApiserverKmsV1(v1("v1beta1", 65535)).encrypt(bytes(32))).resolves.toHaveLength(
      65535,
    );
  });
});
