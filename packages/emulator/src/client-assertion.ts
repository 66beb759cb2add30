import { constants, verify } from "node:crypto";
import type { ClientAuthenticator, ClientAuthRequest, ClientAuthResult } from "./client-auth.js";
import { entraError } from "./client-auth.js";
import { FEDERATED_ISSUER } from "./federated-tokens.js";
import { decodeJwt, numericClaim, type DecodedJwt } from "./jwt.js";
import { nowSeconds } from "./key-store.js";

export const JWT_BEARER = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/** Entra tolerates this much clock skew on assertion times. */
const SKEW_SECONDS = 300;

/**
 * private_key_jwt: a JWT signed by a certificate registered on the app (ClientCertificate
 * credential), or a federated token from a trusted issuer (workload identity).
 */
export const clientAssertionAuthenticator: ClientAuthenticator = {
  applies(form) {
    return form.has("client_assertion");
  },
  authenticate(request) {
    const { form } = request;
    if (form.get("client_assertion_type") !== JWT_BEARER) {
      return refuse(
        entraError(
          50027,
          `Invalid client_assertion_type; expected '${JWT_BEARER}'.`,
          "invalid_request",
          400,
        ),
      );
    }
    const jwt = decodeJwt(form.get("client_assertion") ?? "");
    if (jwt === undefined) {
      return refuse(
        entraError(50027, "JWT token is invalid or malformed.", "invalid_request", 400),
      );
    }
    return jwt.payload["iss"] === FEDERATED_ISSUER
      ? federatedLogin(request, form.get("client_assertion") ?? "")
      : certificateLogin(request, jwt);
  },
};

function refuse(error: ReturnType<typeof entraError>): ClientAuthResult {
  return { ok: false, error };
}

function certificateLogin(request: ClientAuthRequest, jwt: DecodedJwt): ClientAuthResult {
  const { payload, header } = jwt;
  const clientId = request.form.get("client_id") ?? payload["sub"];
  if (typeof clientId !== "string" || payload["iss"] !== clientId || payload["sub"] !== clientId) {
    return refuse(
      entraError(700021, "Client assertion application identifier doesn't match 'client_id'."),
    );
  }
  const audience = typeof payload["aud"] === "string" ? payload["aud"].split("?")[0] : undefined;
  if (audience?.toLowerCase() !== request.tokenEndpoint.toLowerCase()) {
    return refuse(
      entraError(
        700023,
        `Client assertion audience claim does not match Realm issuer. Review the documentation at https://aka.ms/certCredentials. Expected ${request.tokenEndpoint}.`,
      ),
    );
  }
  const now = nowSeconds();
  const exp = numericClaim(payload, "exp");
  const nbf = numericClaim(payload, "nbf") ?? 0;
  if (exp === undefined || exp + SKEW_SECONDS <= now || nbf - SKEW_SECONDS > now) {
    return refuse(entraError(700024, "Client assertion is not within its valid time range."));
  }
  const thumbprint = header["x5t#S256"] ?? header["x5t"];
  const registered = request.core.directory
    .certificatesOf(clientId)
    .find((c) => c.x5tS256 === thumbprint || c.x5t === thumbprint);
  if (registered === undefined) {
    return refuse(
      entraError(
        700027,
        `Client assertion failed signature validation. [Reason - The key was not found., Thumbprint of key used by client: '${String(thumbprint)}']`,
      ),
    );
  }
  const alg = header["alg"];
  const key = registered.certificate.publicKey;
  const data = Buffer.from(jwt.signingInput);
  const valid =
    alg === "PS256"
      ? verify(
          "sha256",
          data,
          {
            key,
            padding: constants.RSA_PKCS1_PSS_PADDING,
            saltLength: constants.RSA_PSS_SALTLEN_DIGEST,
          },
          jwt.signature,
        )
      : alg === "RS256" && verify("sha256", data, key, jwt.signature);
  if (!valid) {
    return refuse(
      entraError(700027, `Client assertion failed signature validation (alg ${String(alg)}).`),
    );
  }
  return { ok: true, clientId };
}

/** Workload identity: the assertion is a service account token, the client an app or an MI. */
function federatedLogin(request: ClientAuthRequest, assertion: string): ClientAuthResult {
  const { core, form } = request;
  const check = core.federation.verify(assertion);
  if (!check.ok) return refuse(entraError(check.code, check.message));
  const clientId = form.get("client_id") ?? "";
  const known =
    clientId === core.registration.clientId ||
    core.directory.isUserAssigned(clientId) ||
    clientId === core.directory.systemAssignedClientId;
  if (!known) {
    return refuse(
      entraError(
        700016,
        `Application with identifier '${clientId}' was not found in the directory.`,
        "unauthorized_client",
        400,
      ),
    );
  }
  return { ok: true, clientId };
}
