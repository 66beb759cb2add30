/**
 * An untrusted server certificate is named as such, with --ca-file, however the Azure SDK wraps
 * it: a pipeline error with the code, a cause chain, an aggregate, or only the text.
 */
import { CredentialUnavailableError } from "@azure/identity";
import { RestError } from "@azure/core-rest-pipeline";
import { kmsErrorFromAzure } from "../../../src/keyvault/errors.js";

const tlsError = (code: string, message: string) => Object.assign(new Error(message), { code });

describe("an untrusted certificate", () => {
  it.each([
    [
      "a pipeline error with the code",
      new RestError("unable to verify the first certificate", {
        code: "UNABLE_TO_VERIFY_LEAF_SIGNATURE",
      }),
    ],
    [
      "the code in the cause",
      new Error("request failed", {
        cause: tlsError(
          "SELF_SIGNED_CERT_IN_CHAIN",
          "self-signed certificate in certificate chain",
        ),
      }),
    ],
    [
      "an aggregate",
      new AggregateError([new Error("x"), tlsError("CERT_HAS_EXPIRED", "certificate has expired")]),
    ],
    [
      "only the text, in an identity error",
      new CredentialUnavailableError(
        "ClientSecretCredential: unable to get local issuer certificate",
      ),
    ],
  ])("%s", (_name, err) => {
    const e = kmsErrorFromAzure(err, "listing the versions of key k");
    expect(e.code).toBe("UNAVAILABLE");
    expect(e.message).toMatch(
      /^listing the versions of key k: the TLS certificate of .+ is not trusted \([A-Z_]+\); give --ca-file/,
    );
  });

  it("names the host when the request says", () => {
    const err = new RestError("unable to verify the first certificate", {
      code: "UNABLE_TO_VERIFY_LEAF_SIGNATURE",
      request: { url: "https://myvault.vault.azure.net/keys/k?api-version=7.4" } as never,
    });
    expect(kmsErrorFromAzure(err, "x").message).toContain(
      "the TLS certificate of myvault.vault.azure.net is not trusted (UNABLE_TO_VERIFY_LEAF_SIGNATURE)",
    );
  });

  it("leaves other network failures alone", () => {
    const err = new RestError("connect ECONNREFUSED", { code: "ECONNREFUSED" });
    expect(kmsErrorFromAzure(err, "x").message).toBe("x: Key Vault unreachable (ECONNREFUSED)");
  });
});
