/** Decrypt of Azure/kubernetes-kms ciphertexts through the domain, over the fake wrapper. */
import { randomBytes } from "node:crypto";
import { KeyAllowlist } from "../../../src/kms/allowlist.js";
import { KmsError } from "../../../src/kms/errors.js";
import { keyIdFromUrl, keyIdOf } from "../../../src/kms/key-id.js";
import type { KeyReference, LegacyAlgorithm } from "../../../src/kms/key-wrapper.js";
import { decodeLegacyCiphertext } from "../../../src/kms/legacy-ciphertext.js";
import { MAX_LEGACY_V1_VERSIONS } from "../../../src/kms/legacy-decrypt.js";
import { FakeKeyWrapper, sharedKeyPair } from "../../helpers/fake-key-wrapper.js";
import {
  ctx,
  expectCode,
  NONE,
  recordingObserver,
  serviceFor,
  startedServiceFor,
} from "./fixtures.js";

function fakeWrapper(
  options: ConstructorParameters<typeof FakeKeyWrapper>[0] = {},
): FakeKeyWrapper {
  return new FakeKeyWrapper({ keyPair: sharedKeyPair(), ...options });
}

/** The Go plugin's ciphertext: the ASCII bytes of Key Vault's base64url `encrypt` result. */
function goCiphertext(
  fake: FakeKeyWrapper,
  key: KeyReference,
  algorithm: LegacyAlgorithm,
  plaintext: Uint8Array,
): Buffer {
  return Buffer.from(fake.legacyEncrypt(key, algorithm, plaintext).toString("base64url"), "ascii");
}

function goAnnotations(extra: [string, string][] = []): Map<string, Uint8Array> {
  const entries: [string, string][] = [
    ["date.azure.akv.io", "Tue, 04 Mar 2025 10:00:00 GMT"],
    ["x-ms-request-id.azure.akv.io", "0b0c6a5e-6d8a-4d36-9b53-7a0e1f1d9a11"],
    ["x-ms-keyvault-region.azure.akv.io", "eastus"],
    ["version.azure.akv.io", "1"],
    ["algorithm.azure.akv.io", "RSA-OAEP-256"],
    ...extra,
  ];
  return new Map(entries.map(([k, v]): [string, Uint8Array] => [k, Buffer.from(v)]));
}

describe("key_id", () => {
  it("matches the Go plugin's test vector", () => {
    const vector = "567d783db3043fe298fe0d9eeedb0029a3815cdd4fe4b059d018c91e6acffe3b";
    expect(keyIdFromUrl("https://example.vault.azure.net/keys/mykey/ABCD")).toBe(vector);
    expect(
      keyIdOf({ vaultHost: "example.vault.azure.net", keyName: "mykey", keyVersion: "ABCD" }),
    ).toBe(vector);
  });
});

