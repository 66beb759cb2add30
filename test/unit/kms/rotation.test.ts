import { randomBytes } from "node:crypto";
import { KeyAllowlist } from "../../../src/kms/allowlist.js";
import { parseEnvelope } from "../../../src/kms/envelope.js";
import { KmsError, type KmsErrorCode } from "../../../src/kms/errors.js";
import { keyIdOf } from "../../../src/kms/key-id.js";
import type { KeyWrapper } from "../../../src/kms/key-wrapper.js";
import { createKmsService } from "../../../src/kms/service.js";
import type { EncryptResult } from "../../../src/kms/service-types.js";
import { FakeKeyWrapper, sharedKeyPair } from "../../helpers/fake-key-wrapper.js";
import {
  ctx,
  expectCode,
  isZero,
  NONE,
  recordingObserver,
  serviceFor,
  startedServiceFor,
} from "./fixtures.js";

const A = "a".repeat(32);
const B = "b".repeat(32);
const C = "c".repeat(32);

type Service = Awaited<ReturnType<typeof startedServiceFor>>;

function fakeWrapper(
  options: ConstructorParameters<typeof FakeKeyWrapper>[0] = {},
): FakeKeyWrapper {
  return new FakeKeyWrapper({ keyPair: sharedKeyPair(), keyVersion: A, ...options });
}

function keyOf(fake: FakeKeyWrapper, keyVersion: string): ReturnType<FakeKeyWrapper["currentKey"]> {
  const found = fake.versions().find((k) => k.keyVersion === keyVersion);
  if (found === undefined) throw new Error(`no version ${keyVersion}`);
  return found;
}

interface Sealed {
  readonly plaintext: Buffer;
  readonly result: EncryptResult;
}

function seal(service: Service): Sealed {
  const plaintext = randomBytes(32);
  return { plaintext, result: service.encrypt(plaintext, ctx()) };
}

async function open(service: Service, sealed: Sealed): Promise<Buffer> {
  const { ciphertext, keyId } = sealed.result;
  return Buffer.from(await service.decrypt({ ciphertext, keyId, annotations: NONE }, ctx()));
}

async function expectOpens(service: Service, sealed: Sealed): Promise<void> {
  expect(await open(service, sealed)).toEqual(sealed.plaintext);
}

function versionOf(sealed: Sealed): string {
  return parseEnvelope(sealed.result.ciphertext).seed.key.keyVersion;
}

