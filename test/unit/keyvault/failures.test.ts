/**
 * One classification of Azure failures: the gRPC code the plugin answers with, the retry and
 * circuit-breaker verdict, and the metric outcome all come from failures.ts, so the three readers
 * (errors.ts, resilience.ts, metrics-policy.ts) cannot disagree.
 */
import { RestError } from "@azure/core-rest-pipeline";
import { AuthenticationError, CredentialUnavailableError } from "@azure/identity";
import { kmsErrorFromAzure } from "../../../src/keyvault/errors.js";
import { classifyFailure, classifyStatus } from "../../../src/keyvault/failures.js";
import { outcomeFromError, outcomeFromStatus } from "../../../src/keyvault/metrics-policy.js";
import { verdictForError, verdictForStatus } from "../../../src/keyvault/resilience.js";

describe("a Key Vault answer, by status", () => {
  it.each([
    // status, code, retry, outage, throttled, outcome
    [400, "INVALID_ARGUMENT", false, false, false, "client_error"],
    [401, "UNAUTHENTICATED", false, false, false, "unauthorized"],
    [403, "PERMISSION_DENIED", false, false, false, "forbidden"],
    [404, "FAILED_PRECONDITION", false, false, false, "not_found"],
    [408, "UNAVAILABLE", true, true, false, "timeout"],
    [409, "UNKNOWN", false, false, false, "client_error"],
    [429, "UNAVAILABLE", true, false, true, "throttled"],
    [500, "UNAVAILABLE", true, true, false, "server_error"],
    [501, "UNKNOWN", false, false, false, "server_error"],
    [502, "UNAVAILABLE", true, true, false, "server_error"],
    [503, "UNAVAILABLE", true, true, false, "server_error"],
    [504, "UNAVAILABLE", true, true, false, "server_error"],
    [505, "UNKNOWN", false, false, false, "server_error"],
  ] as const)(
    "%i → %s, retry %s, outage %s, throttled %s, %s",
    (status, code, retry, outage, throttled, outcome) => {
      expect(classifyStatus(status)).toMatchObject({ code, retry, outage, throttled, outcome });
      // Every reader says the same.
      const err = new RestError(`status ${status}`, { statusCode: status });
      expect(kmsErrorFromAzure(err, "op").code).toBe(code);
      expect(verdictForStatus(status)).toMatchObject({ retry, outage });
      expect(verdictForStatus(status).throttled ?? false).toBe(throttled);
      expect(verdictForError(err)).toMatchObject({ retry, outage });
      expect(outcomeFromStatus(status)).toBe(outcome);
      expect(outcomeFromError(err)).toBe(outcome);
    },
  );

  it.each([
    ["KeyDisabled", "FAILED_PRECONDITION", "the key version is not usable (KeyDisabled)"],
    ["KeyOperationForbidden", "FAILED_PRECONDITION", "Key Vault refused the operation"],
    ["ForbiddenByRbac", "PERMISSION_DENIED", "Key Vault denied the request (403 ForbiddenByRbac)"],
  ])("403 with innererror %s → %s", (inner, code, message) => {
    const details = { error: { code: "Forbidden", innererror: { code: inner } } };
    const err = new RestError("forbidden", { statusCode: 403, code: "Forbidden" });
    Object.assign(err, { details });
    const e = kmsErrorFromAzure(err, "op");
    expect(e.code).toBe(code);
    expect(e.message).toContain(message);
    expect(classifyFailure(err)).toMatchObject({
      retry: false,
      outage: false,
      outcome: "forbidden",
    });
  });
});

describe("no answer", () => {
  it.each([
    [
      "a reset",
      Object.assign(new Error("x"), { code: "ECONNRESET" }),
      "UNAVAILABLE",
      true,
      true,
      "network",
    ],
    [
      "a socket timeout",
      Object.assign(new Error("x"), { code: "ETIMEDOUT" }),
      "UNAVAILABLE",
      true,
      true,
      "timeout",
    ],
    [
      "an abort",
      Object.assign(new Error("x"), { name: "AbortError" }),
      "DEADLINE_EXCEEDED",
      true,
      true,
      "timeout",
    ],
    ["something else", new Error("x"), "UNAVAILABLE", false, true, "network"],
    [
      "no credential",
      new CredentialUnavailableError("none"),
      "UNAVAILABLE",
      false,
      true,
      "network",
    ],
    [
      "a 4xx from the token endpoint",
      new AuthenticationError(400, { error: "invalid_client", error_description: "bad" }),
      "UNAUTHENTICATED",
      false,
      false,
      "network",
    ],
  ] as const)("%s → %s, retry %s, outage %s, %s", (_name, err, code, retry, outage, outcome) => {
    expect(classifyFailure(err)).toMatchObject({ code, retry, outage, outcome });
    expect(kmsErrorFromAzure(err, "op").code).toBe(code);
    expect(verdictForError(err)).toEqual({ retry, outage });
    expect(outcomeFromError(err)).toBe(outcome);
  });
});
