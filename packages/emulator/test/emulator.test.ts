import { constants, createPublicKey, publicEncrypt, randomBytes } from "node:crypto";
import { createEmulator, type Emulator } from "@keyvault-kms/emulator";
import {
  emulatorClients,
  failure,
  type EmulatorClients,
} from "../../../test/helpers/emulator-clients.js";

const VERSION = /^[0-9a-f]{32}$/;

describe("emulator: Key Vault keys API through the unmodified Azure SDK", () => {
  let emu: Emulator;
  let sdk: EmulatorClients;

  beforeAll(async () => {
    emu = await createEmulator({
      keys: [
        { name: "rsa", kty: "RSA" },
        { name: "rsa-hsm", kty: "RSA-HSM" },
        { name: "aes", kty: "oct-HSM" },
      ],
    });
    sdk = emulatorClients(emu);
  });

  afterAll(async () => {
    await emu.close();
  });

  it("creates keys and new versions under an existing name", async () => {
    const first = await sdk.keys.createRsaKey("created", { keySize: 2048 });
    expect(first.id).toBe(`${emu.vaultUrl}/keys/created/${first.properties.version!}`);
    expect(first.properties.version).toMatch(VERSION);
    expect(first.keyType).toBe("RSA");
    expect(first.keyOperations).toEqual(
      expect.arrayContaining(["encrypt", "decrypt", "wrapKey", "unwrapKey"]),
    );
    expect(first.key?.e).toEqual(new Uint8Array([1, 0, 1]));
    expect(first.key?.n?.length).toBe(256);
    expect(first.properties.enabled).toBe(true);
    expect(first.properties.recoveryLevel).toBe("Recoverable+Purgeable");

    const second = await sdk.keys.createKey("created", "RSA", { tags: { team: "kms" } });
    expect(second.properties.version).not.toBe(first.properties.version);
    expect(second.properties.tags).toEqual({ team: "kms" });

    const latest = await sdk.keys.getKey("created");
    expect(latest.id).toBe(second.id);
    const old = await sdk.keys.getKey("created", { version: first.properties.version! });
    expect(old.id).toBe(first.id);
  });

  it("answers 404 KeyNotFound for unknown keys and versions", async () => {
    const missing = await failure(sdk.keys.getKey("no-such-key"));
    expect(missing).toMatchObject({ statusCode: 404, code: "KeyNotFound" });
    const badVersion = await failure(sdk.keys.getKey("rsa", { version: "0".repeat(32) }));
    expect(badVersion).toMatchObject({ statusCode: 404, code: "KeyNotFound" });
  });

  it("rotates and lists versions page by page", async () => {
    const v1 = await sdk.keys.createRsaKey("listed");
    const v2 = await sdk.keys.rotateKey("listed");
    const v3 = await sdk.keys.rotateKey("listed");
    expect(v3.keyType).toBe("RSA");
    expect((await sdk.keys.getKey("listed")).id).toBe(v3.id);

    const pages: string[][] = [];
    for await (const page of sdk.keys
      .listPropertiesOfKeyVersions("listed")
      .byPage({ maxPageSize: 2 })) {
      pages.push(page.map((p) => p.id!));
    }
    expect(pages).toEqual([[v1.id, v2.id], [v3.id]]);

    const all: string[] = [];
    for await (const props of sdk.keys.listPropertiesOfKeyVersions("listed")) all.push(props.id!);
    expect(all).toEqual([v1.id, v2.id, v3.id]);
  });

  it("updates attributes, key_ops and tags of one version", async () => {
    const key = await sdk.keys.createRsaKey("updated");
    const version = key.properties.version!;
    const expiresOn = new Date(Math.floor(Date.now() / 1000 + 86_400) * 1000);
    const notBefore = new Date(Math.floor(Date.now() / 1000 - 60) * 1000);
    const updated = await sdk.keys.updateKeyProperties("updated", version, {
      enabled: false,
      expiresOn,
      notBefore,
      keyOps: ["wrapKey", "unwrapKey"],
      tags: { state: "retired" },
    });
    expect(updated.properties.enabled).toBe(false);
    expect(updated.properties.expiresOn).toEqual(expiresOn);
    expect(updated.properties.notBefore).toEqual(notBefore);
    expect(updated.keyOperations).toEqual(["wrapKey", "unwrapKey"]);
    expect(updated.properties.tags).toEqual({ state: "retired" });
    const read = await sdk.keys.getKey("updated", { version });
    expect(read.properties.enabled).toBe(false);
    expect(read.properties.updatedOn!.getTime()).toBeGreaterThanOrEqual(
      read.properties.createdOn!.getTime(),
    );
  });

  it("deletes (soft), recovers, purges, and then reuses the name", async () => {
    await sdk.keys.createRsaKey("deleted");
    const poller = await sdk.keys.beginDeleteKey("deleted", { intervalInMs: 10 });
    const deleted = await poller.pollUntilDone();
    expect(deleted.name).toBe("deleted");
    expect(deleted.properties.recoveryId).toBe(`${emu.vaultUrl}/deletedkeys/deleted`);
    expect(await failure(sdk.keys.getKey("deleted"))).toMatchObject({ statusCode: 404 });
    expect(await failure(sdk.keys.createRsaKey("deleted"))).toMatchObject({
      statusCode: 409,
      code: "Conflict",
    });
    const recovered = await (
      await sdk.keys.beginRecoverDeletedKey("deleted", { intervalInMs: 10 })
    ).pollUntilDone();
    expect(recovered.id).toBe(deleted.id);
    expect((await sdk.keys.getKey("deleted")).id).toBe(deleted.id);
    await (await sdk.keys.beginDeleteKey("deleted", { intervalInMs: 10 })).pollUntilDone();
    await sdk.keys.purgeDeletedKey("deleted");
    expect(await failure(sdk.keys.getDeletedKey("deleted"))).toMatchObject({ statusCode: 404 });
    const again = await sdk.keys.createRsaKey("deleted");
    expect(again.properties.version).toMatch(VERSION);
  });

  const dek = randomBytes(32);

  it.each(["rsa", "rsa-hsm"])(
    "wraps and unwraps with RSA-OAEP-256 through the service (%s)",
    async (name) => {
      const key = await sdk.keys.getKey(name);
      const crypto = sdk.crypto(key.id!);
      const before = emu.counters();
      const wrapped = await crypto.wrapKey("RSA-OAEP-256", dek);
      expect(wrapped.keyID).toBe(key.id);
      expect(wrapped.result.length).toBe(256);
      const unwrapped = await crypto.unwrapKey("RSA-OAEP-256", wrapped.result);
      expect(Buffer.from(unwrapped.result)).toEqual(dek);
      const after = emu.counters();
      expect(after["wrapkey"]! - before["wrapkey"]!).toBe(1);
      expect(after["unwrapkey"]! - before["unwrapkey"]!).toBe(1);
    },
  );

  it("wraps and unwraps with an RSA 4096 key", async () => {
    const ref = await emu.createKey({ name: "rsa4096", kty: "RSA", size: 4096 });
    const crypto = sdk.crypto(ref.kid);
    const wrapped = await crypto.wrapKey("RSA-OAEP-256", dek);
    expect(wrapped.result.length).toBe(512);
    const unwrapped = await crypto.unwrapKey("RSA-OAEP-256", wrapped.result);
    expect(Buffer.from(unwrapped.result)).toEqual(dek);
  });

  it("encrypts and decrypts with RSA-OAEP-256, RSA-OAEP and RSA1_5", async () => {
    const key = await sdk.keys.getKey("rsa");
    const crypto = sdk.crypto(key.id!);
    const plaintext = Buffer.from("a legacy secret");

    const oaep256 = await crypto.encrypt({ algorithm: "RSA-OAEP-256", plaintext });
    const back256 = await crypto.decrypt({ algorithm: "RSA-OAEP-256", ciphertext: oaep256.result });
    expect(Buffer.from(back256.result)).toEqual(plaintext);

    // RSA-OAEP encrypts locally in the SDK; the service decrypts.
    const oaep = await crypto.encrypt({ algorithm: "RSA-OAEP", plaintext });
    const backOaep = await crypto.decrypt({ algorithm: "RSA-OAEP", ciphertext: oaep.result });
    expect(Buffer.from(backOaep.result)).toEqual(plaintext);

    // RSA1_5 the way the Go plugin's v1 ciphertexts were made, from the public JWK.
    const publicKey = createPublicKey({
      key: {
        kty: "RSA",
        n: Buffer.from(key.key!.n!).toString("base64url"),
        e: Buffer.from(key.key!.e!).toString("base64url"),
      },
      format: "jwk",
    });
    const rsa15 = publicEncrypt(
      { key: publicKey, padding: constants.RSA_PKCS1_PADDING },
      plaintext,
    );
    const back15 = await crypto.decrypt({ algorithm: "RSA1_5", ciphertext: rsa15 });
    expect(Buffer.from(back15.result)).toEqual(plaintext);
  });

  it("wraps and unwraps with A256KW on an oct-HSM key, never releasing k", async () => {
    const key = await sdk.keys.getKey("aes");
    expect(key.keyType).toBe("oct-HSM");
    expect(key.key?.k).toBeUndefined();
    const crypto = sdk.crypto(key.id!);
    const before = emu.counters();
    const wrapped = await crypto.wrapKey("A256KW", dek);
    expect(wrapped.result.length).toBe(40);
    const unwrapped = await crypto.unwrapKey("A256KW", wrapped.result);
    expect(Buffer.from(unwrapped.result)).toEqual(dek);
    expect(emu.counters()["wrapkey"]! - before["wrapkey"]!).toBe(1);

    const wrongAlg = await failure(crypto.unwrapKey("A128KW", wrapped.result));
    expect(wrongAlg).toMatchObject({ statusCode: 400, code: "BadParameter" });
  });

  it("answers 400 BadParameter for an unwrap of garbage", async () => {
    const key = await sdk.keys.getKey("rsa");
    const crypto = sdk.crypto(key.id!);
    const err = await failure(crypto.unwrapKey("RSA-OAEP-256", randomBytes(256)));
    expect(err).toMatchObject({
      statusCode: 400,
      code: "BadParameter",
      message: "The parameter is incorrect.",
    });
    const aes = sdk.crypto((await sdk.keys.getKey("aes")).id!);
    expect(await failure(aes.unwrapKey("A256KW", randomBytes(40)))).toMatchObject({
      statusCode: 400,
      code: "BadParameter",
    });
  });

  it("refuses crypto on a disabled version with 403 KeyDisabled", async () => {
    const ref = await emu.createKey({ name: "disabled", kty: "RSA" });
    const crypto = sdk.crypto(ref.kid);
    const wrapped = await crypto.wrapKey("RSA-OAEP-256", dek);
    emu.updateKeyVersion("disabled", ref.version, { enabled: false });
    for (const call of [
      crypto.wrapKey("RSA-OAEP-256", dek),
      crypto.unwrapKey("RSA-OAEP-256", wrapped.result),
    ]) {
      expect(await failure(call)).toMatchObject({
        statusCode: 403,
        code: "Forbidden",
        innerCode: "KeyDisabled",
      });
    }
    // A fresh client still reads the (disabled) key's metadata, then is refused.
    const fresh = sdk.crypto(ref.kid);
    expect(await failure(fresh.wrapKey("RSA-OAEP-256", dek))).toMatchObject({
      statusCode: 403,
      innerCode: "KeyDisabled",
    });
    emu.updateKeyVersion("disabled", ref.version, { enabled: true });
    const unwrapped = await crypto.unwrapKey("RSA-OAEP-256", wrapped.result);
    expect(Buffer.from(unwrapped.result)).toEqual(dek);
  });

  it("refuses new wraps outside nbf..exp but still unwraps (as documented)", async () => {
    const ref = await emu.createKey({ name: "dated", kty: "RSA" });
    const crypto = sdk.crypto(ref.kid);
    const wrapped = await crypto.wrapKey("RSA-OAEP-256", dek); // caches the key without exp
    const now = Math.floor(Date.now() / 1000);
    emu.updateKeyVersion("dated", ref.version, { exp: now - 10 });
    expect(await failure(crypto.wrapKey("RSA-OAEP-256", dek))).toMatchObject({
      statusCode: 403,
      innerCode: "KeyExpired",
    });
    const unwrapped = await crypto.unwrapKey("RSA-OAEP-256", wrapped.result);
    expect(Buffer.from(unwrapped.result)).toEqual(dek);
    emu.updateKeyVersion("dated", ref.version, { exp: null, nbf: now + 3600 });
    expect(await failure(crypto.wrapKey("RSA-OAEP-256", dek))).toMatchObject({
      statusCode: 403,
      innerCode: "KeyNotYetValid",
    });
  });
});