describe("promotion of a new key version", () => {
  it("changes Status key_id at the first poll after a rotation, and keeps old data readable", async () => {
    const fake = fakeWrapper();
    const service = await startedServiceFor(fake);
    const before = seal(service);
    expect(before.result.keyId).toBe(keyIdOf(keyOf(fake, A)));

    const next = fake.rotate(B);
    // Nothing changes until the plugin has looked.
    expect(service.status().keyId).toBe(keyIdOf(keyOf(fake, A)));
    expect(seal(service).result.keyId).toBe(keyIdOf(keyOf(fake, A)));

    await service.poll();
    expect(service.status()).toEqual({ version: "v2", healthz: "ok", keyId: keyIdOf(next) });
    const after = seal(service);
    expect(after.result.keyId).toBe(keyIdOf(next));
    expect(versionOf(after)).toBe(B);

    await expectOpens(service, before); // the old current seed moved to the cache
    await expectOpens(service, after);
    expect(fake.calls).toEqual({ wrap: 2, unwrap: 0, refresh: 2 });

    // A restarted plugin reads both versions, one unwrap each, with the version in the envelope.
    const restarted = fake.withSameKeys();
    const reader = await startedServiceFor(restarted);
    expect(reader.status().keyId).toBe(keyIdOf(next));
    await expectOpens(reader, before);
    await expectOpens(reader, after);
    expect(restarted.calls.unwrap).toBe(2);
  });

  it("does nothing while the newest version is unchanged: no wrap, one refresh per poll", async () => {
    const fake = fakeWrapper();
    const service = await startedServiceFor(fake);
    const keyId = service.status().keyId;
    for (let i = 0; i < 5; i++) await service.poll();
    expect(service.status().keyId).toBe(keyId);
    expect(fake.calls).toEqual({ wrap: 1, unwrap: 0, refresh: 6 });
    // The new seed's proof, then one proof of the current seed per poll.
    expect(fake.proofUnwraps).toBe(6);
  });

  it("keeps the old seed when the wrap under the new version fails, and promotes at the next poll", async () => {
    const fake = fakeWrapper();
    const { observer, events } = recordingObserver();
    const service = await startedServiceFor(fake, { observer });
    const old = service.status().keyId;
    fake.rotate(B);
    fake.failNextWraps(1, new KmsError("UNAVAILABLE", "no public key yet"));
    await service.poll();
    expect(service.status()).toMatchObject({ healthz: "ok", keyId: old });
    expect(seal(service).result.keyId).toBe(old);
    expect(events).toContain("failed UNAVAILABLE");

    await service.poll();
    expect(service.status().keyId).toBe(keyIdOf(keyOf(fake, B)));
  });

  it("runs concurrent polls one at a time: one promotion, not one per poll", async () => {
    const fake = fakeWrapper({ latencyMs: 5 });
    const service = await startedServiceFor(fake);
    fake.rotate(B);
    await Promise.all([service.poll(), service.poll(), service.poll()]);
    expect(service.status().keyId).toBe(keyIdOf(keyOf(fake, B)));
    expect(fake.calls).toEqual({ wrap: 2, unwrap: 0, refresh: 4 });
  });
});

describe("pinned key version", () => {
  it("never promotes, yet decrypts data under other versions", async () => {
    const writerFake = fakeWrapper();
    const pinnedFake = writerFake.withSameKeys({ pinned: true });
    const pinned = await startedServiceFor(pinnedFake);
    const keyId = pinned.status().keyId;
    expect(keyId).toBe(keyIdOf(keyOf(writerFake, A)));

    writerFake.rotate(B);
    const writer = await startedServiceFor(writerFake.withSameKeys());
    const underB = seal(writer);
    expect(versionOf(underB)).toBe(B);

    await pinned.poll();
    await pinned.poll();
    expect(pinned.status().keyId).toBe(keyId);
    expect(seal(pinned).result.keyId).toBe(keyId);
    await expectOpens(pinned, underB);
    expect(pinnedFake.calls).toEqual({ wrap: 1, unwrap: 1, refresh: 3 });
  });

  it("stops encrypting when the pinned version is disabled, even if a newer one is usable", async () => {
    const fake = fakeWrapper({ pinned: true });
    const service = await startedServiceFor(fake);
    fake.rotate(B);
    fake.disable(A);
    await service.poll();
    const error = await expectCode(() => service.status(), "FAILED_PRECONDITION");
    expect(error.message).toContain(`${A} is disabled`);
    await expectCode(() => service.encrypt(randomBytes(32), ctx()), "FAILED_PRECONDITION");
  });
});

