/** The Go plugin's --proxy-mode against the emulator's proxy front. */
import { randomBytes } from "node:crypto";
import {
  createEmulator,
  startProxyFront,
  type Emulator,
  type ProxyFront,
} from "@keyvault-kms/emulator";
import {
  createCredential,
  createKeyVaultWrapper,
  type KeyVaultWrapper,
  type KeyVaultWrapperOptions,
} from "../../src/keyvault/index.js";
import type { ProxyModeSettings } from "../../src/keyvault/proxy-mode.js";
import { keyIdOf } from "../../src/kms/key-id.js";

let emu: Emulator;
let front: ProxyFront;

beforeAll(async () => {
  emu = await createEmulator({ keys: [{ name: "kek", kty: "RSA" }] });
  front = await startProxyFront({ emulatorPort: emu.port, caPem: emu.caPem });
});
afterAll(async () => {
  await front.close();
  await emu.close();
});

function wrapperFor(
  proxyMode?: ProxyModeSettings,
  vaultUrl = emu.vaultUrl,
  keyName = "kek",
): KeyVaultWrapper {
  const vaultHost = new URL(vaultUrl).host;
  const extra = proxyMode === undefined ? {} : { proxyMode };
  const credential = createCredential({
    identity: {
      kind: "client-secret",
      tenantId: emu.tenantId,
      clientId: emu.clientId,
      clientSecret: emu.clientSecret,
    },
    authorityHost: emu.authorityHost,
    caPem: emu.caPem,
    ...extra,
  });
  const options: KeyVaultWrapperOptions & { proxyMode?: ProxyModeSettings } = {
    vaultUrl,
    vaultHost,
    keyName,
    keyVersion: "",
    credential,
    caPem: emu.caPem,
    userAgent: "keyvault-kms-test",
    isAllowed: (ref) => ref.vaultHost === vaultHost && ref.keyName === keyName,
    ...extra,
  };
  return createKeyVaultWrapper(options);
}

describe("--proxy-mode", () => {
  it("refreshes, wraps and unwraps through the proxy, with the same key_id as direct", async () => {
    const direct = await wrapperFor().refresh();
    const before = front.counts();
    expect(before).toEqual({});

    const proxied = wrapperFor({ address: front.address, port: front.port });
    const state = await proxied.refresh();
    expect(state.current).toBeDefined();
    const current = state.current!;
    expect(keyIdOf(current)).toBe(keyIdOf(direct.current!));
    const seed = randomBytes(32);
    const wrapped = await proxied.wrap(seed, current);
    expect(Buffer.from(await proxied.unwrap(wrapped))).toEqual(seed);

    const counts = front.counts();
    expect(counts["KeyVault"]).toBeGreaterThanOrEqual(2); // list + get + unwrapKey (+ challenge)
    expect(counts["AzureActiveDirectory"]).toBeGreaterThanOrEqual(1); // token (+ OpenID metadata)
    expect(counts["(none)"]).toBeUndefined();
    const host = new URL(emu.vaultUrl).host;
    for (const r of front.requests()) {
      if (r.target === "KeyVault") expect(r.path.startsWith(`/${host}/keys/kek`)).toBe(true);
      // The authority host is replaced by the proxy's: the path starts with the tenant.
      else expect(r.path.startsWith(`/${emu.tenantId}/`)).toBe(true);
    }
    expect(front.requests().some((r) => r.path.includes("/unwrapkey"))).toBe(true);
  });

  // A real vault's nextLink names the port (https://<vault>.vault.azure.net:443/keys/…/versions?…),
  // which the vault URL does not: page 2 must go through the proxy too, not straight out.
  it("sends every page of a version list through the proxy, nextLinks with :443 included", async () => {
    await emu.createKey({ name: "many", kty: "RSA" });
    for (let i = 0; i < 29; i++) await emu.rotateKey("many");
    const proxied = wrapperFor(
      { address: front.address, port: front.port },
      "https://kv-proxy.vault.azure.net",
      "many",
    );
    const before = front.requests().length;
    const state = await proxied.refresh();
    expect(state.versions).toHaveLength(30);
    const lists = front
      .requests()
      .slice(before)
      .filter((r) => r.target === "KeyVault" && r.path.includes("/keys/many/versions"));
    expect(lists.length).toBeGreaterThanOrEqual(2); // two pages (plus the first try's challenge)
    for (const r of lists) expect(r.path.startsWith("/kv-proxy.vault.azure.net/keys/")).toBe(true);
  });

  it("fails instead of going direct when the proxy is down", async () => {
    const down = wrapperFor({ address: "127.0.0.1", port: 1 });
    await expect(down.refresh()).rejects.toThrow();
  });
});

describe("the emulator's proxy front", () => {
  it("refuses requests without the x-azure-proxy-target header", async () => {
    const res = await fetch(`http://${front.address}:${front.port}/127.0.0.1/keys/kek`);
    expect(res.status).toBe(400);
    expect(await res.text()).toMatch(/x-azure-proxy-target/);
    expect(front.counts()["(none)"]).toBe(1);
  });
});
