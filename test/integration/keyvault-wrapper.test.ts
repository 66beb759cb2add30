/** The Key Vault KeyWrapper over the unmodified Azure SDK, against the emulator over HTTPS. */
import { randomBytes } from "node:crypto";
import { ClientSecretCredential } from "@azure/identity";
import { createEmulator, type Emulator } from "../../src/emulator/index.js";
import { createCredential, createKeyVaultWrapper } from "../../src/keyvault/index.js";
import type { KeyVaultWrapperOptions } from "../../src/keyvault/index.js";
import { KmsError, type KmsErrorCode } from "../../src/kms/index.js";

let emu: Emulator;
beforeAll(async () => {
  emu = await createEmulator({ keys: [{ name: "kek", kty: "RSA" }] });
});
afterAll(async () => {
  await emu.close();
});

function wrapperFor(overrides: Partial<KeyVaultWrapperOptions> = {}) {
  const vaultHost = new URL(emu.vaultUrl).host;
  return createKeyVaultWrapper({
    vaultUrl: emu.vaultUrl,
    vaultHost,
    keyName: "kek",
    keyVersion: "",
    credential: createCredential({
      identity: {
        kind: "client-secret",
        tenantId: emu.tenantId,
        clientId: emu.clientId,
        clientSecret: emu.clientSecret,
      },
      authorityHost: emu.authorityHost,
      caPem: emu.caPem,
    }),
    caPem: emu.caPem,
    userAgent: "keyvault-kms-test",
    isAllowed: (ref) => ref.vaultHost === vaultHost && ref.keyName.toLowerCase() === "kek",
    ...overrides,
  });
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

describe("key version resolution", () => {
  let versions: string[];
  beforeAll(async () => {
    versions = [(await emu.rotateKey("kek")).version, (await emu.rotateKey("kek")).version];
  });

  it("uses the newest enabled version when --key-version is empty", async () => {
    const w = wrapperFor();
    await w.init();
    expect(w.currentKey().keyVersion).toBe(versions[1]);
  });

  it("skips a disabled newest version and one outside its nbf/exp window", async () => {
    emu.updateKeyVersion("kek", versions[1]!, { enabled: false });
    emu.updateKeyVersion("kek", versions[0]!, { nbf: Math.floor(Date.now() / 1000) + 3600 });
    try {
      const w = wrapperFor();
      await w.init();
      expect(versions).not.toContain(w.currentKey().keyVersion);
    } finally {
      emu.updateKeyVersion("kek", versions[1]!, { enabled: true });
      emu.updateKeyVersion("kek", versions[0]!, { nbf: null });
    }
  });

  it("keeps a pinned --key-version even when newer ones exist, and refuses a disabled pin", async () => {
    const w = wrapperFor({ keyVersion: versions[0]! });
    await w.init();
    expect(w.currentKey().keyVersion).toBe(versions[0]);
    emu.updateKeyVersion("kek", versions[0]!, { enabled: false });
    try {
      expect(await kmsCode(wrapperFor({ keyVersion: versions[0]! }).init())).toBe(
        "FAILED_PRECONDITION",
      );
    } finally {
      emu.updateKeyVersion("kek", versions[0]!, { enabled: true });
    }
  });

  it("reads the key with one get when the latest version is usable", async () => {
    emu.resetCounters();
    await wrapperFor().init();
    const c = emu.counters();
    expect([c["list"], c["get"]]).toEqual([0, 1]);
  });
});

describe("wrap and unwrap", () => {
  it("wraps locally with the public key (no wrapkey call) and unwraps with one call", async () => {
    const w = wrapperFor();
    await w.init();
    const seed = randomBytes(32);
    emu.resetCounters();
    const wrapped = await w.wrap(seed);
    expect(wrapped.algorithm).toBe("RSA-OAEP-256");
    expect(emu.counters()["wrapkey"]).toBe(0);
    const back = await w.unwrap(wrapped);
    expect(Buffer.from(back).equals(seed)).toBe(true);
    expect(emu.counters()["unwrapkey"]).toBe(1);
  });

  it("unwraps a seed of an older version with that exact version", async () => {
    const old = wrapperFor();
    await old.init();
    const seed = randomBytes(32);
    const wrapped = await old.wrap(seed);
    await emu.rotateKey("kek");
    const current = wrapperFor();
    await current.init();
    expect(current.currentKey().keyVersion).not.toBe(wrapped.key.keyVersion);
    expect(Buffer.from(await current.unwrap(wrapped)).equals(seed)).toBe(true);
  });

  it("makes no request for a key that is not allowlisted", async () => {
    const w = wrapperFor();
    await w.init();
    const wrapped = await w.wrap(randomBytes(32));
    emu.resetCounters();
    const code = await kmsCode(
      w.unwrap({ ...wrapped, key: { ...wrapped.key, vaultHost: "evil.example.com" } }),
    );
    expect(code).toBe("FAILED_PRECONDITION");
    expect(Object.values(emu.counters()).reduce((a, b) => a + b, 0)).toBe(0);
  });
});

describe("failures map to the architecture's codes", () => {
  let w: ReturnType<typeof wrapperFor>;
  let wrapped: Awaited<ReturnType<typeof w.wrap>>;
  beforeAll(async () => {
    w = wrapperFor();
    await w.init();
    wrapped = await w.wrap(randomBytes(32));
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
    emu.updateKeyVersion("kek", wrapped.key.keyVersion, { enabled: false });
    try {
      expect(await kmsCode(w.unwrap(wrapped))).toBe("FAILED_PRECONDITION");
    } finally {
      emu.updateKeyVersion("kek", wrapped.key.keyVersion, { enabled: true });
    }
  });

  it("a wrong client secret → UNAUTHENTICATED; an unknown key → FAILED_PRECONDITION", async () => {
    const badSecret = wrapperFor({
      credential: new ClientSecretCredential(emu.tenantId, emu.clientId, "wrong", {
        authorityHost: emu.authorityHost,
        disableInstanceDiscovery: true,
        tlsOptions: { ca: emu.caPem },
      }),
    });
    expect(await kmsCode(badSecret.init())).toBe("UNAUTHENTICATED");
    expect(await kmsCode(wrapperFor({ keyName: "no-such-key" }).init())).toBe(
      "FAILED_PRECONDITION",
    );
  });

  it("a failing token endpoint → UNAVAILABLE", async () => {
    emu.addFault({ operation: "token", kind: "503" });
    expect(await kmsCode(wrapperFor().init())).toBe("UNAVAILABLE");
  });

  it("an untrusted TLS certificate (no --ca-file) → UNAVAILABLE", async () => {
    const noCa = wrapperFor({
      caPem: undefined as unknown as string,
      credential: createCredential({
        identity: {
          kind: "client-secret",
          tenantId: emu.tenantId,
          clientId: emu.clientId,
          clientSecret: emu.clientSecret,
        },
        authorityHost: emu.authorityHost,
      }),
    });
    expect(await kmsCode(noCa.init())).toBe("UNAVAILABLE");
  });

  it("a key that does not permit wrapKey/unwrapKey → FAILED_PRECONDITION", async () => {
    await emu.createKey({ name: "sign-only", kty: "RSA", keyOps: ["sign", "verify"] });
    expect(await kmsCode(wrapperFor({ keyName: "sign-only" }).init())).toBe("FAILED_PRECONDITION");
  });
});
