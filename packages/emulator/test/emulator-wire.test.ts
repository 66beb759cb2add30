import { randomBytes } from "node:crypto";
import { createEmulator, type Emulator } from "@keyvault-kms/emulator";
import { fetchToken, rawRequest, type RawResponse } from "../../../test/helpers/emulator-http.js";

interface Bundle {
  key: { kid: string; kty: string; key_ops: string[]; n?: string; e?: string; k?: string };
  attributes: Record<string, unknown>;
}

describe("emulator: wire format and robustness", () => {
  let emu: Emulator;
  let token: string;

  const call = (
    method: string,
    path: string,
    body?: unknown,
    headers: Record<string, string> = {},
  ): Promise<RawResponse> =>
    rawRequest(emu, method, path, {
      headers: {
        authorization: `Bearer ${token}`,
        "content-type": "application/json",
        ...headers,
      },
      ...(body === undefined
        ? {}
        : { body: typeof body === "string" ? body : JSON.stringify(body) }),
    });

  beforeAll(async () => {
    emu = await createEmulator({
      keys: [
        { name: "kek", kty: "RSA" },
        { name: "aes", kty: "oct-HSM" },
      ],
    });
    token = await fetchToken(emu);
  });

  afterAll(async () => {
    await emu.close();
  });

  it("serves the latest version with and without the trailing slash", async () => {
    const a = await call("GET", "/keys/kek?api%2Dversion=2025-07-01");
    const b = await call("GET", "/keys/kek/?api-version=7.4");
    const c = await call("GET", "/keys/KEK/");
    expect([a.status, b.status, c.status]).toEqual([200, 200, 200]);
    const bundle = a.json() as Bundle;
    expect(bundle.key.kid).toMatch(
      new RegExp(`^https://127\\.0\\.0\\.1:${emu.port}/keys/kek/[0-9a-f]{32}$`),
    );
    expect((b.json() as Bundle).key.kid).toBe(bundle.key.kid);
    expect(bundle.key.e).toBe("AQAB");
    expect(bundle.key.n).toMatch(/^[A-Za-z0-9_-]+$/);
    expect(bundle.attributes).toMatchObject({
      enabled: true,
      recoveryLevel: "Recoverable+Purgeable",
      recoverableDays: 90,
    });
    expect(typeof bundle.attributes["created"]).toBe("number");
  });

  it("builds kids from the Host header the client used", async () => {
    const res = await call("GET", "/keys/kek/", undefined, { host: `localhost:${emu.port}` });
    expect((res.json() as Bundle).key.kid).toMatch(
      new RegExp(`^https://localhost:${emu.port}/keys/kek/`),
    );
  });

  it("treats an empty version (//wrapkey) as the latest", async () => {
    const dek = randomBytes(32).toString("base64url");
    const wrapped = await call("POST", "/keys/kek//wrapkey", { alg: "RSA-OAEP-256", value: dek });
    expect(wrapped.status).toBe(200);
    const { kid, value } = wrapped.json() as { kid: string; value: string };
    const latest = (await call("GET", "/keys/kek/")).json() as Bundle;
    expect(kid).toBe(latest.key.kid);
    expect(value).toMatch(/^[A-Za-z0-9_-]+$/);
    const version = kid.split("/").at(-1)!;
    const unwrapped = await call("POST", `/keys/kek/${version}/unwrapkey`, {
      alg: "RSA-OAEP-256",
      value,
    });
    expect((unwrapped.json() as { value: string }).value).toBe(dek);
  });

  it("never releases k for oct-HSM keys", async () => {
    const res = await call("GET", "/keys/aes");
    const bundle = res.json() as Bundle;
    expect(bundle.key.kty).toBe("oct-HSM");
    expect(bundle.key).not.toHaveProperty("k");
    expect(bundle.key.key_ops).toEqual(["encrypt", "decrypt", "wrapKey", "unwrapKey"]);
  });

  it("pages versions with an absolute nextLink and bounded maxresults", async () => {
    await emu.rotateKey("kek");
    await emu.rotateKey("kek");
    const page1 = await call("GET", "/keys/kek/versions?api-version=7.4&maxresults=2");
    const body1 = page1.json() as { value: { kid: string }[]; nextLink: string | null };
    expect(body1.value).toHaveLength(2);
    expect(body1.nextLink).toMatch(
      new RegExp(`^https://127\\.0\\.0\\.1:${emu.port}/keys/kek/versions\\?`),
    );
    const next = new URL(body1.nextLink!);
    const page2 = await call("GET", `${next.pathname}${next.search}`);
    const body2 = page2.json() as { value: { kid: string }[]; nextLink: string | null };
    expect(body2.value).toHaveLength(1);
    expect(body2.nextLink).toBeNull();
    for (const bad of ["0", "26", "x"]) {
      const res = await call("GET", `/keys/kek/versions?maxresults=${bad}`);
      expect(res.status).toBe(400);
    }
    const missing = await call("GET", "/keys/nope/versions");
    expect([missing.status, missing.json()]).toEqual([200, { value: [], nextLink: null }]);
  });

  it("refuses an operation missing from key_ops with 403", async () => {
    const ref = await emu.createKey({ name: "wrap-only", kty: "RSA", keyOps: ["wrapKey"] });
    const wrapped = await call("POST", `/keys/wrap-only/${ref.version}/wrapkey`, {
      alg: "RSA-OAEP-256",
      value: randomBytes(32).toString("base64url"),
    });
    expect(wrapped.status).toBe(200);
    const { value } = wrapped.json() as { value: string };
    const res = await call("POST", `/keys/wrap-only/${ref.version}/unwrapkey`, {
      alg: "RSA-OAEP-256",
      value,
    });
    expect(res.status).toBe(403);
    expect(res.json()).toMatchObject({ error: { code: "Forbidden" } });
  });

  it("answers BadParameter for bad algorithms, values and key specs", async () => {
    const cases: [string, string, unknown][] = [
      ["POST", "/keys/kek//wrapkey", { alg: "A256KW", value: "AAAA" }],
      ["POST", "/keys/kek//wrapkey", { alg: "RSA-OAEP-256", value: "not base64!" }],
      ["POST", "/keys/kek//wrapkey", { value: "AAAA" }],
      [
        "POST",
        "/keys/kek//encrypt",
        { alg: "RSA-OAEP-256", value: randomBytes(300).toString("base64url") },
      ],
      [
        "POST",
        "/keys/kek//decrypt",
        { alg: "RSA1_5", value: randomBytes(256).toString("base64url") },
      ],
      ["POST", "/keys/aes//wrapkey", { alg: "RSA-OAEP-256", value: "AAAA" }],
      [
        "POST",
        "/keys/aes//encrypt",
        { alg: "A256KW", value: randomBytes(32).toString("base64url") },
      ],
      ["POST", "/keys/bad_name/create", { kty: "RSA" }],
      ["POST", "/keys/x/create", { kty: "EC" }],
      ["POST", "/keys/x/create", { kty: "RSA", key_size: 1024 }],
      ["POST", "/keys/x/create", { kty: "RSA", key_ops: ["fly"] }],
      ["POST", "/keys/x/create", {}],
      ["PATCH", "/keys/kek/", { attributes: { enabled: "yes" } }],
      ["POST", "/keys/kek//wrapkey", "{not json"],
      ["POST", "/keys/kek//wrapkey", "[1,2]"],
      ["POST", "/keys/kek//wrapkey", ""],
    ];
    for (const [method, path, body] of cases) {
      const res = await call(method, path, body);
      expect({ path, body, status: res.status }).toEqual({ path, body, status: 400 });
      expect(res.json()).toMatchObject({ error: { code: "BadParameter" } });
    }
  });

  it("answers 404 NotFound for unknown routes", async () => {
    for (const [method, path] of [
      ["GET", "/nothing/here"],
      ["GET", "/keys/kek/a/b/c"],
      ["PUT", "/keys/kek"],
      ["POST", "/keys/kek//sign"],
      ["GET", "/_emulator/nothing"],
    ] as const) {
      const res = await call(method, path);
      expect(res.status).toBe(404);
      expect(res.json()).toMatchObject({ error: { code: "NotFound" } });
    }
  });

  it("refuses bodies over 1 MiB with 413", async () => {
    const big = JSON.stringify({ alg: "RSA-OAEP-256", value: "A".repeat(1024 * 1024 + 10) });
    const res = await call("POST", "/keys/kek//wrapkey", big);
    expect(res.status).toBe(413);
    expect((await call("GET", "/keys/kek")).status).toBe(200);
  });

  it("survives a stream of junk requests", async () => {
    const paths = [
      "/keys/kek//wrapkey",
      "/keys/x/create",
      "/keys/kek/",
      "/_emulator/faults",
      "/t/oauth2/v2.0/token",
    ];
    const bodies = [
      "",
      "{",
      "null",
      "[]",
      '{"alg":1,"value":{}}',
      randomBytes(64).toString("latin1"),
      '{"kty":null}',
    ];
    const methods = ["GET", "POST", "PATCH", "DELETE", "PUT"];
    const results = await Promise.all(
      paths.flatMap((path) =>
        methods.flatMap((method) => bodies.map((body) => call(method, `${path}?%zz=%`, body))),
      ),
    );
    for (const res of results) expect(res.status).toBeLessThan(500);
    expect((await call("GET", "/keys/kek")).status).toBe(200);
  });
});
