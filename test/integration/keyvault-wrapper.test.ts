/** The Key Vault KeyWrapper over the unmodified Azure SDK, against the emulator over HTTPS. */
import { randomBytes } from "node:crypto";
import { ClientSecretCredential } from "@azure/identity";
import { createEmulator, type Emulator } from "@keyvault-kms/emulator";
import { emulatorCredential, emulatorWrapper } from "../helpers/emulator-wrapper.js";
import type { KeyVaultWrapperOptions } from "../../src/keyvault/index.js";
import { KmsError, type KmsErrorCode } from "../../src/kms/index.js";
import type { KeyReference, KeyState } from "../../src/kms/key-wrapper.js";
import { requestsSeen, totalRequests } from "../helpers/emulator-counters.js";

let emu: Emulator;
beforeAll(async () => {
  emu = await createEmulator();
});
afterAll(async () => {
  await emu.close();
});

let keyCount = 0;
/** A fresh key per scenario, so rotations in one never leak into another. */
async function newKey(keyOps?: string[]): Promise<{ name: string; version: string }> {
  const name = `kek-${++keyCount}`;
  const { version } = await emu.createKey({
    name,
    kty: "RSA",
    ...(keyOps === undefined ? {} : { keyOps }),
  });
  return { name, version };
}

function wrapperFor(keyName: string, overrides: Partial<KeyVaultWrapperOptions> = {}) {
  return emulatorWrapper(emu, keyName, (name) => name.startsWith("kek-"), overrides);
}

async function kmsCode(promise: Promise<unknown>): Promise<KmsErrorCode> {
  try {
    await promise;
  } catch (err) {
    if (err instanceof KmsError) return err.code;
    throw new Error(`not a KmsError: ${String(err)}`, { cause: err });
  }
  throw new Error("expected a failure");
}

const AUTH_OPERATIONS = new Set(["token", "openid", "challenge"]);

/** Every request the emulator saw since the last reset, zero counts left out. */
function requests(): Record<string, number> {
  return requestsSeen(emu.counters());
}

/** Key Vault requests only: token and bearer-challenge round trips left out. */
function keyVaultRequests(): Record<string, number> {
  return Object.fromEntries(
    Object.entries(requests()).filter(([operation]) => !AUTH_OPERATIONS.has(operation)),
  );
}

function current(state: KeyState): KeyReference {
  if (state.current === undefined) throw new Error("expected a current key version");
  return state.current;
}

const inOneHour = () => Math.floor(Date.now() / 1000) + 3600;
const anHourAgo = () => Math.floor(Date.now() / 1000) - 3600;

