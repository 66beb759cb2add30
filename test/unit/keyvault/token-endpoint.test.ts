/**
 * tokenOutage reads the errors @azure/identity and MSAL throw, in the shapes observed against
 * the emulator (test/integration/token-endpoint-faults.test.ts runs the real thing): the MSAL
 * causes are rebuilt by shape, since @azure/msal-node is not a direct dependency.
 */
import {
  AuthenticationError,
  AuthenticationRequiredError,
  CredentialUnavailableError,
} from "@azure/identity";
import { kmsErrorFromAzure } from "../../../src/keyvault/errors.js";
import { verdictForError } from "../../../src/keyvault/resilience.js";
import { TokenEndpointError, tokenOutage } from "../../../src/keyvault/token-endpoint.js";

function msal(name: string, errorCode: string, message: string, status?: number): Error {
  return Object.assign(new Error(message), {
    name,
    errorCode,
    ...(status === undefined ? {} : { status }),
  });
}

function required(cause: Error): AuthenticationRequiredError {
  return new AuthenticationRequiredError({ scopes: ["s"], message: cause.message, cause });
}

const networkError = msal(
  "ClientAuthError",
  "network_error",
  "network_error: See https://aka.ms/msal.js.errors#network_error for details",
);

describe("tokenOutage", () => {
  it.each<[string, unknown, string | undefined, boolean | undefined]>([
    ["reset or request timeout", required(networkError), "unreachable", true],
    [
      "OpenID configuration unreachable",
      new CredentialUnavailableError(
        "endpoints_resolution_error: See https://aka.ms/msal.js.errors#endpoints_resolution_error for details",
      ),
      "unreachable",
      true,
    ],
    [
      "a gateway's HTML 502",
      required(msal("ServerError", "server_error", "server_error: … Http status code: 502 …", 502)),
      "failing",
      false,
    ],
    [
      "503 temporarily_unavailable",
      required(msal("ServerError", "temporarily_unavailable", "temporarily_unavailable: …", 503)),
      "failing",
      false,
    ],
    [
      "MSAL's throttling replay after a 5xx",
      required(msal("ServerError", "", ": A server error occured.")),
      "failing",
      false,
    ],
    [
      "a proxy's HTML 403",
      required(msal("ServerError", "client_error", "client_error: … Http status code: 403 …", 403)),
      "failing",
      false,
    ],
    [
      "managed identity, IMDS reset",
      new CredentialUnavailableError(
        "ManagedIdentityCredential: Network unreachable. Message: network_error: …",
        {
          cause: networkError,
        },
      ),
      "unreachable",
      true,
    ],
    [
      "AADSTS7000215 invalid_client",
      required(msal("ServerError", "invalid_client", "invalid_client: … AADSTS7000215 …", 401)),
      undefined,
      undefined,
    ],
    [
      "AuthenticationError 401",
      new AuthenticationError(401, { error: "unauthorized_client", error_description: "…" }),
      undefined,
      undefined,
    ],
    [
      "AuthenticationError 503",
      new AuthenticationError(503, { error: "temporarily_unavailable", error_description: "…" }),
      "failing",
      false,
    ],
    [
      "a tenant mismatch",
      new CredentialUnavailableError(
        "The current credential is not configured to acquire tokens for tenant x.",
      ),
      undefined,
      undefined,
    ],
    [
      "a Key Vault RestError 503",
      Object.assign(new Error("x"), { name: "RestError", statusCode: 503 }),
      undefined,
      undefined,
    ],
  ])("%s", (_name, err, kind, retry) => {
    const outage = tokenOutage(err);
    expect(outage?.kind).toBe(kind);
    expect(outage?.retry).toBe(retry);
  });
});

describe("token endpoint outages in the error table and the retry policy", () => {
  const timeout = new TokenEndpointError(
    { kind: "timeout", detail: "no answer", retry: true },
    "login.microsoftonline.com",
  );

  it("are UNAVAILABLE naming the host; a refusal stays UNAUTHENTICATED", () => {
    expect(kmsErrorFromAzure(timeout, "op").message).toBe(
      "op: the token endpoint did not answer in time (login.microsoftonline.com); check DNS, firewall, proxy (HTTPS_PROXY/NO_PROXY) toward it",
    );
    expect(kmsErrorFromAzure(required(networkError), "op").code).toBe("UNAVAILABLE");
    const refused = required(msal("ServerError", "invalid_client", "invalid_client: …", 401));
    expect(kmsErrorFromAzure(refused, "op").code).toBe("UNAUTHENTICATED");
  });

  it("count toward the breaker, and no answer is retried", () => {
    expect(verdictForError(timeout)).toEqual({ retry: true, outage: true });
    expect(verdictForError(required(networkError))).toEqual({ retry: true, outage: true });
    const failing = required(msal("ServerError", "server_error", "server_error: …", 502));
    expect(verdictForError(failing)).toEqual({ retry: false, outage: true });
    const refused = required(msal("ServerError", "invalid_client", "invalid_client: …", 401));
    expect(verdictForError(refused)).toEqual({ retry: false, outage: false });
  });
});
