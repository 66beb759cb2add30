import { randomBytes } from "node:crypto";
import { deadlineExceededReason, cancelledReason } from "../../../src/kms/abort.js";
import { KeyAllowlist } from "../../../src/kms/allowlist.js";
import { finishEnvelope } from "../../../src/kms/envelope.js";
import { KmsError } from "../../../src/kms/errors.js";
import { keyIdOf } from "../../../src/kms/key-id.js";
import type { KeyWrapper } from "../../../src/kms/key-wrapper.js";
import { createKmsService } from "../../../src/kms/service.js";
import { FakeKeyWrapper, sharedKeyPair } from "../../helpers/fake-key-wrapper.js";
import { ctx, expectCode, isZero, NONE, serviceFor, startedServiceFor, tick } from "./fixtures.js";

function fakeWrapper(
  options: ConstructorParameters<typeof FakeKeyWrapper>[0] = {},
): FakeKeyWrapper {
  return new FakeKeyWrapper({ keyPair: sharedKeyPair(), ...options });
}

describe("Status", () => {
  it("is not ok, with an empty key_id, until the first seed is wrapped", async () => {
    const fake = fakeWrapper();
    const service = serviceFor(fake);
    const before = service.status();
    expect(before.version).toBe("v2");
    expect(before.healthz).not.toBe("ok");
    expect(before.healthz.length).toBeLessThan(80);
    expect(before.keyId).toBe("");

    await service.start();
    expect(service.status()).toEqual({
      version: "v2",
      healthz: "ok",
      keyId: keyIdOf(fake.currentKey()),
    });
    expect(fake.calls).toEqual({ wrap: 1, unwrap: 0, refresh: 1 });
  });

  it("reports the configured version string", async () => {
    const service = await startedServiceFor(fakeWrapper(), { statusVersion: "v2beta1" });
    expect(service.status().version).toBe("v2beta1");
  });

  it("says why after a failed start, and recovers on the next start", async () => {
    const fake = fakeWrapper();
    fake.failNextWraps(1, new KmsError("PERMISSION_DENIED", "no wrapKey permission"));
    const service = serviceFor(fake);
    await expectCode(() => service.start(), "PERMISSION_DENIED");
    expect(service.status().healthz).toContain("PERMISSION_DENIED");
    expect(service.status().keyId).toBe("");
    await expectCode(() => service.encrypt(randomBytes(32), ctx()), "UNAVAILABLE");

    await service.start();
    expect(service.status().healthz).toBe("ok");
  });

  it("has Key Vault unwrap every new seed once before sealing with it, and refuses one it cannot", async () => {
    const fake = fakeWrapper();
    fake.failNextUnwraps(1, new KmsError("PERMISSION_DENIED", "no unwrapKey permission"));
    const service = serviceFor(fake);
    // Wrapping alone succeeded (the public key only needs `get`): no seed is used all the same.
    const error = await expectCode(() => service.start(), "PERMISSION_DENIED");
    expect(error.message).toContain("could not unwrap a seed just wrapped");
    expect(error.message).toContain("no unwrapKey permission");
    expect(fake.calls.wrap).toBe(1);
    expect(service.status().healthz).toContain("PERMISSION_DENIED");
    await expectCode(() => service.encrypt(randomBytes(32), ctx()), "UNAVAILABLE");

    await service.start();
    expect(service.status().healthz).toBe("ok");
    expect(fake.proofUnwraps).toBe(2);
    expect(fake.calls.unwrap).toBe(0);
  });

  it("is answered from memory: no Key Vault call", async () => {
    const fake = fakeWrapper();
    const service = await startedServiceFor(fake);
    for (let i = 0; i < 10; i++) service.status();
    expect(fake.calls).toEqual({ wrap: 1, unwrap: 0, refresh: 1 });
  });
});

