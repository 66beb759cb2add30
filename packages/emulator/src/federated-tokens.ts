import { createHmac, randomUUID, timingSafeEqual } from "node:crypto";
import { decodeJwt, encodeSegment, numericClaim } from "./jwt.js";
import { nowSeconds } from "./key-store.js";

/** Issuer of the emulated Kubernetes service account tokens (a cluster's OIDC issuer). */
export const FEDERATED_ISSUER = "https://oidc.keyvault-kms-emulator.invalid";
/** The audience Entra expects in federated credentials (and the AKS webhook requests). */
export const FEDERATED_AUDIENCE = "api://AzureADTokenExchange";

export interface FederatedTokenRequest {
  /** e.g. system:serviceaccount:kube-system:keyvault-kms */
  subject: string;
  /** Default api://AzureADTokenExchange; anything else is refused at exchange, like Entra. */
  audience?: string;
  /** Default 3600; zero or negative makes an already expired token. */
  lifetimeSeconds?: number;
}

export type FederatedCheck =
  { ok: true; subject: string } | { ok: false; code: number; message: string };

/**
 * Stand-in for a cluster's service account token issuer. Tokens are HS256 under a key derived
 * from the emulator's token key: only the emulator verifies them, and they survive a restart.
 */
export class FederatedTokens {
  private readonly key: Buffer;

  constructor(tokenKey: Buffer) {
    this.key = createHmac("sha256", tokenKey).update("federated service account tokens").digest();
  }

  issue(request: FederatedTokenRequest): string {
    const now = nowSeconds();
    const lifetime = request.lifetimeSeconds ?? 3600;
    const head = encodeSegment({ alg: "HS256", typ: "JWT", kid: "emulator-sa" });
    const body = encodeSegment({
      iss: FEDERATED_ISSUER,
      sub: request.subject,
      aud: [request.audience ?? FEDERATED_AUDIENCE],
      iat: Math.min(now, now + lifetime - 1),
      nbf: Math.min(now, now + lifetime - 1),
      exp: now + lifetime,
      jti: randomUUID(),
    });
    return `${head}.${body}.${this.sign(`${head}.${body}`)}`;
  }

  verify(token: string): FederatedCheck {
    const jwt = decodeJwt(token);
    if (jwt === undefined) {
      return { ok: false, code: 50027, message: "JWT token is invalid or malformed." };
    }
    const expected = Buffer.from(this.sign(jwt.signingInput), "base64url");
    if (
      jwt.header["alg"] !== "HS256" ||
      expected.length !== jwt.signature.length ||
      !timingSafeEqual(expected, jwt.signature)
    ) {
      return {
        ok: false,
        code: 700027,
        message: "Client assertion failed signature validation.",
      };
    }
    if (jwt.payload["iss"] !== FEDERATED_ISSUER) {
      return {
        ok: false,
        code: 700211,
        message: `No matching federated identity record found for presented assertion issuer '${String(jwt.payload["iss"])}'.`,
      };
    }
    const now = nowSeconds();
    const exp = numericClaim(jwt.payload, "exp") ?? 0;
    const nbf = numericClaim(jwt.payload, "nbf") ?? 0;
    if (exp <= now || nbf > now + 300) {
      return {
        ok: false,
        code: 700024,
        message: `Client assertion is not within its valid time range. Current time: ${new Date(now * 1000).toISOString()}, expiry time of assertion ${new Date(exp * 1000).toISOString()}.`,
      };
    }
    const aud = jwt.payload["aud"];
    const audiences = Array.isArray(aud) ? aud : [aud];
    if (!audiences.includes(FEDERATED_AUDIENCE)) {
      return {
        ok: false,
        code: 700212,
        message: `No matching federated identity record found for presented assertion audience '${String(audiences[0])}'.`,
      };
    }
    const sub = jwt.payload["sub"];
    if (typeof sub !== "string" || sub === "") {
      return {
        ok: false,
        code: 700213,
        message: "No matching federated identity record found for presented assertion subject.",
      };
    }
    return { ok: true, subject: sub };
  }

  private sign(data: string): string {
    return createHmac("sha256", this.key).update(data).digest("base64url");
  }
}