describe("refresh follows the newest usable version", () => {
  it("first refresh = 1 list + 1 get; steady state = exactly 1 list; promotion = 1 list + 1 get", async () => {
    const { name, version } = await newKey();
    const w = wrapperFor(name);

    emu.resetCounters();
    const first = await w.refresh();
    expect(current(first)).toEqual({
      vaultHost: new URL(emu.vaultUrl).host,
      keyName: name,
      keyVersion: version,
    });
    expect(keyVaultRequests()).toEqual({ list: 1, get: 1 });

    emu.resetCounters();
    const steady = await w.refresh();
    expect(current(steady).keyVersion).toBe(version);
    expect(requests()).toEqual({ list: 1 });

    const rotated = await emu.rotateKey(name);
    emu.resetCounters();
    const promoted = await w.refresh();
    expect(current(promoted).keyVersion).toBe(rotated.version);
    expect(requests()).toEqual({ list: 1, get: 1 });
    expect(promoted.revocation(version)).toBeUndefined();
    expect(promoted.revocation(rotated.version)).toBeUndefined();
    expect(promoted.revocation("00000000000000000000000000000000")).toBeUndefined();

    emu.resetCounters();
    expect(current(await w.refresh()).keyVersion).toBe(rotated.version);
    expect(requests()).toEqual({ list: 1 });
  });

  it("disabling the newest moves back to the previous usable version; re-enabling restores it", async () => {
    const { name, version: older } = await newKey();
    const { version: newest } = await emu.rotateKey(name);
    const w = wrapperFor(name);
    expect(current(await w.refresh()).keyVersion).toBe(newest);

    emu.updateKeyVersion(name, newest, { enabled: false });
    emu.resetCounters();
    const state = await w.refresh();
    expect(current(state).keyVersion).toBe(older);
    expect(state.revocation(newest)).toBe("disabled");
    expect(state.revocation(older)).toBeUndefined();
    expect(requests()).toEqual({ list: 1, get: 1 });

    emu.updateKeyVersion(name, newest, { enabled: true });
    emu.resetCounters();
    const back = await w.refresh();
    expect(current(back).keyVersion).toBe(newest);
    expect(back.revocation(newest)).toBeUndefined();
    // Both versions are loaded by now: switching between them needs only the list.
    expect(requests()).toEqual({ list: 1 });
  });

  it("never makes current a version before its nbf or past its exp, but does not revoke them", async () => {
    const { name, version: older } = await newKey();
    const { version: middle } = await emu.rotateKey(name);
    const { version: newest } = await emu.rotateKey(name);
    emu.updateKeyVersion(name, newest, { nbf: inOneHour() });
    emu.updateKeyVersion(name, middle, { exp: anHourAgo() });
    const state = await wrapperFor(name).refresh();
    expect(current(state).keyVersion).toBe(older);
    // Key Vault still unwraps with an expired key: data under it stays readable.
    expect(state.revocation(newest)).toBeUndefined();
    expect(state.revocation(middle)).toBeUndefined();
    expect(state.revocation(older)).toBeUndefined();
  });

  it("no usable version at all → current undefined, every version revoked", async () => {
    const { name, version } = await newKey();
    emu.updateKeyVersion(name, version, { enabled: false });
    emu.resetCounters();
    const state = await wrapperFor(name).refresh();
    expect(state.current).toBeUndefined();
    expect(state.revocation(version)).toBe("disabled");
    expect(keyVaultRequests()).toEqual({ list: 1 });
  });

  it("a deleted key → current undefined and every version 'deleted'; its loaded key no longer wraps", async () => {
    const { name, version } = await newKey();
    const w = wrapperFor(name);
    const before = current(await w.refresh());
    emu.deleteKey(name);
    const state = await w.refresh();
    expect(state.current).toBeUndefined();
    expect(state.revocation(version)).toBe("deleted");
    expect(state.revocation("anything")).toBe("deleted");
    expect(await kmsCode(w.wrap(randomBytes(32), before))).toBe("FAILED_PRECONDITION");
  });

  it("a key that never existed reads as deleted too (Key Vault answers KeyNotFound)", async () => {
    const state = await wrapperFor("kek-no-such-key").refresh();
    expect(state.current).toBeUndefined();
    expect(state.revocation("0123")).toBe("deleted");
  });
});

describe("pinned --key-version", () => {
  it("stays pinned across rotations (one list per refresh) and is revoked when disabled", async () => {
    const { name, version: pin } = await newKey();
    await emu.rotateKey(name);
    const w = wrapperFor(name, { keyVersion: pin });

    emu.resetCounters();
    expect(current(await w.refresh()).keyVersion).toBe(pin);
    expect(keyVaultRequests()).toEqual({ list: 1, get: 1 });

    await emu.rotateKey(name);
    emu.resetCounters();
    expect(current(await w.refresh()).keyVersion).toBe(pin);
    expect(requests()).toEqual({ list: 1 });

    emu.updateKeyVersion(name, pin, { enabled: false });
    const disabled = await w.refresh();
    expect(disabled.current).toBeUndefined();
    expect(disabled.revocation(pin)).toBe("disabled");

    emu.updateKeyVersion(name, pin, { enabled: true });
    const restored = await w.refresh();
    expect(current(restored).keyVersion).toBe(pin);
    expect(restored.revocation(pin)).toBeUndefined();
  });

  it("a pinned version the key does not have → FAILED_PRECONDITION (a typo, not a revocation)", async () => {
    const { name } = await newKey();
    const w = wrapperFor(name, { keyVersion: "0123456789abcdef0123456789abcdef" });
    expect(await kmsCode(w.refresh())).toBe("FAILED_PRECONDITION");
  });
});