describe("Encrypt", () => {
  it("is UNAVAILABLE before start", async () => {
    const service = serviceFor(fakeWrapper());
    const error = await expectCode(() => service.encrypt(randomBytes(32), ctx()), "UNAVAILABLE");
    expect(error.message).toMatch(/seed/);
  });

  it("returns the Status key_id, no annotations, and a ciphertext that decrypts", async () => {
    const fake = fakeWrapper();
    const service = await startedServiceFor(fake);
    const plaintext = randomBytes(32);
    const result = service.encrypt(plaintext, ctx());
    expect(result.keyId).toBe(service.status().keyId);
    expect(result.annotations.size).toBe(0);
    expect(result.ciphertext[0]).toBe(0x01);
    expect(result.ciphertext.length).toBeLessThanOrEqual(1024);

    const out = await service.decrypt(
      { ciphertext: result.ciphertext, keyId: result.keyId, annotations: NONE },
      ctx(),
    );
    expect(Buffer.from(out)).toEqual(plaintext);
    expect(out).not.toBe(plaintext);
    expect(fake.calls).toEqual({ wrap: 1, unwrap: 0, refresh: 1 }); // the current seed needs no unwrap
  });

  it("never makes the same ciphertext twice", async () => {
    const service = await startedServiceFor(fakeWrapper());
    const plaintext = randomBytes(32);
    const a = service.encrypt(plaintext, ctx()).ciphertext;
    const b = service.encrypt(plaintext, ctx()).ciphertext;
    expect(Buffer.from(a)).not.toEqual(Buffer.from(b));
  });

  it("refuses an empty plaintext", async () => {
    const service = await startedServiceFor(fakeWrapper());
    for (const api of ["v2", "v2alpha1", "v1beta1"] as const) {
      await expectCode(() => service.encrypt(new Uint8Array(0), ctx(api)), "INVALID_ARGUMENT");
    }
  });

  it("refuses on v2 and v2alpha1 a plaintext whose ciphertext would exceed 1024 bytes", async () => {
    const service = await startedServiceFor(fakeWrapper());
    const overhead = service.encrypt(randomBytes(1), ctx()).ciphertext.length - 1;
    const largest = 1024 - overhead;
    expect(service.encrypt(randomBytes(largest), ctx("v2")).ciphertext).toHaveLength(1024);
    for (const api of ["v2", "v2alpha1"] as const) {
      const error = await expectCode(
        () => service.encrypt(randomBytes(largest + 1), ctx(api)),
        "INVALID_ARGUMENT",
      );
      expect(error.message).toContain("at most 1024 bytes");
    }
  });

  it("accepts up to 32 KiB on v1beta1, and decrypts it there", async () => {
    const service = await startedServiceFor(fakeWrapper());
    const plaintext = randomBytes(32 * 1024);
    const { ciphertext } = service.encrypt(plaintext, ctx("v1beta1"));
    const out = await service.decrypt({ ciphertext, keyId: "", annotations: NONE }, ctx("v1beta1"));
    expect(Buffer.from(out)).toEqual(plaintext);
    await expectCode(
      () => service.encrypt(randomBytes(32 * 1024 + 1), ctx("v1beta1")),
      "INVALID_ARGUMENT",
    );
  });
});

