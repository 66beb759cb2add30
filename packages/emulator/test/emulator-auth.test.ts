import { randomBytes } from "node:crypto";
import { ClientSecretCredential } from "@azure/identity";
import { createEmulator, type Emulator } from "@keyvault-kms/emulator";
import { emulatorClients, failure } from "../../../test/helpers/emulator-clients.js";
import { fetchToken, rawRequest } from "../../../test/helpers/emulator-http.js";

const SCOPE = "https://vault.azure.net/.default";

describe("emulator: bearer challenge and Entra token endpoints", () => {
  let emu: Emulator;

  beforeAll(async () => {
    emu = await createEmulator({ keys: [{ name: "kek", kty: "RSA" }] });
  });

  afterAll(async () => {
    await emu.close();
  });

  beforeEach(() => {
    emu.resetCounters();
  });

  it("challenges a request without Authorization before reading its (garbage) body", async () => {
    const res = await rawRequest(emu, "POST", "/keys/kek//wrapkey?api%2Dversion=2025-07-01", {
      headers: { "content-type": "application/json" },
      body: "\u0000not json at all{{{",
    });
    expect(res.status).toBe(401);
    expect(res.headers["www-authenticate"]).toBe(
      `Bearer authorization="https://login.microsoftonline.com/${emu.tenantId}", resource="https://vault.azure.net"`,
    );
    expect(res.json()).toEqual({
      error: {
        code: "Unauthorized",
        message: "AKV10000: Request is missing a Bearer or PoP token.",
      },
    });
    expect(emu.counters()).toMatchObject({ challenge: 1, wrapkey: 0 });
  });

  it("accepts only tokens it issued, for its own audience", async () => {
    const bogus = await rawRequest(emu, "GET", "/keys/kek", {
      headers: { authorization: "Bearer not-a-token" },
    });
    expect(bogus.status).toBe(401);
    expect(bogus.headers["www-authenticate"]).toContain('resource="https://vault.azure.net"');

    const otherAudience = await fetchToken(emu, "https://management.azure.com/.default");
    const wrongAud = await rawRequest(emu, "GET", "/keys/kek", {
      headers: { authorization: `Bearer ${otherAudience}` },
    });
    expect(wrongAud.status).toBe(401);

    const token = await fetchToken(emu, SCOPE);
    const tampered = token.slice(0, -2) + (token.endsWith("AA") ? "BB" : "AA");
    const bad = await rawRequest(emu, "GET", "/keys/kek", {
      headers: { authorization: `Bearer ${tampered}` },
    });
    expect(bad.status).toBe(401);

    const ok = await rawRequest(emu, "GET", "/keys/kek/", {
      headers: { authorization: `Bearer ${token}` },
    });
    expect(ok.status).toBe(200);
    expect(emu.counters()).toMatchObject({ challenge: 3, get: 1, token: 2 });
  });

  it("serves OpenID configuration with endpoints on the caller's own host", async () => {
    const res = await rawRequest(
      emu,
      "GET",
      `/${emu.tenantId}/v2.0/.well-known/openid-configuration`,
      { headers: { host: `localhost:${emu.port}` } },
    );
    expect(res.status).toBe(200);
    const base = `https://localhost:${emu.port}/${emu.tenantId}`;
    expect(res.json()).toMatchObject({
      token_endpoint: `${base}/oauth2/v2.0/token`,
      authorization_endpoint: `${base}/oauth2/v2.0/authorize`,
      issuer: `${base}/v2.0`,
      jwks_uri: `${base}/discovery/v2.0/keys`,
    });
  });

  it("issues client-credentials tokens in Entra's response shape", async () => {
    const res = await rawRequest(emu, "POST", `/${emu.tenantId}/oauth2/v2.0/token`, {
      headers: { "content-type": "application/x-www-form-urlencoded;charset=utf-8" },
      body: new URLSearchParams({
        grant_type: "client_credentials",
        client_id: emu.clientId,
        client_secret: emu.clientSecret,
        scope: SCOPE,
      }).toString(),
    });
    expect(res.status).toBe(200);
    const body = res.json() as Record<string, unknown>;
    expect(body).toMatchObject({ token_type: "Bearer", expires_in: 3599, ext_expires_in: 3599 });
    expect(typeof body["access_token"]).toBe("string");
  });

  it.each([
    ["wrong secret", () => [emu.tenantId, emu.clientId, "wrong-secret"]],
    [
      "wrong client",
      () => [emu.tenantId, "00000000-0000-0000-0000-000000000000", emu.clientSecret],
    ],
    ["wrong tenant", () => [randomTenant(), emu.clientId, emu.clientSecret]],
  ])("rejects a %s with invalid_client", async (_case, args) => {
    const [tenantId, clientId, secret] = args();
    const res = await rawRequest(emu, "POST", `/${tenantId!}/oauth2/v2.0/token`, {
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams({
        grant_type: "client_credentials",
        client_id: clientId!,
        client_secret: secret!,
        scope: SCOPE,
      }).toString(),
    });
    expect(res.status).toBe(401);
    expect(res.json()).toMatchObject({ error: "invalid_client", error_codes: [7000215] });
    expect((res.json() as { error_description: string }).error_description).toMatch(
      /^AADSTS7000215: Invalid client secret provided\./,
    );
  });

  it("makes ClientSecretCredential fail with a wrong secret", async () => {
    const credential = new ClientSecretCredential(emu.tenantId, emu.clientId, "nope", {
      authorityHost: emu.authorityHost,
      disableInstanceDiscovery: true,
      tlsOptions: { ca: emu.caPem },
    });
    await expect(credential.getToken(SCOPE)).rejects.toThrow(/invalid_client/);
    const { keys } = emulatorClients(emu, { secret: "nope" });
    await expect(keys.getKey("kek")).rejects.toThrow(/invalid_client/);
    expect(emu.counters()["get"]).toBe(0);
  });

  it("lets a ClientSecretCredential in through the challenge, one token per credential", async () => {
    const { keys, crypto } = emulatorClients(emu);
    const key = await keys.getKey("kek");
    await crypto(key.id!).wrapKey("RSA-OAEP-256", randomBytes(32));
    // Each new client starts with one unauthenticated request; the token is cached.
    expect(emu.counters()).toMatchObject({ token: 1, challenge: 2, get: 2, wrapkey: 1 });
  });
});