describe("revocation", () => {
  /** A at first; then B promoted, with one B seed replaced by age (cached) and one current. */
  async function rotatedService(): Promise<{
    fake: FakeKeyWrapper;
    service: Service;
    underA: Sealed;
    underB1: Sealed;
    underB2: Sealed;
    setClock: (ms: number) => void;
  }> {
    const fake = fakeWrapper();
    let clock = 0;
    const service = await startedServiceFor(fake, { seedMaxAgeMs: 60_000, now: () => clock });
    const underA = seal(service);
    fake.rotate(B);
    await service.poll();
    const underB1 = seal(service);
    clock += 60_000;
    await service.poll(); // the B seed is due: a second one under B
    const underB2 = seal(service);
    expect(versionOf(underB1)).toBe(B);
    expect(versionOf(underB2)).toBe(B);
    expect(parseEnvelope(underB1.result.ciphertext).seedCacheKey).not.toBe(
      parseEnvelope(underB2.result.ciphertext).seedCacheKey,
    );
    expect(fake.calls).toEqual({ wrap: 3, unwrap: 0, refresh: 3 });
    return {
      fake,
      service,
      underA,
      underB1,
      underB2,
      setClock: (ms) => {
        clock = ms;
      },
    };
  }

  it("disabling the newest version moves Encrypt back to the newest usable one within one poll", async () => {
    const { fake, service, underA, underB1, underB2 } = await rotatedService();
    const [seedA, seedB1, seedB2] = fake.wrappedSeeds;
    fake.disable(B);
    await service.poll();

    // Current is A again (a new seed under it), at once and from memory.
    expect(service.status().keyId).toBe(keyIdOf(keyOf(fake, A)));
    const again = seal(service);
    expect(again.result.keyId).toBe(keyIdOf(keyOf(fake, A)));
    expect(fake.calls.wrap).toBe(4);

    // Data under B fails, whether its seed was cached (B1) or current (B2), with no Key Vault call.
    for (const sealed of [underB1, underB2]) {
      const error = await expectCode(() => open(service, sealed), "FAILED_PRECONDITION");
      expect(error.message).toContain(`key version ${B} of kms-key is disabled in Key Vault`);
      expect(error.message).toContain("re-enable it");
    }
    expect(fake.calls.unwrap).toBe(0);
    // Both B seeds are zeroed; A's stays cached.
    expect(isZero(seedB1!)).toBe(true);
    expect(isZero(seedB2!)).toBe(true);
    expect(isZero(seedA!)).toBe(false);
    await expectOpens(service, underA);
    await expectOpens(service, again);
    expect(fake.calls.unwrap).toBe(0);
  });

  it("re-enabling restores Decrypt (with a new unwrap) and promotes the version again", async () => {
    const { fake, service, underB1, underB2 } = await rotatedService();
    fake.disable(B);
    await service.poll();
    await expectCode(() => open(service, underB1), "FAILED_PRECONDITION");

    fake.enable(B);
    await service.poll();
    expect(service.status().keyId).toBe(keyIdOf(keyOf(fake, B)));
    expect(seal(service).result.keyId).toBe(keyIdOf(keyOf(fake, B)));
    await expectOpens(service, underB1);
    await expectOpens(service, underB2);
    expect(fake.calls.unwrap).toBe(2); // their seeds were zeroed, so Key Vault unwraps them again
  });

  it("stops sealing under an expired version but keeps reading its data, as Key Vault does", async () => {
    const { fake, service, underB1 } = await rotatedService();
    fake.expire(B);
    await service.poll();
    expect(service.status().keyId).toBe(keyIdOf(keyOf(fake, A)));
    expect(seal(service).result.keyId).toBe(keyIdOf(keyOf(fake, A)));
    await expectOpens(service, underB1);
    expect(fake.calls.unwrap).toBe(0); // B's seed was not dropped: expiry is not revocation
  });

  it("stops an unwrap that was in flight when its version was revoked, and zeroes its result", async () => {
    const { fake, underB1 } = await rotatedService();
    const restarted = fake.withSameKeys();
    const reader = await startedServiceFor(restarted);
    const release = restarted.holdUnwraps();
    const pending = open(reader, underB1);
    fake.disable(B); // after the request reached "Key Vault": its answer still comes back
    await reader.poll();
    release();
    const error = await expectCode(() => pending, "FAILED_PRECONDITION");
    expect(error.message).toContain("disabled");
    expect(restarted.unwrapped).toHaveLength(1);
    expect(isZero(restarted.unwrapped[0]!)).toBe(true);
    await expectCode(() => open(reader, underB1), "FAILED_PRECONDITION");
    expect(restarted.calls.unwrap).toBe(1);
  });

  it("fails Status (a gRPC error) and Encrypt while no version is usable, and recovers", async () => {
    const fake = fakeWrapper();
    const { observer, events } = recordingObserver();
    const service = await startedServiceFor(fake, { observer });
    const underA = seal(service);
    const [seedA] = fake.wrappedSeeds;
    fake.disable(A);
    await service.poll();

    const status = await expectCode(() => service.status(), "FAILED_PRECONDITION");
    expect(status.message).toContain(
      `no usable version of key kms-key in Key Vault: ${A} is disabled`,
    );
    const encrypt = await expectCode(
      () => service.encrypt(randomBytes(32), ctx()),
      "FAILED_PRECONDITION",
    );
    expect(encrypt.message).toBe(status.message);
    await expectCode(() => open(service, underA), "FAILED_PRECONDITION");
    expect(isZero(seedA!)).toBe(true);
    expect(events).toContain("current - -");

    fake.enable(A);
    await service.poll();
    expect(service.status()).toMatchObject({ healthz: "ok", keyId: keyIdOf(keyOf(fake, A)) });
    expect(seal(service).result.keyId).toBe(keyIdOf(keyOf(fake, A)));
    await expectOpens(service, underA);
  });

  it("treats a deleted key like every version revoked, and recovers with it", async () => {
    const fake = fakeWrapper();
    const service = await startedServiceFor(fake);
    fake.rotate(B);
    await service.poll();
    const underB = seal(service);
    fake.deleteKey();
    await service.poll();
    const status = await expectCode(() => service.status(), "FAILED_PRECONDITION");
    expect(status.message).toContain(`${B} is deleted`);
    await expectCode(() => service.encrypt(randomBytes(32), ctx()), "FAILED_PRECONDITION");
    const decrypt = await expectCode(() => open(service, underB), "FAILED_PRECONDITION");
    expect(decrypt.message).toContain(`${B} of kms-key is deleted`);

    fake.recoverKey();
    await service.poll();
    expect(service.status().keyId).toBe(keyIdOf(keyOf(fake, B)));
    await expectOpens(service, underB);
  });

  it("fails Status when the current version is revoked and the wrap under its successor fails", async () => {
    const fake = fakeWrapper();
    const service = await startedServiceFor(fake);
    fake.rotate(B);
    fake.disable(A);
    fake.failNextWraps(1, new KmsError("UNAVAILABLE", "Key Vault answered 503"));
    await service.poll();
    const error = await expectCode(() => service.status(), "UNAVAILABLE");
    expect(error.message).toContain(`${A} is disabled`);
    expect(error.message).toContain(B);
    await expectCode(() => service.encrypt(randomBytes(32), ctx()), "UNAVAILABLE");

    await service.poll();
    expect(service.status().keyId).toBe(keyIdOf(keyOf(fake, B)));
  });

  it("counts revocations only for the configured key, not for extra allowlisted ones", async () => {
    // An old key, allowlisted for migration, whose version string equals a revoked one.
    const old = new FakeKeyWrapper({ keyPair: sharedKeyPair(), keyName: "old-key", keyVersion: A });
    const underOld = seal(await startedServiceFor(old));
    const main = fakeWrapper();
    const underA = seal(await startedServiceFor(main.withSameKeys()));
    main.rotate(B);
    main.disable(A);
    const wrapper: KeyWrapper = {
      refresh: () => main.refresh(),
      wrap: (seed, key) => main.wrap(seed, key),
      unwrap: (wrapped, options) =>
        (wrapped.key.keyName === "old-key" ? old : main).unwrap(wrapped, options),
      decryptLegacy: (...args) => main.decryptLegacy(...args),
    };
    const service = createKmsService({
      wrapper,
      allowlist: new KeyAllowlist(main.currentKey(), [old.currentKey()]),
      pollIntervalMs: 0,
    });
    await service.start();
    await expectOpens(service, underOld);
    await expectCode(() => open(service, underA), "FAILED_PRECONDITION");
  });
});

