import { randomBytes } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createEmulator } from "@keyvault-kms/emulator";
import { emulatorClients } from "../../../test/helpers/emulator-clients.js";

describe("emulator: state directory", () => {
  let dir: string;

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), "emulator-state-"));
  });

  afterEach(() => {
    rmSync(dir, { recursive: true, force: true });
  });

  it("writes ca.pem, azure.json and a private state.json", async () => {
    const emu = await createEmulator({ stateDir: dir, keys: [{ name: "kek", kty: "RSA" }] });
    try {
      expect(emu.caFile).toBe(join(dir, "ca.pem"));
      expect(emu.azureJsonFile).toBe(join(dir, "azure.json"));
      expect(readFileSync(emu.caFile!, "utf8")).toBe(emu.caPem);
      expect(JSON.parse(readFileSync(emu.azureJsonFile!, "utf8"))).toEqual({
        cloud: "AzurePublicCloud",
        tenantId: emu.tenantId,
        aadClientId: emu.clientId,
        aadClientSecret: emu.clientSecret,
      });
      expect(statSync(join(dir, "state.json")).mode & 0o777).toBe(0o600);
      expect(statSync(emu.azureJsonFile!).mode & 0o777).toBe(0o600);
    } finally {
      await emu.close();
    }
  });

  it("keeps CA, credentials and keys across a restart", async () => {
    const first = await createEmulator({ stateDir: dir, keys: [{ name: "kek", kty: "RSA" }] });
    const dek = randomBytes(32);
    let wrapped: Uint8Array;
    let kid: string;
    let rotated: string;
    const firstClients = emulatorClients(first);
    try {
      kid = (await firstClients.keys.getKey("kek")).id!;
      wrapped = (await firstClients.crypto(kid).wrapKey("RSA-OAEP-256", dek)).result;
      rotated = (await first.rotateKey("kek")).version;
      await first.createKey({ name: "aes", kty: "oct-HSM" });
    } finally {
      await first.close();
    }

    const second = await createEmulator({
      stateDir: dir,
      port: first.port,
      keys: [{ name: "kek", kty: "RSA" }],
    });
    try {
      expect(second.caPem).toBe(first.caPem);
      expect(second.tenantId).toBe(first.tenantId);
      expect(second.clientId).toBe(first.clientId);
      expect(second.clientSecret).toBe(first.clientSecret);
      const sdk = emulatorClients(second);
      const latest = await sdk.keys.getKey("kek");
      expect(latest.properties.version).toBe(rotated); // the spec did not add a version
      const unwrapped = await sdk.crypto(kid).unwrapKey("RSA-OAEP-256", wrapped);
      expect(Buffer.from(unwrapped.result)).toEqual(dek);
      expect((await sdk.keys.getKey("aes")).keyType).toBe("oct-HSM");

      // Tokens survive the restart: the first credential's cached token is still accepted.
      second.resetCounters();
      await emulatorClients(second).keys.getKey("kek"); // fresh credential: one token
      const reused = firstClients.keys;
      await reused.getKey("kek");
      expect(second.counters()["token"]).toBe(1);
    } finally {
      await second.close();
    }
  });

  it("replaces a persisted CA it cannot use", async () => {
    const first = await createEmulator({ stateDir: dir });
    await first.close();
    const stateFile = join(dir, "state.json");
    const state = JSON.parse(readFileSync(stateFile, "utf8")) as { ca: { certPem: string } };
    state.ca.certPem =
      "-----BEGIN CERTIFICATE-----\nnot a certificate\n-----END CERTIFICATE-----\n";
    writeFileSync(stateFile, JSON.stringify(state));
    const second = await createEmulator({ stateDir: dir });
    try {
      expect(second.caPem).not.toBe(first.caPem);
      expect(second.tenantId).toBe(first.tenantId);
      expect(readFileSync(second.caFile!, "utf8")).toBe(second.caPem);
    } finally {
      await second.close();
    }
  });
});
