/**
 * The emulator answers as the real Key Vault and Managed HSM were recorded answering: one test
 * per row of docs/emulator-fidelity.md, whose table names each test and the source it follows.
 * Raw HTTPS, outside any SDK, so that the wire shape itself is what is checked.
 */
import { randomBytes } from "node:crypto";
import { createEmulator, type Emulator } from "@keyvault-kms/emulator";
import { fetchToken, rawRequest, type RawResponse } from "../../../test/helpers/emulator-http.js";

const MHSM_SCOPE = "https://managedhsm.azure.net/.default";
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

interface ErrorBody {
  error: { code: string; message: string; innererror?: { code: string } };
}

let vault: Emulator;
let hsm: Emulator;
let vaultToken: string;
let hsmToken: string;

beforeAll(async () => {
  vault = await createEmulator({ keys: [{ name: "kek", kty: "RSA" }] });
  hsm = await createEmulator({ flavor: "managedhsm", keys: [{ name: "aes", kty: "oct-HSM" }] });
  vaultToken = await fetchToken(vault);
  hsmToken = await fetchToken(hsm, MHSM_SCOPE);
});
afterAll(async () => {
  await vault.close();
  await hsm.close();
});

function call(
  emu: Emulator,
  method: string,
  path: string,
  options: { body?: unknown; headers?: Record<string, string> } = {},
): Promise<RawResponse> {
  const token = emu === hsm ? hsmToken : vaultToken;
  return rawRequest(emu, method, path, {
    headers: {
      authorization: `Bearer ${token}`,
      "content-type": "application/json",
      ...options.headers,
    },
    ...(options.body === undefined ? {} : { body: JSON.stringify(options.body) }),
  });
}

const errorOf = (res: RawResponse) => res.json() as ErrorBody;

async function wrap(emu: Emulator, name: string, version: string, alg: string) {
  const value = randomBytes(32).toString("base64url");
  return call(emu, "POST", `/keys/${name}/${version}/wrapkey`, { body: { alg, value } });
}

