import { Registry } from "prom-client";
import {
  operationFromRequest,
  outcomeFromError,
  outcomeFromStatus,
  scrubSecrets,
} from "../../../src/keyvault/index.js";
import { createRequestLog, type Logger } from "../../../src/log/index.js";
import { createKeyVaultMetrics } from "../../../src/metrics/index.js";

describe("Key Vault operation and outcome classes", () => {
  it.each([
    ["GET", "https://v.vault.azure.net/keys/kek/?api-version=7.5", "get"],
    ["GET", "https://v.vault.azure.net/keys/kek/0123abcd", "get"],
    ["GET", "https://v.vault.azure.net/keys/kek/versions?maxresults=25", "list"],
    ["GET", "https://v.vault.azure.net/keys", "list"],
    ["POST", "https://v.vault.azure.net/keys/kek/0123/wrapkey?api-version=7.5", "wrapkey"],
    ["POST", "https://v.vault.azure.net/keys/kek//unwrapkey", "unwrapkey"],
    ["POST", "https://h.managedhsm.azure.net/keys/kek/1/encrypt", "encrypt"],
    ["POST", "http://proxy:7788/v.vault.azure.net/keys/kek/1/decrypt", "decrypt"],
    ["POST", "https://login.microsoftonline.com/tenant/oauth2/v2.0/token", "token"],
    ["GET", "https://login.microsoftonline.com/t/v2.0/.well-known/openid-configuration", "token"],
    ["GET", "http://169.254.169.254/metadata/identity/oauth2/token?resource=x", "token"],
    ["POST", "https://v.vault.azure.net/keys/kek/create", "other"],
    ["DELETE", "https://v.vault.azure.net/keys/kek", "other"],
    ["GET", "not a url", "other"],
  ])("%s %s → %s", (method, url, op) => {
    expect(operationFromRequest(method, url)).toBe(op);
  });

  it.each([
    [200, "ok"],
    [204, "ok"],
    [429, "throttled"],
    [401, "unauthorized"],
    [403, "forbidden"],
    [404, "not_found"],
    [409, "client_error"],
    [500, "server_error"],
    [503, "server_error"],
  ])("status %d → %s", (status, outcome) => {
    expect(outcomeFromStatus(status)).toBe(outcome);
  });

  it("errors without a response are timeout or network", () => {
    expect(outcomeFromError(Object.assign(new Error("x"), { name: "AbortError" }))).toBe("timeout");
    expect(outcomeFromError(Object.assign(new Error("x"), { code: "ETIMEDOUT" }))).toBe("timeout");
    expect(outcomeFromError(Object.assign(new Error("x"), { code: "ECONNRESET" }))).toBe("network");
    expect(outcomeFromError(Object.assign(new Error("x"), { statusCode: 429 }))).toBe("throttled");
    expect(outcomeFromError("weird")).toBe("network");
  });

  it("scrubs bearer tokens, JWTs, form secrets and PEM blocks from SDK lines", () => {
    const line =
      "authorization: Bearer abc.def-ghi token eyJhbGciOi.eyJzdWIiOi.sig client_secret=s3cr3t~x&a=1 " +
      "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----";
    const out = scrubSecrets(line);
    expect(out).not.toMatch(/abc\.def|eyJ|s3cr3t|MIIB/);
    expect(out).toContain("client_secret=[redacted]");
    expect(out).toContain("[pem]");
  });
});

describe("Key Vault metrics", () => {
  it("counts tries and retries by operation and outcome", async () => {
    const registry = new Registry();
    const kv = createKeyVaultMetrics(registry);
    kv.onRequest("unwrapkey", "throttled", 0.01, false);
    kv.onRequest("unwrapkey", "ok", 0.02, true);
    const text = await registry.metrics();
    expect(text).toContain(
      'azurekms_keyvault_requests_total{operation="unwrapkey",outcome="ok"} 1',
    );
    expect(text).toContain(
      'azurekms_keyvault_requests_total{operation="unwrapkey",outcome="throttled"} 1',
    );
    expect(text).toContain('azurekms_keyvault_retries_total{operation="unwrapkey"} 1');
  });
});

describe("request log", () => {
  function fakeLogger(debugOn: boolean) {
    const calls: [string, object, string | undefined][] = [];
    const logger: Logger = {
      trace: (o, m) => calls.push(["trace", o, m]),
      debug: (o, m) => calls.push(["debug", o, m]),
      info: (o, m) => calls.push(["info", o, m]),
      warn: (o, m) => calls.push(["warn", o, m]),
      error: (o, m) => calls.push(["error", o, m]),
      child: () => logger,
      isLevelEnabled: (level) => debugOn || (level !== "debug" && level !== "trace"),
    };
    return { logger, calls };
  }

  it("logs OK calls at debug only when debug is on; failures at warn, INTERNAL at error", () => {
    const off = fakeLogger(false);
    createRequestLog(off.logger).onCall("v2", "Encrypt", "OK", 0.0001, "u1");
    expect(off.calls).toEqual([]);

    const on = fakeLogger(true);
    const log = createRequestLog(on.logger);
    log.onCall("v2", "Encrypt", "OK", 0.000123, "u1");
    const cause = Object.assign(new Error("Too many requests"), { name: "RestError", code: "429" });
    log.onCall(
      "v2",
      "Decrypt",
      "UNAVAILABLE",
      0.5,
      "u2",
      new Error("Key Vault throttled", { cause }),
    );
    log.onCall("v1beta1", "Decrypt", "INTERNAL", 0.001, "", new Error("bug"));
    expect(on.calls).toEqual([
      [
        "debug",
        { uid: "u1", service: "v2", method: "Encrypt", code: "OK", durationMs: 0.123 },
        "kms request ok",
      ],
      [
        "warn",
        {
          uid: "u2",
          service: "v2",
          method: "Decrypt",
          code: "UNAVAILABLE",
          durationMs: 500,
          error: "Key Vault throttled",
          cause: "RestError 429: Too many requests",
        },
        "kms request failed",
      ],
      [
        "error",
        expect.objectContaining({ code: "INTERNAL", service: "v1beta1", error: "bug" }),
        "kms request failed",
      ],
    ]);
  });
});