describe("Decrypt input checks (before any Key Vault call)", () => {
  let fake: FakeKeyWrapper;
  let ciphertext: Uint8Array;
  let keyId: string;
  let plaintext: Buffer;

  beforeAll(async () => {
    fake = fakeWrapper();
    const writer = await startedServiceFor(fake);
    plaintext = randomBytes(32);
    ({ ciphertext, keyId } = writer.encrypt(plaintext, ctx()));
  });

  /** A restarted plugin: any ciphertext that got past the checks would need an unwrap. */
  async function reader(): Promise<{
    service: Awaited<ReturnType<typeof startedServiceFor>>;
    restarted: FakeKeyWrapper;
  }> {
    const restarted = fake.withSameKeys();
    return { service: await startedServiceFor(restarted), restarted };
  }

  it("decrypts a good ciphertext on a restarted plugin with one unwrap", async () => {
    const { service, restarted } = await reader();
    const out = await service.decrypt({ ciphertext, keyId, annotations: NONE }, ctx());
    expect(Buffer.from(out)).toEqual(plaintext);
    expect(restarted.calls.unwrap).toBe(1);
  });

  it("rejects every single-byte change (XOR 0x01 and 0xff at every index) with no unwrap", async () => {
    const { service, restarted } = await reader();
    for (let i = 0; i < ciphertext.length; i++) {
      for (const mask of [0x01, 0xff]) {
        const bad = Uint8Array.from(ciphertext);
        bad[i] = (bad[i] as number) ^ mask;
        await expectCode(
          () => service.decrypt({ ciphertext: bad, keyId, annotations: NONE }, ctx()),
          "INVALID_ARGUMENT",
        );
      }
    }
    expect(restarted.calls.unwrap).toBe(0);
  });

  it("rejects every truncation with no unwrap", async () => {
    const { service, restarted } = await reader();
    for (let length = 0; length < ciphertext.length; length++) {
      await expectCode(
        () =>
          service.decrypt(
            { ciphertext: ciphertext.subarray(0, length), keyId, annotations: NONE },
            ctx(),
          ),
        "INVALID_ARGUMENT",
      );
    }
    expect(restarted.calls.unwrap).toBe(0);
  });

  it("rejects oversized input per API", async () => {
    const { service } = await reader();
    const big = new Uint8Array(1025);
    big[0] = 0x01;
    const v2 = await expectCode(
      () => service.decrypt({ ciphertext: big, keyId, annotations: NONE }, ctx("v2")),
      "INVALID_ARGUMENT",
    );
    expect(v2.message).toContain("1024");
    const huge = new Uint8Array(64 * 1024 + 1);
    huge[0] = 0x01;
    await expectCode(
      () => service.decrypt({ ciphertext: huge, keyId: "", annotations: NONE }, ctx("v1beta1")),
      "INVALID_ARGUMENT",
    );
  });

  it("names legacy Azure/kubernetes-kms ciphertexts (base64url text)", async () => {
    const { service, restarted } = await reader();
    for (const text of ["Zm9vYmFy", "-abc", "_abc", "0abc"]) {
      const error = await expectCode(
        () => service.decrypt({ ciphertext: Buffer.from(text), keyId, annotations: NONE }, ctx()),
        "INVALID_ARGUMENT",
      );
      expect(error.message).toContain("Azure/kubernetes-kms");
    }
    expect(restarted.calls.unwrap).toBe(0);
    expect(restarted.legacyCalls).toHaveLength(0);
  });

  it("rejects unknown format versions", async () => {
    const { service } = await reader();
    for (const first of [0x00, 0x02, 0xff, 0x7b]) {
      const bad = Uint8Array.from(ciphertext);
      bad[0] = first;
      const error = await expectCode(
        () => service.decrypt({ ciphertext: bad, keyId, annotations: NONE }, ctx()),
        "INVALID_ARGUMENT",
      );
      expect(error.message).toContain("format version");
    }
  });

  it("rejects a key_id that does not match the envelope's key, naming both", async () => {
    const { service, restarted } = await reader();
    const other = keyIdOf({ ...fake.currentKey(), keyVersion: "0".repeat(32) });
    for (const api of ["v2", "v2alpha1"] as const) {
      const error = await expectCode(
        () => service.decrypt({ ciphertext, keyId: other, annotations: NONE }, ctx(api)),
        "INVALID_ARGUMENT",
      );
      expect(error.message).toContain(other);
      expect(error.message).toContain(keyId);
      await expectCode(
        () => service.decrypt({ ciphertext, keyId: "", annotations: NONE }, ctx(api)),
        "INVALID_ARGUMENT",
      );
    }
    expect(restarted.calls.unwrap).toBe(0);
    // v1beta1 carries no key_id.
    const out = await service.decrypt({ ciphertext, keyId: "", annotations: NONE }, ctx("v1beta1"));
    expect(Buffer.from(out)).toEqual(plaintext);
  });

  it("validates annotations like kube-apiserver and expects none", async () => {
    const { service, restarted } = await reader();
    const cases: [string, Uint8Array][] = [
      ["foo", new Uint8Array(1)],
      ["Foo.example.com", new Uint8Array(1)],
      ["a_b.example.com", new Uint8Array(1)],
      ["", new Uint8Array(1)],
      [`${"a".repeat(64)}.example.com`, new Uint8Array(1)],
      ["big.example.com", new Uint8Array(32 * 1024)],
      ["version.azure.akv.io", Buffer.from("1")], // valid, but our envelope has none
      ["kms.example.com.", new Uint8Array(0)],
    ];
    for (const [key, value] of cases) {
      await expectCode(
        () => service.decrypt({ ciphertext, keyId, annotations: new Map([[key, value]]) }, ctx()),
        "INVALID_ARGUMENT",
      );
    }
    expect(restarted.calls.unwrap).toBe(0);
  });

  it("refuses a vault or key that is not allowlisted, with no unwrap", async () => {
    const restarted = fake.withSameKeys();
    const current = fake.currentKey();
    for (const allowed of [
      { vaultHost: "other.vault.azure.net", keyName: current.keyName },
      { vaultHost: current.vaultHost, keyName: "other-key" },
    ]) {
      const service = await startedServiceFor(restarted, { allowlist: new KeyAllowlist(allowed) });
      const error = await expectCode(
        () => service.decrypt({ ciphertext, keyId, annotations: NONE }, ctx()),
        "FAILED_PRECONDITION",
      );
      expect(error.message).toContain(current.vaultHost);
      expect(error.message).toContain(current.keyName);
    }
    expect(restarted.calls.unwrap).toBe(0);
  });

  it("accepts extra allowlisted keys, hosts and names compared case-insensitively", async () => {
    const restarted = fake.withSameKeys();
    const current = fake.currentKey();
    const allowlist = new KeyAllowlist({ vaultHost: "new.vault.azure.net", keyName: "new" }, [
      { vaultHost: current.vaultHost.toUpperCase(), keyName: current.keyName.toUpperCase() },
    ]);
    const service = await startedServiceFor(restarted, { allowlist });
    const out = await service.decrypt({ ciphertext, keyId, annotations: NONE }, ctx());
    expect(Buffer.from(out)).toEqual(plaintext);
  });

  it("rejects a ciphertext sealed by another seed of the same key (tag mismatch)", async () => {
    const { service } = await reader();
    const other = (await startedServiceFor(fake.withSameKeys())).encrypt(randomBytes(32), ctx());
    // Splice the other seed's wrap block into our envelope's body: parses, but GCM fails.
    const mine = Buffer.from(ciphertext);
    const theirs = Buffer.from(other.ciphertext);
    const tail = 32 + 12 + 2 + 32 + 16 + 4;
    const spliced = Buffer.concat([
      theirs.subarray(0, theirs.length - tail),
      mine.subarray(mine.length - tail),
    ]);
    finishEnvelope(spliced);
    const error = await expectCode(
      () => service.decrypt({ ciphertext: spliced, keyId, annotations: NONE }, ctx()),
      "INVALID_ARGUMENT",
    );
    expect(error.message).toContain("authentication");
  });
});