describe("docs/emulator-fidelity.md", () => {
  it("vault 401 challenge", async () => {
    const res = await rawRequest(vault, "GET", "/keys/kek/");
    expect(res.status).toBe(401);
    expect(res.json()).toEqual({
      error: {
        code: "Unauthorized",
        message: "AKV10000: Request is missing a Bearer or PoP token.",
      },
    });
    expect(res.headers["content-length"]).toBe("97");
    expect(res.headers["www-authenticate"]).toBe(
      `Bearer authorization="https://login.microsoftonline.com/${vault.tenantId}", resource="https://vault.azure.net"`,
    );
    expect(vault.tenantId).toBe(vault.tenantId.toLowerCase());
  });

  it("Managed HSM 401 challenge", async () => {
    const res = await rawRequest(hsm, "GET", "/keys/aes/");
    expect([res.status, res.text, res.headers["content-length"]]).toEqual([401, "", "0"]);
    expect(res.headers["www-authenticate"]).toContain('resource="https://managedhsm.azure.net"');
    expect(res.headers["date"]).toBeUndefined();
  });

  it("vault response headers", async () => {
    const res = await call(vault, "GET", "/keys/kek/", {
      headers: { "x-ms-client-request-id": "abc123" },
    });
    expect(res.status).toBe(200);
    expect(res.headers).toMatchObject({
      "cache-control": "no-cache",
      "content-type": "application/json; charset=utf-8",
      expires: "-1",
      pragma: "no-cache",
      "x-content-type-options": "nosniff",
      "x-ms-client-request-id": "abc123",
    });
    expect(Date.parse(res.headers["date"] ?? "")).not.toBeNaN();
    expect(res.headers["x-ms-keyvault-service-version"]).toMatch(/^\d+\.\d+\.\d+\.\d+$/);
    expect(res.headers["x-ms-request-id"]).toMatch(UUID);
    expect(res.headers["x-ms-keyvault-region"]).toBeDefined();
  });

  it("Managed HSM response headers", async () => {
    const res = await call(hsm, "GET", "/keys/aes/");
    expect(res.status).toBe(200);
    expect(res.headers["date"]).toBeUndefined();
    expect(res.headers["x-ms-keyvault-service-version"]).toBeUndefined();
    expect(res.headers["x-ms-server-latency"]).toMatch(/^\d+$/);
    expect(res.headers["x-frame-options"]).toBe("SAMEORIGIN");
    expect(res.headers["x-ms-request-id"]).toMatch(UUID);
  });

  it("list of a missing or deleted key", async () => {
    const missing = await call(vault, "GET", "/keys/never-created/versions");
    expect([missing.status, missing.json()]).toEqual([200, { value: [], nextLink: null }]);
    await vault.createKey({ name: "gone", kty: "RSA" });
    vault.deleteKey("gone", { purge: false });
    const deleted = await call(vault, "GET", "/keys/gone/versions");
    expect([deleted.status, deleted.json()]).toEqual([200, { value: [], nextLink: null }]);
    // Only the key's own GET says it is not there.
    const get = await call(vault, "GET", "/keys/gone/");
    expect([get.status, errorOf(get).error.code]).toEqual([404, "KeyNotFound"]);
  });

  it("version list paging", async () => {
    await vault.createKey({ name: "paged", kty: "RSA" });
    for (let i = 0; i < 29; i++) await vault.rotateKey("paged");
    const host = "myvault.vault.azure.net"; // no port: the nextLink names :443 anyway
    const page1 = await call(vault, "GET", "/keys/paged/versions?api-version=7.3", {
      headers: { host },
    });
    const body1 = page1.json() as { value: { kid: string }[]; nextLink: string | null };
    expect(body1.value).toHaveLength(25);
    expect(body1.value[0]).not.toHaveProperty("key");
    expect(body1.nextLink).toMatch(
      /^https:\/\/myvault\.vault\.azure\.net:443\/keys\/paged\/versions\?api-version=7\.3&\$skiptoken=[A-Za-z0-9_-]+$/,
    );
    const next = new URL(body1.nextLink!);
    const page2 = await call(vault, "GET", `${next.pathname}${next.search}`, { headers: { host } });
    const body2 = page2.json() as { value: { kid: string }[]; nextLink: string | null };
    expect([body2.value.length, body2.nextLink]).toEqual([5, null]);
    const kids = new Set([...body1.value, ...body2.value].map((v) => v.kid));
    expect(kids.size).toBe(30);
  });

  it("empty pages with a nextLink", async () => {
    vault.addFault({ operation: "list", kind: "emptyPage", count: 1 });
    const page = await call(vault, "GET", "/keys/kek/versions");
    const body = page.json() as { value: unknown[]; nextLink: string | null };
    expect(body.value).toEqual([]);
    expect(body.nextLink).not.toBeNull();
    const next = new URL(body.nextLink!);
    const rest = (await call(vault, "GET", `${next.pathname}${next.search}`)).json() as {
      value: unknown[];
    };
    expect(rest.value.length).toBeGreaterThan(0);
  });

  it("404 KeyNotFound", async () => {
    const res = await call(vault, "GET", "/keys/489440993/");
    expect(res.status).toBe(404);
    expect(errorOf(res).error).toEqual({
      code: "KeyNotFound",
      message:
        "A key with (name/id) 489440993 was not found in this key vault. If you recently deleted this key you may be able to recover it using the correct recovery command. For help resolving this issue, please see https://go.microsoft.com/fwlink/?linkid=2125182",
    });
  });

  it("429 throttling", async () => {
    vault.addFault({ operation: "get", kind: "429", count: 1 });
    const res = await call(vault, "GET", "/keys/kek/");
    expect(res.status).toBe(429);
    expect(res.headers["retry-after"]).toBeUndefined();
    expect(errorOf(res).error).toEqual({
      code: "Throttled",
      message:
        "Request was not processed because too many requests were received. Reason: VaultRequestTypeLimitReached",
    });
  });

  it("a quota per 10 s window", async () => {
    vault.clearFaults();
    vault.addFault({ operation: "*", kind: "quota", limit: 3, windowSeconds: 1 });
    try {
      const statuses: number[] = [];
      for (let i = 0; i < 5; i++) statuses.push((await call(vault, "GET", "/keys/kek/")).status);
      // A token request is Entra's, not the vault's: the quota does not see it.
      await fetchToken(vault);
      expect(statuses).toEqual([200, 200, 200, 429, 429]);
      // Refused requests do not count: the next window serves the full quota again.
      await new Promise((r) => setTimeout(r, 1_050));
      expect((await call(vault, "GET", "/keys/kek/")).status).toBe(200);
      const [usage] = vault.quotaUsage();
      expect(usage?.windows.map((w) => [w.served, w.refused])).toEqual([
        [3, 2],
        [1, 0],
      ]);
      // The same, for operators' drills, on the control API.
      const control = await rawRequest(vault, "GET", "/_emulator/quota");
      expect(control.status).toBe(200);
      expect(control.json()).toEqual(vault.quotaUsage());
    } finally {
      vault.clearFaults();
    }
  });

  it("409 on creating a deleted key's name", async () => {
    await vault.createKey({ name: "reused", kty: "RSA" });
    vault.deleteKey("reused", { purge: false });
    const res = await call(vault, "POST", "/keys/reused/create", { body: { kty: "RSA" } });
    expect(res.status).toBe(409);
    expect(errorOf(res).error.innererror).toEqual({ code: "ObjectIsDeletedButRecoverable" });
  });

  it("soft delete, recover", async () => {
    await vault.createKey({ name: "recoverable", kty: "RSA" });
    const deleted = await call(vault, "DELETE", "/keys/recoverable");
    const bundle = deleted.json() as Record<string, unknown>;
    expect(bundle["recoveryId"]).toBe(`${vault.vaultUrl}/deletedkeys/recoverable`);
    expect(typeof bundle["deletedDate"]).toBe("number");
    expect(typeof bundle["scheduledPurgeDate"]).toBe("number");
    const recovered = await call(vault, "POST", "/deletedkeys/recoverable/recover");
    expect(recovered.status).toBe(200);
    expect((await call(vault, "GET", "/keys/recoverable/")).status).toBe(200);
  });

  it("updated moves on a change, not on recover", async () => {
    await vault.createKey({ name: "attributes", kty: "RSA" });
    const attributesOf = async () =>
      (
        (await call(vault, "GET", "/keys/attributes/")).json() as {
          attributes: { created: number; updated: number };
        }
      ).attributes;
    const created = await attributesOf();
    expect(created.updated).toBe(created.created);
    await new Promise((r) => setTimeout(r, 1_100)); // one-second resolution
    const version = (
      (await call(vault, "GET", "/keys/attributes/")).json() as { key: { kid: string } }
    ).key.kid
      .split("/")
      .at(-1)!;
    await call(vault, "PATCH", `/keys/attributes/${version}`, {
      body: { attributes: { enabled: false } },
    });
    const changed = await attributesOf();
    expect(changed.created).toBe(created.created);
    expect(changed.updated).toBeGreaterThan(created.updated);
    await call(vault, "PATCH", `/keys/attributes/${version}`, {
      body: { attributes: { enabled: true } },
    });
    const before = await attributesOf();
    await new Promise((r) => setTimeout(r, 1_100));
    await call(vault, "DELETE", "/keys/attributes");
    await call(vault, "POST", "/deletedkeys/attributes/recover");
    expect(await attributesOf()).toEqual(before);
  });

  it("unknown api-version", async () => {
    const old = await createEmulator({
      keys: [{ name: "kek", kty: "RSA" }],
      apiVersions: ["7.0", "7.1"],
    });
    try {
      const token = await fetchToken(old);
      const res = await rawRequest(old, "GET", "/keys/kek/?api-version=7.3", {
        headers: { authorization: `Bearer ${token}` },
      });
      expect(res.status).toBe(400);
      expect(errorOf(res).error).toEqual({
        code: "BadParameter",
        message:
          "The specified version (7.3) is not recognized. Consider using the latest supported version (7.1).",
      });
      const ok = await rawRequest(old, "GET", "/keys/kek/?api-version=7.1", {
        headers: { authorization: `Bearer ${token}` },
      });
      expect(ok.status).toBe(200);
    } finally {
      await old.close();
    }
  });

  it("case-insensitive names", async () => {
    const lower = (await call(vault, "GET", "/keys/kek/")).json() as { key: { kid: string } };
    const upper = (await call(vault, "GET", "/keys/KEK/")).json() as { key: { kid: string } };
    expect(upper.key.kid).toBe(lower.key.kid);
    const version = lower.key.kid.split("/").at(-1)!;
    expect((await call(vault, "GET", `/keys/Kek/${version.toUpperCase()}`)).status).toBe(200);
  });

  it("expired and not-yet-valid versions", async () => {
    const ref = await vault.createKey({ name: "dated", kty: "RSA" });
    const sealed = (await wrap(vault, "dated", ref.version, "RSA-OAEP-256")).json() as {
      value: string;
    };
    const past = Math.floor(Date.now() / 1000) - 60;
    vault.updateKeyVersion("dated", ref.version, { exp: past });
    const expired = await wrap(vault, "dated", ref.version, "RSA-OAEP-256");
    expect([expired.status, errorOf(expired).error.innererror?.code]).toEqual([403, "KeyExpired"]);
    const unwrapped = await call(vault, "POST", `/keys/dated/${ref.version}/unwrapkey`, {
      body: { alg: "RSA-OAEP-256", value: sealed.value },
    });
    expect(unwrapped.status).toBe(200);
    vault.updateKeyVersion("dated", ref.version, { exp: null, nbf: past + 3600 });
    const early = await wrap(vault, "dated", ref.version, "RSA-OAEP-256");
    expect([early.status, errorOf(early).error.innererror?.code]).toEqual([403, "KeyNotYetValid"]);
  });

  it("disabled versions", async () => {
    const ref = await vault.createKey({ name: "off", kty: "RSA" });
    vault.updateKeyVersion("off", ref.version, { enabled: false });
    const res = await wrap(vault, "off", ref.version, "RSA-OAEP-256");
    expect(res.status).toBe(403);
    expect(errorOf(res).error).toMatchObject({
      code: "Forbidden",
      innererror: { code: "KeyDisabled" },
    });
  });

  it("key_ops refusal", async () => {
    const ref = await vault.createKey({ name: "wrap-only", kty: "RSA", keyOps: ["wrapKey"] });
    const res = await call(vault, "POST", `/keys/wrap-only/${ref.version}/decrypt`, {
      body: { alg: "RSA-OAEP-256", value: randomBytes(256).toString("base64url") },
    });
    expect(res.status).toBe(403);
    expect(errorOf(res).error).toEqual({
      code: "Forbidden",
      message: "Operation decrypt is not permitted on this key.",
      innererror: { code: "KeyOperationForbidden" },
    });
  });

  it("access policy refusal", async () => {
    vault.setKeyPermissions(["get", "wrapKey", "unwrapKey"]);
    try {
      const res = await call(vault, "GET", "/keys/kek/versions");
      expect(res.status).toBe(403);
      const { error } = errorOf(res);
      expect(error.code).toBe("Forbidden");
      expect(error.innererror).toEqual({ code: "AccessDenied" });
      expect(error.message).toMatch(
        new RegExp(
          `^The user, group or application 'appid=${vault.clientId};.*' does not have keys list permission on key vault '.*'\\. For help resolving this issue, please see https://go\\.microsoft\\.com/fwlink/\\?linkid=2125287$`,
        ),
      );
      expect((await call(vault, "GET", "/keys/kek/")).status).toBe(200);
    } finally {
      vault.setKeyPermissions(undefined);
    }
  });

  it("crypto operation results", async () => {
    const latest = (await call(vault, "GET", "/keys/kek/")).json() as { key: { kid: string } };
    const version = latest.key.kid.split("/").at(-1)!;
    const rsa = (await wrap(vault, "kek", version, "RSA-OAEP-256")).json() as Record<
      string,
      unknown
    >;
    expect(Object.keys(rsa).sort()).toEqual(["kid", "value"]);
    const aes = (await call(hsm, "GET", "/keys/aes/")).json() as { key: { kid: string } };
    const aesVersion = aes.key.kid.split("/").at(-1)!;
    const kw = (await wrap(hsm, "aes", aesVersion, "A256KW")).json() as Record<string, unknown>;
    expect(Object.keys(kw).sort()).toEqual(["alg", "kid", "value"]);
    expect(kw["alg"]).toBe("A256KW");
  });

  it("RSA1_5 with a wrong ciphertext", async () => {
    const latest = (await call(vault, "GET", "/keys/kek/")).json() as { key: { kid: string } };
    const version = latest.key.kid.split("/").at(-1)!;
    const res = await call(vault, "POST", `/keys/kek/${version}/decrypt`, {
      body: { alg: "RSA1_5", value: randomBytes(256).toString("base64url") },
    });
    expect([res.status, errorOf(res).error.code]).toEqual([400, "BadParameter"]);
  });

  it("key bundles", async () => {
    const rsa = (await call(vault, "GET", "/keys/kek/")).json() as {
      key: Record<string, unknown>;
      attributes: Record<string, unknown>;
    };
    expect(rsa.key["kid"]).toMatch(
      new RegExp(`^https://127\\.0\\.0\\.1:${vault.port}/keys/kek/[0-9a-f]{32}$`),
    );
    expect(rsa.attributes).toMatchObject({
      enabled: true,
      recoveryLevel: "Recoverable+Purgeable",
      recoverableDays: 90,
      exportable: false,
    });
    const aes = (await call(hsm, "GET", "/keys/aes/")).json() as { key: Record<string, unknown> };
    expect(Object.keys(aes.key).sort()).toEqual(["key_ops", "kid", "kty"]);
    expect(aes.key["kty"]).toBe("oct-HSM");
  });
});