describe("a failed refresh", () => {
  const failures: [KmsErrorCode, string][] = [
    ["UNAVAILABLE", "Key Vault answered 503"],
    ["UNAVAILABLE", "Key Vault answered 429"],
    ["PERMISSION_DENIED", "Key Vault answered 403"],
    ["UNAUTHENTICATED", "Key Vault answered 401"],
    ["INTERNAL", "internal error during key refresh"],
  ];

  it.each(failures)("(%s, %s) changes nothing and drops nothing", async (code, message) => {
    const fake = fakeWrapper();
    const { observer, events } = recordingObserver();
    const service = await startedServiceFor(fake, { observer });
    const underA = seal(service);
    fake.rotate(B);
    await service.poll();
    const underB = seal(service);
    const keyId = service.status().keyId;
    // What a successful refresh would now act on: a newer version and B disabled.
    fake.rotate(C);
    fake.disable(B);
    events.length = 0;

    fake.failNextRefreshes(3, new KmsError(code, message));
    for (let i = 0; i < 3; i++) await expect(service.poll()).resolves.toBeUndefined();
    expect(events).toEqual([`failed ${code}`, `failed ${code}`, `failed ${code}`]);
    expect(service.status()).toMatchObject({ healthz: "ok", keyId });
    expect(seal(service).result.keyId).toBe(keyId);
    await expectOpens(service, underA);
    await expectOpens(service, underB);
    expect(fake.calls).toMatchObject({ wrap: 2, unwrap: 0 });

    await service.poll();
    expect(service.status().keyId).toBe(keyIdOf(keyOf(fake, C)));
    await expectCode(() => open(service, underB), "FAILED_PRECONDITION");
  });

  it("that is not a KmsError is reported as INTERNAL, and poll still resolves", async () => {
    const fake = fakeWrapper();
    const { observer, events } = recordingObserver();
    let broken = false;
    const wrapper: KeyWrapper = {
      refresh: () => (broken ? Promise.reject(new TypeError("raw")) : fake.refresh()),
      wrap: (seed, key) => fake.wrap(seed, key),
      unwrap: (wrapped, options) => fake.unwrap(wrapped, options),
      decryptLegacy: (...args) => fake.decryptLegacy(...args),
    };
    const service = createKmsService({
      wrapper,
      allowlist: new KeyAllowlist(fake.currentKey()),
      pollIntervalMs: 0,
      observer,
    });
    await service.start();
    broken = true;
    await expect(service.poll()).resolves.toBeUndefined();
    expect(events.at(-1)).toBe("failed INTERNAL");
    expect(service.status().healthz).toBe("ok");
  });
});