describe("Decrypt of older seeds", () => {
  async function sealedBy(
    fake: FakeKeyWrapper,
    count: number,
  ): Promise<{ plaintexts: Buffer[]; ciphertexts: Uint8Array[]; keyId: string }> {
    const writer = await startedServiceFor(fake.withSameKeys());
    const plaintexts: Buffer[] = [];
    const ciphertexts: Uint8Array[] = [];
    let keyId = "";
    for (let i = 0; i < count; i++) {
      const p = randomBytes(32);
      const r = writer.encrypt(p, ctx());
      plaintexts.push(p);
      ciphertexts.push(r.ciphertext);
      keyId = r.keyId;
    }
    writer.close();
    return { plaintexts, ciphertexts, keyId };
  }

  it("shares one unwrap among 1000 concurrent decrypts of one seed after a restart", async () => {
    const fake = fakeWrapper();
    const { plaintexts, ciphertexts, keyId } = await sealedBy(fake, 1000);
    const restarted = fake.withSameKeys({ latencyMs: 20 });
    const service = await startedServiceFor(restarted);
    const outs = await Promise.all(
      ciphertexts.map((ciphertext) =>
        service.decrypt({ ciphertext, keyId, annotations: NONE }, ctx()),
      ),
    );
    outs.forEach((out, i) => {
      expect(Buffer.from(out)).toEqual(plaintexts[i]);
    });
    expect(restarted.calls.unwrap).toBe(1);
    // And later ones are served from the cache.
    await service.decrypt({ ciphertext: ciphertexts[0]!, keyId, annotations: NONE }, ctx());
    expect(restarted.calls.unwrap).toBe(1);
  });

  it("keeps a replaced current seed readable without an unwrap", async () => {
    const fake = fakeWrapper();
    let clock = 0;
    const service = await startedServiceFor(fake, { seedMaxAgeMs: 1000, now: () => clock });
    const plaintext = randomBytes(32);
    const first = service.encrypt(plaintext, ctx());
    clock = 1000;
    await service.poll(); // the seed is due: a new current seed; the old one moves into the cache
    const second = service.encrypt(plaintext, ctx());
    expect(Buffer.from(second.ciphertext.subarray(0, 300))).not.toEqual(
      Buffer.from(first.ciphertext.subarray(0, 300)),
    );
    const out = await service.decrypt(
      { ciphertext: first.ciphertext, keyId: first.keyId, annotations: NONE },
      ctx(),
    );
    expect(Buffer.from(out)).toEqual(plaintext);
    expect(fake.calls).toEqual({ wrap: 2, unwrap: 0, refresh: 2 });
    service.close();
  });

  it("does not cache an unwrap failure; concurrent callers share the one failure", async () => {
    const fake = fakeWrapper();
    const { plaintexts, ciphertexts, keyId } = await sealedBy(fake, 10);
    const restarted = fake.withSameKeys({ latencyMs: 5 });
    const service = await startedServiceFor(restarted);
    restarted.failNextUnwraps(1, new KmsError("UNAVAILABLE", "Key Vault answered 503"));
    const results = await Promise.allSettled(
      ciphertexts.map((ciphertext) =>
        service.decrypt({ ciphertext, keyId, annotations: NONE }, ctx()),
      ),
    );
    for (const r of results) {
      expect(r.status).toBe("rejected");
      expect((r as PromiseRejectedResult).reason).toMatchObject({
        code: "UNAVAILABLE",
        message: "Key Vault answered 503",
      });
    }
    expect(restarted.calls.unwrap).toBe(1);

    const out = await service.decrypt(
      { ciphertext: ciphertexts[3]!, keyId, annotations: NONE },
      ctx(),
    );
    expect(Buffer.from(out)).toEqual(plaintexts[3]);
    expect(restarted.calls.unwrap).toBe(2);
  });

  it("turns a non-KmsError from the wrapper into INTERNAL without its text", async () => {
    const fake = fakeWrapper();
    const { ciphertexts, keyId } = await sealedBy(fake, 1);
    const restarted = fake.withSameKeys();
    // Broken once started: the start-up proof of a new seed (seed.ts) still unwraps.
    let started = false;
    const broken: KeyWrapper = {
      refresh: () => restarted.refresh(),
      wrap: (seed, key) => restarted.wrap(seed, key),
      unwrap: (wrapped) =>
        started
          ? Promise.reject(new TypeError("secret-looking raw text"))
          : restarted.unwrap(wrapped),
      decryptLegacy: (...args) => restarted.decryptLegacy(...args),
    };
    const service = createKmsService({
      wrapper: broken,
      allowlist: new KeyAllowlist(restarted.currentKey()),
    });
    await service.start();
    started = true;
    const error = await expectCode(
      () => service.decrypt({ ciphertext: ciphertexts[0]!, keyId, annotations: NONE }, ctx()),
      "INTERNAL",
    );
    expect(error.message).not.toContain("secret-looking");
    expect(error.cause).toBeInstanceOf(TypeError);

    started = false;
    const throwsSync: KeyWrapper = {
      ...broken,
      unwrap: (wrapped) => {
        if (!started) return restarted.unwrap(wrapped);
        throw new RangeError("sync");
      },
    };
    const service2 = createKmsService({
      wrapper: throwsSync,
      allowlist: new KeyAllowlist(restarted.currentKey()),
    });
    await service2.start();
    started = true;
    await expectCode(
      () => service2.decrypt({ ciphertext: ciphertexts[0]!, keyId, annotations: NONE }, ctx()),
      "INTERNAL",
    );
  });

  it("lets a caller give up (deadline or cancel) while the shared unwrap goes on and fills the cache", async () => {
    const fake = fakeWrapper();
    const { plaintexts, ciphertexts, keyId } = await sealedBy(fake, 1);
    const restarted = fake.withSameKeys();
    const service = await startedServiceFor(restarted);
    const release = restarted.holdUnwraps();
    const input = { ciphertext: ciphertexts[0]!, keyId, annotations: NONE };

    const deadline = new AbortController();
    const byDeadline = service.decrypt(input, ctx("v2", deadline.signal));
    const cancel = new AbortController();
    const byCancel = service.decrypt(input, ctx("v2", cancel.signal));
    const byTimeout = service.decrypt(input, ctx("v2", AbortSignal.timeout(10)));
    // Its rejection may land before the awaits below reach it: observe it now, assert it later.
    byTimeout.catch(() => undefined);
    const patient = service.decrypt(input, ctx());
    await tick();
    deadline.abort(deadlineExceededReason());
    cancel.abort(cancelledReason());
    await expectCode(() => byDeadline, "DEADLINE_EXCEEDED");
    await expectCode(() => byCancel, "CANCELLED");
    await expectCode(() => byTimeout, "DEADLINE_EXCEEDED");
    const plainAbort = new AbortController();
    plainAbort.abort();
    await expectCode(() => service.decrypt(input, ctx("v2", plainAbort.signal)), "CANCELLED");
    expect(restarted.calls.unwrap).toBe(1);

    release();
    expect(Buffer.from(await patient)).toEqual(plaintexts[0]);
    // Cached now: even a caller whose signal already fired is answered from memory.
    expect(Buffer.from(await service.decrypt(input, ctx("v2", plainAbort.signal)))).toEqual(
      plaintexts[0],
    );
    expect(restarted.calls.unwrap).toBe(1);
  });

  it("bounds the shared unwrap by its own timeout and zeroes a late answer", async () => {
    const fake = fakeWrapper();
    const { plaintexts, ciphertexts, keyId } = await sealedBy(fake, 1);
    const restarted = fake.withSameKeys();
    // A wrapper that ignores the abort signal and answers late.
    const deaf: KeyWrapper = {
      refresh: () => restarted.refresh(),
      wrap: (seed, key) => restarted.wrap(seed, key),
      unwrap: (wrapped) => restarted.unwrap(wrapped),
      decryptLegacy: (...args) => restarted.decryptLegacy(...args),
    };
    const service = createKmsService({
      wrapper: deaf,
      allowlist: new KeyAllowlist(restarted.currentKey()),
      unwrapTimeoutMs: 30,
    });
    await service.start();
    const release = restarted.holdUnwraps();
    const input = { ciphertext: ciphertexts[0]!, keyId, annotations: NONE };
    const error = await expectCode(() => service.decrypt(input, ctx()), "UNAVAILABLE");
    expect(error.message).toContain("30 ms");
    release();
    await tick(5);
    expect(restarted.unwrapped).toHaveLength(1);
    expect(isZero(restarted.unwrapped[0]!)).toBe(true);
    // Not cached: the next decrypt unwraps again.
    expect(Buffer.from(await service.decrypt(input, ctx()))).toEqual(plaintexts[0]);
    expect(restarted.calls.unwrap).toBe(2);
  });

  it("zeroes a seed when the cache evicts it, and every seed on close", async () => {
    const fake = fakeWrapper();
    const a = await sealedBy(fake, 1);
    const b = await sealedBy(fake, 1);
    const restarted = fake.withSameKeys();
    const service = await startedServiceFor(restarted, { cacheSize: 1 });
    const decrypt = (s: typeof a): Promise<Uint8Array> =>
      service.decrypt({ ciphertext: s.ciphertexts[0]!, keyId: s.keyId, annotations: NONE }, ctx());

    expect(Buffer.from(await decrypt(a))).toEqual(a.plaintexts[0]);
    const seedA = restarted.unwrapped[0]!;
    expect(isZero(seedA)).toBe(false);

    expect(Buffer.from(await decrypt(b))).toEqual(b.plaintexts[0]);
    const seedB = restarted.unwrapped[1]!;
    expect(isZero(seedA)).toBe(true);
    expect(isZero(seedB)).toBe(false);

    service.close();
    expect(isZero(seedB)).toBe(true);
    expect(service.status().healthz).not.toBe("ok");
    await expectCode(() => service.encrypt(randomBytes(32), ctx()), "UNAVAILABLE");
    await expectCode(() => decrypt(a), "UNAVAILABLE");
  });

  it("stays correct with a cache of 1 under concurrent decrypts of many seeds", async () => {
    const fake = fakeWrapper();
    const sets = await Promise.all(Array.from({ length: 8 }, () => sealedBy(fake, 25)));
    const restarted = fake.withSameKeys({ latencyMs: 2 });
    const service = await startedServiceFor(restarted, { cacheSize: 1 });
    const jobs: Promise<void>[] = [];
    for (let i = 0; i < 25; i++) {
      for (const set of sets) {
        const ciphertext = set.ciphertexts[i]!;
        const expected = set.plaintexts[i]!;
        jobs.push(
          service
            .decrypt({ ciphertext, keyId: set.keyId, annotations: NONE }, ctx())
            .then((out) => {
              expect(Buffer.from(out)).toEqual(expected);
            }),
        );
      }
    }
    await Promise.all(jobs);
    await tick(5);
    // Every unwrapped seed but the one still cached has been zeroed.
    expect(restarted.unwrapped.filter((s) => !isZero(s)).length).toBeLessThanOrEqual(1);
  });
});
