import { createEmulator, type Emulator } from "@keyvault-kms/emulator";

let emu: Emulator;
beforeAll(async () => {
  emu = await createEmulator({ managedIdentities: { userAssigned: ["AAAA-1"] } });
});
afterAll(async () => {
  await emu.close();
});

const tokenUrl = (path: string, query: string) => `${emu.imdsUrl}${path}?${query}`;
const q = "api-version=2018-02-01&resource=https%3A%2F%2Fvault.azure.net";

describe("emulator IMDS", () => {
  it("answers with and without the trailing slash, with expires_on", async () => {
    for (const path of ["/metadata/identity/oauth2/token", "/metadata/identity/oauth2/token/"]) {
      const res = await fetch(tokenUrl(path, q), { headers: { Metadata: "true" } });
      expect(res.status).toBe(200);
      const body = (await res.json()) as Record<string, string>;
      expect(body).toMatchObject({
        resource: "https://vault.azure.net",
        token_type: "Bearer",
        client_id: emu.systemAssignedClientId,
      });
      expect(Number(body["expires_on"])).toBeGreaterThan(Date.now() / 1000);
      expect(Number(body["expires_in"])).toBeGreaterThan(0);
    }
  });

  it("requires Metadata: true, api-version and resource; knows only registered identities", async () => {
    const status = async (query: string, headers: Record<string, string> = { Metadata: "true" }) =>
      (await fetch(tokenUrl("/metadata/identity/oauth2/token", query), { headers })).status;
    expect(await status(q, {})).toBe(400);
    expect(await status("resource=https%3A%2F%2Fvault.azure.net")).toBe(400);
    expect(await status("api-version=2018-02-01")).toBe(400);
    expect(await status(`${q}&client_id=aaaa-1`)).toBe(200);
    expect(await status(`${q}&client_id=bbbb-2`)).toBe(400);
    expect(await status(`${q}&msi_res_id=%2Fsubscriptions%2Fx`)).toBe(400);
  });

  it("counts imds requests", async () => {
    emu.resetCounters();
    await fetch(tokenUrl("/metadata/identity/oauth2/token", q), { headers: { Metadata: "true" } });
    expect(emu.counters()["imds"]).toBe(1);
  });
});

it("an emulator without a system-assigned identity answers 'Identity not found'", async () => {
  const bare = await createEmulator({ managedIdentities: { systemAssigned: false } });
  try {
    const res = await fetch(`${bare.imdsUrl}/metadata/identity/oauth2/token?${q}`, {
      headers: { Metadata: "true" },
    });
    expect(res.status).toBe(400);
    expect(await res.json()).toMatchObject({ error_description: "Identity not found" });
    expect(bare.systemAssignedClientId).toBeUndefined();
  } finally {
    await bare.close();
  }
});
