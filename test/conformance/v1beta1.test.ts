/**
 * KMS v1 (`/v1beta1.KeyManagementService`) conformance, as kube-apiserver's v1 client uses it
 * (docs/kms-contract.md §1.3, §2.4): Version{version:"v1beta1"} once, then Encrypt/Decrypt carrying
 * version "v1beta1" with a fresh 32-byte DEK per write; health = Encrypt("ping") + Decrypt;
 * the encrypted DEK is stored behind a uint16 length, so it must be < 65536 bytes.
 */
import { randomBytes } from "node:crypto";
import { KeyManagementService as V1 } from "../../src/gen/v1beta1/api_pb.js";
import { ApiserverKmsV1, V1_ENCRYPTED_DEK_MAX_SIZE } from "../helpers/apiserver-kms.js";
import { callError, createClient, type PromiseClient } from "../helpers/grpc-client.js";
import { startPluginHarness, type PluginHarness } from "../helpers/plugin-harness.js";
import { totalRequests } from "../helpers/emulator-counters.js";

describe("v1beta1 as kube-apiserver's KMS v1 client calls it", () => {
  let h: PluginHarness;
  let client: PromiseClient<typeof V1>;
  let api: ApiserverKmsV1;

  beforeAll(async () => {
    h = await startPluginHarness();
    client = createClient(V1, h.socketPath);
    api = new ApiserverKmsV1(client);
  });
  afterAll(async () => {
    client.close();
    await h.close();
  });

  it('§2.4 Version{version:"v1beta1"} answers version "v1beta1"', async () => {
    const res = await client.version({ version: "v1beta1" });
    expect(res.version).toBe("v1beta1");
    expect(typeof res.runtimeName).toBe("string"); // not checked by kube-apiserver
  });

  it.each([["v1"], ["v2"], ["V1BETA1"], [""], ["v1beta1 "]])(
    "§2.4 Version with another version string (%j) → INVALID_ARGUMENT",
    async (version) => {
      expect((await callError(client.version({ version }))).codeName).toBe("INVALID_ARGUMENT");
    },
  );

  it('§2.4 the v1 health check (Encrypt("ping") then Decrypt) works, after one Version call', async () => {
    for (let i = 0; i < 5; i++) await api.healthCheck();
    expect(api.versionCalls).toBe(1);
    const ping = Buffer.from("ping");
    expect((await api.decrypt(await api.encrypt(ping))).equals(ping)).toBe(true);
  });

  it('§3.5 (v1) 100 per-write Encrypts of fresh 32-byte DEKs with version "v1beta1" round-trip; each cipher < 65536 bytes', async () => {
    const writes: { dek: Buffer; cipher: Buffer }[] = [];
    for (let i = 0; i < 100; i++) {
      const dek = randomBytes(32);
      const cipher = await api.encrypt(dek); // refuses a cipher the uint16 prefix cannot hold
      expect(cipher.length).toBeGreaterThan(0);
      expect(cipher.length).toBeLessThan(65_536);
      writes.push({ dek, cipher });
    }
    for (const { dek, cipher } of writes)
      expect((await api.decrypt(cipher)).equals(dek)).toBe(true);
  });

  it("§2.4 every plaintext the plugin accepts gives a cipher < 65536 bytes; larger ones → INVALID_ARGUMENT", async () => {
    let lo = 1;
    let hi = 65_535;
    let largestCipher = 0;
    const attempt = async (size: number): Promise<boolean> => {
      try {
        const { cipher } = await client.encrypt({ version: "v1beta1", plain: randomBytes(size) });
        expect(cipher.length).toBeLessThanOrEqual(V1_ENCRYPTED_DEK_MAX_SIZE);
        largestCipher = Math.max(largestCipher, cipher.length);
        return true;
      } catch (error) {
        expect((error as { codeName?: string }).codeName).toBe("INVALID_ARGUMENT");
        return false;
      }
    };
    expect(await attempt(lo)).toBe(true);
    if (await attempt(hi)) return; // everything up to 64 KiB fits: nothing more to bisect
    while (hi - lo > 1) {
      const mid = Math.floor((lo + hi) / 2);
      if (await attempt(mid)) lo = mid;
      else hi = mid;
    }
    expect(lo).toBeGreaterThanOrEqual(32);
    expect(largestCipher).toBeLessThanOrEqual(V1_ENCRYPTED_DEK_MAX_SIZE);
    const big = randomBytes(lo);
    const cipher = await api.encrypt(big);
    expect((await api.decrypt(cipher)).equals(big)).toBe(true);
  });

  it("§2.4 an empty plaintext → INVALID_ARGUMENT", async () => {
    const err = await callError(client.encrypt({ version: "v1beta1", plain: new Uint8Array(0) }));
    expect(err.codeName).toBe("INVALID_ARGUMENT");
  });

  it("§8 Version and Encrypt make zero Key Vault requests", async () => {
    const before = totalRequests(h.emu.counters());
    for (let i = 0; i < 50; i++) {
      await client.version({ version: "v1beta1" });
      await client.encrypt({ version: "v1beta1", plain: randomBytes(32) });
    }
    expect(totalRequests(h.emu.counters())).toBe(before);
  });

  it("§3.5 a v1 cipher decrypts on a restarted plugin (fresh Version check, cold cache)", async () => {
    const dek = randomBytes(32);
    const cipher = await api.encrypt(dek);
    await h.restart();
    const fresh = new ApiserverKmsV1(client);
    const all = await Promise.all(Array.from({ length: 10 }, () => fresh.decrypt(cipher)));
    for (const p of all) expect(p.equals(dek)).toBe(true);
  });
});
