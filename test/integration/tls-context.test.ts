/** The shared TLS context the Key Vault clients use for an extra CA (src/keyvault/client-options.ts). */
import { request, type RequestOptions } from "node:https";
import { createEmulator, type Emulator } from "@keyvault-kms/emulator";
import { tlsOptions } from "../../src/keyvault/client-options.js";

let emu: Emulator;
let other: Emulator;
beforeAll(async () => {
  [emu, other] = await Promise.all([createEmulator(), createEmulator()]);
});
afterAll(async () => {
  await Promise.all([emu.close(), other.close()]);
});

/** One GET on a new connection (no keep-alive) with the SDK's TLS settings spread in, as its agent does. */
function get(url: string, settings: object): Promise<number> {
  return new Promise((resolve, reject) => {
    const options: RequestOptions = { ...settings, agent: false, method: "GET" };
    const req = request(`${url}/healthz-not-a-route`, options, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on("error", reject);
    req.end();
  });
}

describe("tlsOptions", () => {
  it("builds one secure context per CA bundle and passes no per-connection `ca`", () => {
    const a = tlsOptions(emu.caPem).tlsOptions as Record<string, unknown>;
    const b = tlsOptions(emu.caPem).tlsOptions as Record<string, unknown>;
    expect(a.secureContext).toBeDefined();
    expect(a.secureContext).toBe(b.secureContext);
    expect(a.ca).toBeUndefined();
    expect(tlsOptions(undefined)).toEqual({});
    const c = tlsOptions(other.caPem).tlsOptions as Record<string, unknown>;
    expect(c.secureContext).not.toBe(a.secureContext);
  });

  it("the shared context verifies the emulator on every new connection, and only its own CA", async () => {
    const settings = tlsOptions(emu.caPem).tlsOptions as object;
    for (let i = 0; i < 5; i++) {
      expect(await get(emu.vaultUrl, settings)).toBeGreaterThan(0);
    }
    // The other emulator's certificate is signed by a CA the context does not hold.
    await expect(get(other.vaultUrl, settings)).rejects.toThrow(/certificate/i);
  });
});