describe("versions created within the same second", () => {
  let name: string;
  let first: string;
  let second: string;

  /** Two rotations inside one wall-clock second, the later one with the smaller version string. */
  beforeAll(async () => {
    ({ name } = await newKey());
    for (let attempt = 0; attempt < 40; attempt++) {
      await new Promise((r) => setTimeout(r, 1000 - (Date.now() % 1000) + 5));
      const start = Math.floor(Date.now() / 1000);
      const a = (await emu.rotateKey(name)).version;
      const b = (await emu.rotateKey(name)).version;
      if (Math.floor(Date.now() / 1000) === start && b < a) {
        [first, second] = [a, b];
        return;
      }
    }
    throw new Error("could not make two versions within one second");
  }, 60_000);

  it("takes Key Vault's current version (one version-less GET), then settles it once", async () => {
    const w = wrapperFor(name);
    emu.resetCounters();
    const state = await w.refresh();
    // The greatest version string would be `first`: only the GET can pick `second`.
    expect(current(state).keyVersion).toBe(second);
    // The version-less GET returned the whole key, so it also loaded it.
    expect(keyVaultRequests()).toEqual({ list: 1, get: 1 });

    emu.resetCounters();
    expect(current(await w.refresh()).keyVersion).toBe(second);
    expect(requests()).toEqual({ list: 1 });
  });

  it("when Key Vault's current version is not among the tied, the greatest version string wins", async () => {
    const w = wrapperFor(name);
    expect(current(await w.refresh()).keyVersion).toBe(second);
    const { version: third } = await emu.rotateKey(name);
    emu.updateKeyVersion(name, third, { enabled: false });
    try {
      const state = await w.refresh();
      expect(current(state).keyVersion).toBe(first);
      expect(state.revocation(third)).toBe("disabled");
      const fresh = await wrapperFor(name).refresh();
      expect(current(fresh).keyVersion).toBe(first);
    } finally {
      emu.updateKeyVersion(name, third, { enabled: true });
    }
  });
});

describe("wrap and unwrap", () => {
  it("wraps under the current version locally (no Key Vault request) and unwraps with one call", async () => {
    const { name } = await newKey();
    const w = wrapperFor(name);
    const key = current(await w.refresh());
    const seed = randomBytes(32);
    emu.resetCounters();
    const wrapped = await w.wrap(seed, key);
    expect(wrapped.algorithm).toBe("RSA-OAEP-256");
    expect(wrapped.key).toEqual(key);
    expect(requests()).toEqual({});
    const back = await w.unwrap(wrapped);
    expect(Buffer.from(back).equals(seed)).toBe(true);
    expect(keyVaultRequests()).toEqual({ unwrapkey: 1 });
  });

  it("concurrent first unwraps on a new client pay Key Vault's 401 challenge once, not each", async () => {
    const { name } = await newKey();
    const w = wrapperFor(name);
    const key = current(await w.refresh());
    const seeds = Array.from({ length: 8 }, () => randomBytes(32));
    const wrapped = await Promise.all(seeds.map((seed) => w.wrap(seed, key)));
    emu.resetCounters();
    const back = await Promise.all(wrapped.map((x) => w.unwrap(x)));
    back.forEach((b, i) => {
      expect(Buffer.from(b).equals(seeds[i] as Buffer)).toBe(true);
    });
    // The credential already holds a token (refresh): no token request either.
    expect(requests()).toEqual({ challenge: 1, unwrapkey: 8 });
  });

  it("unwraps seeds of older versions with that exact version, loaded or not", async () => {
    const { name } = await newKey();
    const w = wrapperFor(name);
    const old = current(await w.refresh());
    const seed = randomBytes(32);
    const wrapped = await w.wrap(seed, old);
    await emu.rotateKey(name);
    const now = current(await w.refresh());
    expect(now.keyVersion).not.toBe(old.keyVersion);

    // The old version was loaded by an earlier refresh: its client needs no GET.
    emu.resetCounters();
    expect(Buffer.from(await w.unwrap(wrapped)).equals(seed)).toBe(true);
    expect(keyVaultRequests()).toEqual({ unwrapkey: 1 });

    // A process that never loaded it reaches it by its versioned kid.
    const other = wrapperFor(name);
    expect(current(await other.refresh()).keyVersion).toBe(now.keyVersion);
    expect(Buffer.from(await other.unwrap(wrapped)).equals(seed)).toBe(true);
  });

  it("refuses to wrap under a version refresh did not load → INTERNAL", async () => {
    const { name } = await newKey();
    const w = wrapperFor(name);
    const key = current(await w.refresh());
    const { version } = await emu.rotateKey(name);
    emu.resetCounters();
    expect(await kmsCode(w.wrap(randomBytes(32), { ...key, keyVersion: version }))).toBe(
      "INTERNAL",
    );
    expect(await kmsCode(w.wrap(randomBytes(32), { ...key, keyName: "kek-other" }))).toBe(
      "INTERNAL",
    );
    expect(requests()).toEqual({});
  });

  it("makes no request for a key that is not allowlisted", async () => {
    const { name } = await newKey();
    const w = wrapperFor(name);
    const wrapped = await w.wrap(randomBytes(32), current(await w.refresh()));
    emu.resetCounters();
    const code = await kmsCode(
      w.unwrap({ ...wrapped, key: { ...wrapped.key, vaultHost: "evil.example.com" } }),
    );
    expect(code).toBe("FAILED_PRECONDITION");
    expect(totalRequests(emu.counters())).toBe(0);
  });
});

