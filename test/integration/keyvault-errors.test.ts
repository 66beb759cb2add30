/**
 * Key Vault answers the emulator cannot give on a list (403 on metadata), mapped by shape: a
 * RestError as @azure/core-rest-pipeline throws it (name, statusCode, code, details).
 */
import { isKeyNotFound, kmsErrorFromAzure } from "../../src/keyvault/errors.js";

function restError(statusCode: number, code: string, inner?: string) {
  const error = Object.assign(new Error(`${code} from Key Vault`), {
    name: "RestError",
    statusCode,
    code,
    details: {
      error: {
        code,
        message: "…",
        ...(inner === undefined ? {} : { innererror: { code: inner } }),
      },
    },
  });
  return error;
}

describe("kmsErrorFromAzure on a list of versions", () => {
  it.each([
    [restError(403, "Forbidden", "ForbiddenByRbac"), "PERMISSION_DENIED"],
    [restError(403, "Forbidden", "ForbiddenByFirewall"), "PERMISSION_DENIED"],
    [restError(403, "Forbidden"), "PERMISSION_DENIED"],
    [restError(401, "Unauthorized"), "UNAUTHENTICATED"],
    [restError(429, "Throttled"), "UNAVAILABLE"],
    [restError(503, "ServiceUnavailable"), "UNAVAILABLE"],
    [restError(403, "Forbidden", "KeyDisabled"), "FAILED_PRECONDITION"],
    [restError(404, "NotFound"), "FAILED_PRECONDITION"],
  ])("%# %p → %s", (err, code) => {
    expect(kmsErrorFromAzure(err, "listing the versions of key kek").code).toBe(code);
  });

  it("only Key Vault's own KeyNotFound reads as a deleted key", () => {
    expect(isKeyNotFound(restError(404, "KeyNotFound"))).toBe(true);
    expect(isKeyNotFound(restError(404, "NotFound"))).toBe(false);
    expect(isKeyNotFound(restError(403, "Forbidden", "ForbiddenByRbac"))).toBe(false);
    expect(isKeyNotFound(restError(503, "ServiceUnavailable"))).toBe(false);
    expect(isKeyNotFound(undefined)).toBe(false);
  });
});