describe("start", () => {
  it("says why when reading the key fails, and recovers on the next start", async () => {
    const fake = fakeWrapper();
    fake.failNextRefreshes(1, new KmsError("UNAVAILABLE", "Key Vault unreachable"));
    const service = serviceFor(fake);
    await expectCode(() => service.start(), "UNAVAILABLE");
    expect(service.status().healthz).toMatch(
      /^not ready: reading the key failed \(UNAVAILABLE: .+\)$/,
    );
    expect(service.status().keyId).toBe("");
    expect(fake.calls.wrap).toBe(0);
    await service.start();
    expect(service.status().healthz).toBe("ok");
  });

  it("fails with FAILED_PRECONDITION when no version is usable, and recovers", async () => {
    const fake = fakeWrapper();
    fake.disable(A);
    const service = serviceFor(fake);
    const error = await expectCode(() => service.start(), "FAILED_PRECONDITION");
    // KeyState cannot list versions, so with no seed yet there is no version to name.
    expect(error.message).toContain("no usable version of key kms-key in Key Vault");
    // Not ready yet (nothing to stop): healthz says why; Encrypt names the version.
    expect(service.status().healthz).toMatch(
      /^not ready: no usable key version \(FAILED_PRECONDITION: no usable version of key .+\)$/,
    );
    const encrypt = await expectCode(
      () => service.encrypt(randomBytes(32), ctx()),
      "FAILED_PRECONDITION",
    );
    expect(encrypt.message).toContain("no usable version of key kms-key");
    fake.enable(A);
    await service.start();
    expect(service.status().keyId).toBe(keyIdOf(keyOf(fake, A)));
  });
});
