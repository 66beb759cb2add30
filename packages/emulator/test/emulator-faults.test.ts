import { randomBytes } from "node:crypto";
import { request } from "node:https";
import { createEmulator, OPERATIONS, type Emulator } from "@keyvault-kms/emulator";
import {
  emulatorClients,
  failure,
  type EmulatorClients,
} from "../../../test/helpers/emulator-clients.js";
import { fetchToken, rawRequest, type RawResponse } from "../../../test/helpers/emulator-http.js";
import { eventually } from "../../../test/helpers/eventually.js";
import { totalRequests } from "../../../test/helpers/emulator-counters.js";

describe("emulator: counters and fault injection", () => {
  let emu: Emulator;
  let sdk: EmulatorClients;
  let token: string;
  let kid: string;

  const getKey = (): Promise<RawResponse> =>
    rawRequest(emu, "GET", "/keys/kek/?api-version=7.4", {
      headers: { authorization: `Bearer ${token}` },
    });
  /** GET /keys/kek/ that the client abandons when `signal` aborts. */
  const abortableGet = (signal: AbortSignal): Promise<number> =>
    new Promise((resolve, reject) => {
      const req = request(
        new URL("/keys/kek/?api-version=7.4", emu.vaultUrl),
        { ca: emu.caPem, headers: { authorization: `Bearer ${token}` }, agent: false, signal },
        (res) => {
          res.resume();
          resolve(res.statusCode ?? 0);
        },
      );
      req.on("error", reject);
      req.end();
    });
  const control = (method: string, path: string, body?: unknown): Promise<RawResponse> =>
    rawRequest(emu, method, `/_emulator/${path}`, {
      headers: { "content-type": "application/json" },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });

  beforeAll(async () => {
    emu = await createEmulator({ keys: [{ name: "kek", kty: "RSA" }] });
    sdk = emulatorClients(emu);
    token = await fetchToken(emu);
    kid = (await sdk.keys.getKey("kek")).id!;
  });

  afterAll(async () => {
    await emu.close();
  });

  beforeEach(() => {
    emu.clearFaults();
    emu.resetCounters();
  });

  it("serves every counter, zero-initialised, and resets them on DELETE", async () => {
    await getKey();
    const counters = (await control("GET", "counters")).json() as Record<string, number>;
    for (const op of OPERATIONS) expect(typeof counters[op]).toBe("number");
    for (const op of ["get", "list", "create", "rotate", "update", "delete"]) {
      expect(counters).toHaveProperty(op);
    }
    expect(counters).toMatchObject({ get: 1, wrapkey: 0, token: 0, challenge: 0 });
    expect((await control("DELETE", "counters")).status).toBe(204);
    expect(emu.counters()["get"]).toBe(0);
  });

  it("counts exactly one wrapkey for one wrap on a warm client", async () => {
    const crypto = sdk.crypto(kid);
    await crypto.wrapKey("RSA-OAEP-256", randomBytes(32)); // warms: GET + challenge
    emu.resetCounters();
    await crypto.wrapKey("RSA-OAEP-256", randomBytes(32));
    const counters = emu.counters();
    expect(counters["wrapkey"]).toBe(1);
    expect(totalRequests(counters)).toBe(1);
  });

  it("adds latency", async () => {
    emu.addFault({ operation: "get", kind: "latency", ms: 300, count: 1 });
    let start = Date.now();
    expect((await getKey()).status).toBe(200);
    expect(Date.now() - start).toBeGreaterThanOrEqual(280);
    start = Date.now();
    await getKey();
    expect(Date.now() - start).toBeLessThan(250);
  });

  it("throttles with 429 and no Retry-After, which the SDK does not retry", async () => {
    emu.addFault({ operation: "get", kind: "429", count: 1 });
    const raw = await getKey();
    expect(raw.status).toBe(429);
    expect(raw.headers["retry-after"]).toBeUndefined();
    expect(raw.json()).toEqual({
      error: {
        code: "Throttled",
        message:
          "Request was not processed because too many requests were received. Reason: VaultRequestTypeLimitReached",
      },
    });

    const retrying = emulatorClients(emu, { maxRetries: 3 });
    await retrying.keys.getKey("kek"); // complete the challenge first
    emu.resetCounters();
    emu.addFault({ operation: "get", kind: "429", count: 1 });
    expect(await failure(retrying.keys.getKey("kek"))).toMatchObject({
      statusCode: 429,
      code: "Throttled",
    });
    expect(emu.counters()["get"]).toBe(1);
  });

  it("throttles with 429 and Retry-After, which the SDK honours", async () => {
    emu.addFault({ operation: "get", kind: "429", count: 1, retryAfter: 2 });
    const raw = await getKey();
    expect(raw.status).toBe(429);
    expect(raw.headers["retry-after"]).toBe("2");

    const retrying = emulatorClients(emu, { maxRetries: 3 });
    await retrying.keys.getKey("kek");
    emu.resetCounters();
    emu.addFault({ operation: "get", kind: "429", count: 1, retryAfter: 0 });
    await retrying.keys.getKey("kek");
    expect(emu.counters()["get"]).toBe(2);
  });

  it.each([
    ["500", "InternalServerError"],
    ["503", "ServiceUnavailable"],
  ] as const)("answers %s for the given count, then recovers", async (kind, code) => {
    emu.addFault({ operation: "get", kind, count: 2 });
    for (let i = 0; i < 2; i++) {
      const res = await getKey();
      expect(res.status).toBe(Number(kind));
      expect((res.json() as { error: { code: string } }).error.code).toBe(code);
    }
    expect((await getKey()).status).toBe(200);
    expect(emu.counters()["get"]).toBe(3);
  });

  it("lets the SDK retry through 5xx faults", async () => {
    const retrying = emulatorClients(emu, { maxRetries: 3, retryDelayInMs: 5 });
    await retrying.keys.getKey("kek");
    emu.resetCounters();
    emu.addFault({ operation: "get", kind: "500", count: 2 });
    await retrying.keys.getKey("kek");
    expect(emu.counters()["get"]).toBe(3);
  });

  it("resets the connection without a response", async () => {
    const crypto = sdk.crypto(kid);
    await crypto.wrapKey("RSA-OAEP-256", randomBytes(32)); // warm: challenge and GET done
    emu.resetCounters();
    emu.addFault({ operation: "wrapkey", kind: "reset", count: 1 });
    const err = await failure(crypto.wrapKey("RSA-OAEP-256", randomBytes(32)));
    expect(err.code).toBe("ECONNRESET");
    expect(emu.counters()["wrapkey"]).toBe(1);

    emu.addFault({ operation: "get", kind: "reset", count: 1 });
    await expect(getKey()).rejects.toThrow(/socket hang up|ECONNRESET/);
    expect((await getKey()).status).toBe(200);
  });

  it("hang: holds the request unanswered until the client gives up, then serves the next", async () => {
    expect(
      (await control("POST", "faults", { operation: "get", kind: "hang", count: 1 })).status,
    ).toBe(200);
    const signal = AbortSignal.timeout(200);
    await expect(abortableGet(signal)).rejects.toThrow();
    expect(emu.counters()["get"]).toBe(1);
    expect((await getKey()).status).toBe(200);
  });

  it("html502: a gateway's 502 with an HTML body, on the token endpoint too", async () => {
    emu.addFault({ operation: "token", kind: "html502", count: 1 });
    const res = await rawRequest(emu, "POST", `/${emu.tenantId}/oauth2/v2.0/token`, {
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: "grant_type=client_credentials",
    });
    expect(res.status).toBe(502);
    expect(res.headers["content-type"]).toBe("text/html");
    expect(res.text).toMatch(/^<html>[\s\S]*502 Bad Gateway[\s\S]*<\/html>\s*$/);
    expect(() => JSON.parse(res.text) as unknown).toThrow();
    expect(emu.counters()["token"]).toBe(1);
  });

  it("consumes queued faults in order and matches '*' against any operation", async () => {
    const posted = await control("POST", "faults", [
      { operation: "get", kind: "500", count: 1 },
      { operation: "*", kind: "503", count: 1 },
    ]);
    expect(posted.status).toBe(200);
    expect((await getKey()).status).toBe(500);
    expect((await getKey()).status).toBe(503);
    expect((await getKey()).status).toBe(200);
  });

  it("keeps an uncounted fault until DELETE /_emulator/faults clears it", async () => {
    await control("POST", "faults", { operation: "get", kind: "503" });
    for (let i = 0; i < 3; i++) expect((await getKey()).status).toBe(503);
    expect((await control("DELETE", "faults")).status).toBe(204);
    expect((await getKey()).status).toBe(200);
  });

  it("faults token requests too, in Entra's error shape", async () => {
    emu.addFault({ operation: "token", kind: "503", count: 1, retryAfter: 1 });
    const form = new URLSearchParams({
      grant_type: "client_credentials",
      client_id: emu.clientId,
      client_secret: emu.clientSecret,
      scope: "https://vault.azure.net/.default",
    });
    const res = await rawRequest(emu, "POST", `/${emu.tenantId}/oauth2/v2.0/token`, {
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: form.toString(),
    });
    expect(res.status).toBe(503);
    expect(res.headers["retry-after"]).toBe("1");
    expect(res.json()).toMatchObject({ error: "temporarily_unavailable" });
    expect(emu.counters()["token"]).toBe(1);
  });

  it("does not fault or count unauthenticated requests as the operation", async () => {
    emu.addFault({ operation: "get", kind: "500", count: 1 });
    const res = await rawRequest(emu, "GET", "/keys/kek/");
    expect(res.status).toBe(401);
    expect(emu.counters()).toMatchObject({ challenge: 1, get: 0 });
    expect((await getKey()).status).toBe(500);
  });

  it("changes the access policy through /_emulator/permissions, and DELETE restores all", async () => {
    const set = await control("POST", "permissions", { keys: ["get", "WRAPKEY"] });
    expect(set.json()).toEqual({ keys: ["get", "wrapKey"] });
    const list = await rawRequest(emu, "GET", "/keys/kek/versions", {
      headers: { authorization: `Bearer ${token}` },
    });
    expect(list.status).toBe(403);
    expect((await getKey()).status).toBe(200);
    expect((await control("POST", "permissions", { keys: ["nope"] })).status).toBe(400);
    expect((await control("DELETE", "permissions")).status).toBe(204);
    const all = (await control("GET", "permissions")).json() as { keys: string[] };
    expect(all.keys).toContain("list");
    const again = await rawRequest(emu, "GET", "/keys/kek/versions", {
      headers: { authorization: `Bearer ${token}` },
    });
    expect(again.status).toBe(200);
  });

  it("rejects malformed fault specs with 400", async () => {
    for (const body of [
      { operation: "get", kind: "418" },
      { operation: "nope", kind: "500" },
      { operation: "get", kind: "latency" },
      { operation: "get", kind: "500", count: 0 },
      { operation: "get", kind: "hung" },
    ]) {
      expect((await control("POST", "faults", body)).status).toBe(400);
    }
    expect((await rawRequest(emu, "POST", "/_emulator/faults", { body: "{" })).status).toBe(400);
    expect(() => {
      emu.addFault({ operation: "get", kind: "latency" });
    }).toThrow(/latency needs ms/);
  });
});

describe("emulator: close", () => {
  it("drops requests held by a latency fault and closes promptly", async () => {
    const emu = await createEmulator();
    const token = await fetchToken(emu);
    emu.addFault({ operation: "get", kind: "latency", ms: 60_000 });
    const pending = rawRequest(emu, "GET", "/keys/any/", {
      headers: { authorization: `Bearer ${token}` },
    });
    await new Promise((resolve) => setTimeout(resolve, 100));
    const start = Date.now();
    await emu.close();
    await expect(pending).rejects.toThrow();
    expect(Date.now() - start).toBeLessThan(1000);
    await emu.close(); // idempotent
  });

  it("ends requests held by a hang fault, so close() resolves", async () => {
    const emu = await createEmulator();
    emu.addFault({ operation: "token", kind: "hang" });
    const held = [1, 2].map(() =>
      rawRequest(emu, "POST", `/${emu.tenantId}/oauth2/v2.0/token`, {
        headers: { "content-type": "application/x-www-form-urlencoded" },
        body: "grant_type=client_credentials",
      }),
    );
    await eventually(() => (emu.counters()["token"] === 2 ? true : undefined));
    await emu.close();
    for (const request of held) await expect(request).rejects.toThrow();
  });
});