describe("keys that cannot wrap seeds", () => {
  it("a newest version without wrapKey/unwrapKey in key_ops → FAILED_PRECONDITION", async () => {
    const { name } = await newKey();
    await emu.createKey({ name, kty: "RSA", keyOps: ["sign", "verify"] });
    expect(await kmsCode(wrapperFor(name).refresh())).toBe("FAILED_PRECONDITION");
  });

  it("a key that never permitted wrapKey/unwrapKey → FAILED_PRECONDITION", async () => {
    const { name } = await newKey(["sign", "verify", "unwrapKey"]);
    expect(await kmsCode(wrapperFor(name).refresh())).toBe("FAILED_PRECONDITION");
  });
});

describe("refresh failures throw and never revoke", () => {
  let name: string;
  let w: ReturnType<typeof wrapperFor>;
  beforeAll(async () => {
    ({ name } = await newKey());
    w = wrapperFor(name);
    await w.refresh();
  });
  afterEach(() => {
    emu.clearFaults();
  });

  it.each([
    ["503 on every try", { kind: "503" as const }],
    ["500 on every try", { kind: "500" as const }],
    ["429 without Retry-After", { kind: "429" as const }],
    ["connection reset on every try", { kind: "reset" as const }],
  ])("list: %s → UNAVAILABLE", async (_name, fault) => {
    emu.addFault({ operation: "list", ...fault });
    expect(await kmsCode(w.refresh())).toBe("UNAVAILABLE");
    emu.clearFaults();
    expect((await w.refresh()).current).toBeDefined();
  });

  it("a promotion whose GET fails → UNAVAILABLE; the next refresh promotes", async () => {
    const { version } = await emu.rotateKey(name);
    emu.addFault({ operation: "get", kind: "503" });
    expect(await kmsCode(w.refresh())).toBe("UNAVAILABLE");
    emu.clearFaults();
    expect(current(await w.refresh()).keyVersion).toBe(version);
  });

  it("a wrong client secret → UNAUTHENTICATED", async () => {
    const badSecret = wrapperFor(name, {
      credential: new ClientSecretCredential(emu.tenantId, emu.clientId, "wrong", {
        authorityHost: emu.authorityHost,
        disableInstanceDiscovery: true,
        tlsOptions: { ca: emu.caPem },
      }),
    });
    expect(await kmsCode(badSecret.refresh())).toBe("UNAUTHENTICATED");
  });

  it("a failing token endpoint → UNAVAILABLE", async () => {
    emu.addFault({ operation: "token", kind: "503" });
    expect(await kmsCode(wrapperFor(name).refresh())).toBe("UNAVAILABLE");
  });

  it("an untrusted TLS certificate (no --ca-file) → UNAVAILABLE", async () => {
    const noCa = wrapperFor(name, {
      caPem: undefined as unknown as string,
      credential: emulatorCredential(emu, false),
    });
    expect(await kmsCode(noCa.refresh())).toBe("UNAVAILABLE");
  });
});

describe("unwrap failures map to the architecture's codes", () => {
  let w: ReturnType<typeof wrapperFor>;
  let wrapped: Awaited<ReturnType<typeof w.wrap>>;
  beforeAll(async () => {
    const { name } = await newKey();
    w = wrapperFor(name);
    wrapped = await w.wrap(randomBytes(32), current(await w.refresh()));
  });
  afterEach(() => {
    emu.clearFaults();
  });

  it("a wrapped seed Key Vault cannot unwrap → INVALID_ARGUMENT", async () => {
    expect(await kmsCode(w.unwrap({ ...wrapped, wrapped: randomBytes(256) }))).toBe(
      "INVALID_ARGUMENT",
    );
  });

  it.each([
    ["429 without Retry-After", { kind: "429" as const }],
    ["503 on every try", { kind: "503" as const }],
    ["connection reset on every try", { kind: "reset" as const }],
  ])("%s → UNAVAILABLE", async (_name, fault) => {
    emu.addFault({ operation: "unwrapkey", ...fault });
    expect(await kmsCode(w.unwrap(wrapped))).toBe("UNAVAILABLE");
  });

  it("a disabled version → FAILED_PRECONDITION", async () => {
    const { keyName, keyVersion } = wrapped.key;
    emu.updateKeyVersion(keyName, keyVersion, { enabled: false });
    try {
      expect(await kmsCode(w.unwrap(wrapped))).toBe("FAILED_PRECONDITION");
    } finally {
      emu.updateKeyVersion(keyName, keyVersion, { enabled: true });
    }
  });
});