describe("decodeLegacyCiphertext", () => {
  const raw = randomBytes(256);
  const text = raw.toString("base64url");

  it("decodes canonical base64url of RSA-2048/3072/4096 results, padded or not", () => {
    expect(decodeLegacyCiphertext(Buffer.from(text))).toEqual(raw);
    expect(
      decodeLegacyCiphertext(
        Buffer.from(raw.toString("base64").replace(/\+/g, "-").replace(/\//g, "_")),
      ),
    ).toEqual(raw);
    for (const size of [384, 512]) {
      const r = randomBytes(size);
      expect(decodeLegacyCiphertext(Buffer.from(r.toString("base64url")))).toEqual(r);
    }
  });

  it("refuses anything else", () => {
    const bad = [
      "Zm9vYmFy", // 6 bytes
      randomBytes(255).toString("base64url"),
      randomBytes(1024).toString("base64url"),
      `${text.slice(0, -1)}=`, // wrong padding
      `${text.slice(0, 100)}+${text.slice(101)}`, // standard base64
      `${text.slice(0, 100)} ${text.slice(101)}`,
      // Non-zero trailing bits: Key Vault never writes it, and it would not re-encode the same.
      `${text.slice(0, -1)}${text.endsWith("B") ? "C" : "B"}`,
    ];
    for (const b of bad) {
      expect(() => decodeLegacyCiphertext(Buffer.from(b))).toThrow(KmsError);
    }
  });
});

describe("v2 ciphertexts of Azure/kubernetes-kms", () => {
  it("decrypt to the exact plaintext with one Key Vault decrypt, counted as a decrypt", async () => {
    const fake = fakeWrapper();
    const { observer, events } = recordingObserver();
    const service = await startedServiceFor(fake, { observer });
    const key = fake.currentKey();
    const dek = randomBytes(32);
    const ciphertext = goCiphertext(fake, key, "RSA-OAEP-256", dek);
    const input = { ciphertext, keyId: keyIdOf(key), annotations: goAnnotations() };
    for (const api of ["v2", "v2alpha1"] as const) {
      const out = await service.decrypt(input, ctx(api));
      expect(Buffer.from(out)).toEqual(dek);
    }
    expect(fake.legacyCalls).toEqual([
      { key, algorithm: "RSA-OAEP-256" },
      { key, algorithm: "RSA-OAEP-256" },
    ]);
    expect(events.filter((e) => e.startsWith("decrypt"))).toHaveLength(2);
    expect(service.status().keyId).toBe(keyIdOf(key));
  });

  it("returns a fresh buffer and wipes the wrapper's", async () => {
    const fake = fakeWrapper();
    const service = await startedServiceFor(fake);
    const key = fake.currentKey();
    const dek = randomBytes(32);
    const input = {
      ciphertext: goCiphertext(fake, key, "RSA-OAEP-256", dek),
      keyId: keyIdOf(key),
      annotations: goAnnotations(),
    };
    const a = await service.decrypt(input, ctx());
    const b = await service.decrypt(input, ctx());
    expect(a).not.toBe(b);
    expect(Buffer.from(a)).toEqual(dek);
    for (const p of fake.legacyPlaintexts) expect(p.every((x) => x === 0)).toBe(true);
  });

  it("finds an older version by key_id after a rotation", async () => {
    const fake = fakeWrapper();
    const old = fake.currentKey();
    const dek = randomBytes(32);
    const ciphertext = goCiphertext(fake, old, "RSA-OAEP-256", dek);
    fake.rotate();
    fake.rotate();
    const service = await startedServiceFor(fake);
    expect(service.status().keyId).not.toBe(keyIdOf(old));
    const out = await service.decrypt(
      { ciphertext, keyId: keyIdOf(old), annotations: goAnnotations() },
      ctx(),
    );
    expect(Buffer.from(out)).toEqual(dek);
    expect(fake.legacyCalls.map((c) => c.key)).toEqual([old]);
  });

  it("matches a key_id hashed with the key name as configured", async () => {
    const fake = fakeWrapper({ keyName: "MyKey" });
    const key = fake.currentKey();
    const dek = randomBytes(32);
    const service = await startedServiceFor(fake, {
      allowlist: new KeyAllowlist({ vaultHost: key.vaultHost, keyName: "mykey" }),
    });
    const out = await service.decrypt(
      {
        ciphertext: goCiphertext(fake, key, "RSA-OAEP-256", dek),
        keyId: keyIdOf({ ...key, keyName: "mykey" }),
        annotations: goAnnotations(),
      },
      ctx(),
    );
    expect(Buffer.from(out)).toEqual(dek);
  });

  it("refuses bad annotations with INVALID_ARGUMENT and no Key Vault call", async () => {
    const fake = fakeWrapper();
    const service = await startedServiceFor(fake);
    const key = fake.currentKey();
    const ciphertext = goCiphertext(fake, key, "RSA-OAEP-256", randomBytes(32));
    const keyId = keyIdOf(key);
    const without = (name: string) => {
      const m = goAnnotations();
      m.delete(name);
      return m;
    };
    const cases: [Map<string, Uint8Array>, string][] = [
      [new Map<string, Uint8Array>(), "version.azure.akv.io"],
      [without("version.azure.akv.io"), "version.azure.akv.io"],
      [without("algorithm.azure.akv.io"), "algorithm.azure.akv.io"],
      [goAnnotations([["version.azure.akv.io", "2"]]), "version.azure.akv.io"],
      [goAnnotations([["algorithm.azure.akv.io", "RSA1_5"]]), "algorithm.azure.akv.io"],
      [goAnnotations([["other.example.com", "x"]]), "other.example.com"],
      [goAnnotations([["Bad_Key", "x"]]), "Bad_Key"],
    ];
    for (const [annotations, named] of cases) {
      const error = await expectCode(
        () => service.decrypt({ ciphertext, keyId, annotations }, ctx()),
        "INVALID_ARGUMENT",
      );
      expect(error.message).toContain(named);
    }
    // Informational annotations may be anything under azure.akv.io, or absent.
    const minimal = new Map([
      ["version.azure.akv.io", Buffer.from("1")],
      ["algorithm.azure.akv.io", Buffer.from("RSA-OAEP-256")],
      ["future.azure.akv.io", Buffer.from("x")],
    ]);
    expect(fake.legacyCalls).toHaveLength(0);
    await service.decrypt({ ciphertext, keyId, annotations: minimal }, ctx());
    expect(fake.legacyCalls).toHaveLength(1);
  });

  it("refuses an implausible ciphertext or empty key_id with INVALID_ARGUMENT, no call", async () => {
    const fake = fakeWrapper();
    const service = await startedServiceFor(fake);
    const key = fake.currentKey();
    const good = goCiphertext(fake, key, "RSA-OAEP-256", randomBytes(32));
    const keyId = keyIdOf(key);
    for (const ciphertext of [
      good.subarray(0, 300),
      Buffer.concat([good, Buffer.from("AA")]),
      Buffer.from(`${good.toString("ascii").slice(0, 50)}*${good.toString("ascii").slice(51)}`),
    ]) {
      await expectCode(
        () => service.decrypt({ ciphertext, keyId, annotations: goAnnotations() }, ctx()),
        "INVALID_ARGUMENT",
      );
    }
    await expectCode(
      () => service.decrypt({ ciphertext: good, keyId: "", annotations: goAnnotations() }, ctx()),
      "INVALID_ARGUMENT",
    );
    expect(fake.legacyCalls).toHaveLength(0);
  });

  it("refuses a key_id of no known version with FAILED_PRECONDITION and no call", async () => {
    const fake = fakeWrapper();
    const service = await startedServiceFor(fake);
    const key = fake.currentKey();
    const ciphertext = goCiphertext(fake, key, "RSA-OAEP-256", randomBytes(32));
    for (const keyId of [
      keyIdOf({ ...key, keyVersion: "0".repeat(32) }),
      keyIdOf({ ...key, vaultHost: "other.vault.azure.net" }),
      "not-a-hash",
    ]) {
      const error = await expectCode(
        () => service.decrypt({ ciphertext, keyId, annotations: goAnnotations() }, ctx()),
        "FAILED_PRECONDITION",
      );
      expect(error.message).toContain("matches no version");
      expect(error.message).toContain(key.keyName);
    }
    expect(fake.legacyCalls).toHaveLength(0);
  });

  it("refuses a disabled version like our own envelopes, with no call", async () => {
    const fake = fakeWrapper();
    const old = fake.currentKey();
    const ciphertext = goCiphertext(fake, old, "RSA-OAEP-256", randomBytes(32));
    fake.rotate();
    fake.disable(old.keyVersion);
    const service = await startedServiceFor(fake);
    const error = await expectCode(
      () =>
        service.decrypt({ ciphertext, keyId: keyIdOf(old), annotations: goAnnotations() }, ctx()),
      "FAILED_PRECONDITION",
    );
    expect(error.message).toContain(old.keyVersion);
    expect(error.message).toContain("disabled");
    expect(fake.legacyCalls).toHaveLength(0);
  });

  it("is UNAVAILABLE before the key's versions are known, and passes Key Vault's errors on", async () => {
    const fake = fakeWrapper();
    const key = fake.currentKey();
    const input = {
      ciphertext: goCiphertext(fake, key, "RSA-OAEP-256", randomBytes(32)),
      keyId: keyIdOf(key),
      annotations: goAnnotations(),
    };
    const service = serviceFor(fake);
    await expectCode(() => service.decrypt(input, ctx()), "UNAVAILABLE");
    await service.start();
    fake.failNextLegacyDecrypts(1, new KmsError("UNAVAILABLE", "Key Vault is down"));
    await expectCode(() => service.decrypt(input, ctx()), "UNAVAILABLE");
    fake.failNextLegacyDecrypts(1, new KmsError("PERMISSION_DENIED", "no decrypt permission"));
    await expectCode(() => service.decrypt(input, ctx()), "PERMISSION_DENIED");
    service.close();
    await expectCode(() => service.decrypt(input, ctx()), "UNAVAILABLE");
  });

  it("honours the caller's cancellation", async () => {
    const fake = fakeWrapper({ latencyMs: 200 });
    const service = await startedServiceFor(fake);
    const key = fake.currentKey();
    const input = {
      ciphertext: goCiphertext(fake, key, "RSA-OAEP-256", randomBytes(32)),
      keyId: keyIdOf(key),
      annotations: goAnnotations(),
    };
    const controller = new AbortController();
    const pending = service.decrypt(input, ctx("v2", controller.signal));
    controller.abort(new KmsError("CANCELLED", "cancelled"));
    await expectCode(() => pending, "CANCELLED");
  });
});

describe("v1 ciphertexts of Azure/kubernetes-kms", () => {
  it("decrypt under the current version with RSA1_5", async () => {
    const fake = fakeWrapper();
    const service = await startedServiceFor(fake);
    const key = fake.currentKey();
    const dek = randomBytes(32);
    const ciphertext = goCiphertext(fake, key, "RSA1_5", dek);
    const out = await service.decrypt({ ciphertext, keyId: "", annotations: NONE }, ctx("v1beta1"));
    expect(Buffer.from(out)).toEqual(dek);
    expect(fake.legacyCalls).toEqual([{ key, algorithm: "RSA1_5" }]);
  });

  it("are found under older versions, newest first, skipping disabled ones", async () => {
    const fake = fakeWrapper();
    const oldest = fake.currentKey();
    const dek = randomBytes(32);
    const ciphertext = goCiphertext(fake, oldest, "RSA1_5", dek);
    const middle = fake.rotate();
    const disabled = fake.rotate();
    const newest = fake.rotate();
    fake.disable(disabled.keyVersion);
    const service = await startedServiceFor(fake);
    const out = await service.decrypt({ ciphertext, keyId: "", annotations: NONE }, ctx("v1beta1"));
    expect(Buffer.from(out)).toEqual(dek);
    expect(fake.legacyCalls.map((c) => c.key.keyVersion)).toEqual([
      newest.keyVersion,
      middle.keyVersion,
      oldest.keyVersion,
    ]);
  });

  it("try the pinned version first", async () => {
    const base = fakeWrapper();
    const pinnedKey = base.currentKey();
    base.rotate();
    const fake = base.withSameKeys({ pinned: true });
    const service = await startedServiceFor(fake);
    const dek = randomBytes(32);
    const ciphertext = goCiphertext(fake, pinnedKey, "RSA1_5", dek);
    const out = await service.decrypt({ ciphertext, keyId: "", annotations: NONE }, ctx("v1beta1"));
    expect(Buffer.from(out)).toEqual(dek);
    expect(fake.legacyCalls.map((c) => c.key)).toEqual([pinnedKey]);
  });

  it("try a bounded number of versions, then INVALID_ARGUMENT", async () => {
    const fake = fakeWrapper();
    const first = fake.currentKey();
    const ciphertext = goCiphertext(fake, first, "RSA1_5", randomBytes(32));
    for (let i = 0; i < MAX_LEGACY_V1_VERSIONS + 1; i++) fake.rotate();
    const service = await startedServiceFor(fake);
    const error = await expectCode(
      () => service.decrypt({ ciphertext, keyId: "", annotations: NONE }, ctx("v1beta1")),
      "INVALID_ARGUMENT",
    );
    expect(error.message).toContain("Azure/kubernetes-kms");
    expect(fake.legacyCalls).toHaveLength(MAX_LEGACY_V1_VERSIONS);
    expect(fake.legacyCalls.map((c) => c.key)).not.toContainEqual(first);
  });

  it("stop at the first outage: UNAVAILABLE, no further versions tried", async () => {
    const fake = fakeWrapper();
    const oldest = fake.currentKey();
    const ciphertext = goCiphertext(fake, oldest, "RSA1_5", randomBytes(32));
    fake.rotate();
    fake.rotate();
    const service = await startedServiceFor(fake);
    fake.failNextLegacyDecrypts(1, new KmsError("UNAVAILABLE", "Key Vault is down"));
    await expectCode(
      () => service.decrypt({ ciphertext, keyId: "", annotations: NONE }, ctx("v1beta1")),
      "UNAVAILABLE",
    );
    expect(fake.legacyCalls).toHaveLength(1);
  });

  it("say which versions are disabled when none of the usable ones decrypts", async () => {
    const fake = fakeWrapper();
    const old = fake.currentKey();
    const ciphertext = goCiphertext(fake, old, "RSA1_5", randomBytes(32));
    fake.rotate();
    fake.disable(old.keyVersion);
    const service = await startedServiceFor(fake);
    const error = await expectCode(
      () => service.decrypt({ ciphertext, keyId: "", annotations: NONE }, ctx("v1beta1")),
      "FAILED_PRECONDITION",
    );
    expect(error.message).toContain(old.keyVersion);
    expect(fake.legacyCalls).toHaveLength(1);
  });

  it("refuse an implausible ciphertext with no Key Vault call", async () => {
    const fake = fakeWrapper();
    const service = await startedServiceFor(fake);
    for (const text of ["Zm9vYmFy", "A".repeat(341)]) {
      await expectCode(
        () =>
          service.decrypt(
            { ciphertext: Buffer.from(text), keyId: "", annotations: NONE },
            ctx("v1beta1"),
          ),
        "INVALID_ARGUMENT",
      );
    }
    expect(fake.legacyCalls).toHaveLength(0);
  });
});