describe("emulator: tenant spelling", () => {
  const tenant = "72F988BF-86F1-41AF-91AB-2D7CD011DB47";
  let emu: Emulator;

  beforeAll(async () => {
    emu = await createEmulator({ tenantId: tenant });
  });

  afterAll(async () => {
    await emu.close();
  });

  it("names the tenant in lower case in the challenge, as Key Vault does", async () => {
    const res = await rawRequest(emu, "GET", "/keys/kek/");
    expect(res.status).toBe(401);
    expect(res.headers["www-authenticate"]).toBe(
      `Bearer authorization="https://login.microsoftonline.com/${tenant.toLowerCase()}", resource="https://vault.azure.net"`,
    );
  });

  it("takes the tenant in the token endpoint's path in any case, and no other tenant", async () => {
    for (const tenantId of [tenant, tenant.toLowerCase(), "72f988bf-86F1-41af-91AB-2d7cd011db47"]) {
      const token = await fetchToken({ ...emu, vaultUrl: emu.vaultUrl, tenantId });
      const res = await rawRequest(emu, "GET", "/keys/missing/", {
        headers: { authorization: `Bearer ${token}` },
      });
      expect(res.status).toBe(404);
    }
    await expect(
      fetchToken({
        ...emu,
        vaultUrl: emu.vaultUrl,
        tenantId: "00000000-0000-0000-0000-000000000000",
      }),
    ).rejects.toThrow(/invalid_client/);
  });
});

describe("emulator: Managed HSM flavor", () => {
  let emu: Emulator;

  beforeAll(async () => {
    emu = await createEmulator({ flavor: "managedhsm", keys: [{ name: "aes", kty: "oct-HSM" }] });
  });

  afterAll(async () => {
    await emu.close();
  });

  it("challenges with the managedhsm resource and an empty body", async () => {
    const res = await rawRequest(emu, "GET", "/keys/aes/");
    expect(res.status).toBe(401);
    expect(res.text).toBe("");
    expect(res.headers["content-length"]).toBe("0");
    expect(res.headers["www-authenticate"]).toBe(
      `Bearer authorization="https://login.microsoftonline.com/${emu.tenantId}", resource="https://managedhsm.azure.net"`,
    );
  });

  it("refuses vault-audience tokens and serves the SDK with managedhsm ones", async () => {
    const vaultToken = await fetchToken(emu, SCOPE);
    const res = await rawRequest(emu, "GET", "/keys/aes/", {
      headers: { authorization: `Bearer ${vaultToken}` },
    });
    expect(res.status).toBe(401);

    const { keys, crypto } = emulatorClients(emu);
    const key = await keys.getKey("aes");
    const dek = randomBytes(32);
    const client = crypto(key.id!);
    const wrapped = await client.wrapKey("A256KW", dek);
    expect(Buffer.from((await client.unwrapKey("A256KW", wrapped.result)).result)).toEqual(dek);
  });

  it("reports RestError 401 details to SDK callers whose token is refused", async () => {
    const { keys } = emulatorClients(emu, { secret: "bad" });
    const err = await failure(keys.getKey("aes"));
    expect(err.message).toMatch(/invalid_client/);
  });
});

function randomTenant(): string {
  return randomBytes(16).toString("hex");
}
