import { createHmac, randomUUID, timingSafeEqual } from "node:crypto";
import { nowSeconds } from "./key-store.js";

export const TOKEN_LIFETIME_SECONDS = 3599;

export interface TokenClaims {
  aud: string;
  iss: string;
  tid: string;
  appid: string;
  iat: number;
  nbf: number;
  exp: number;
  jti: string;
}

export type TokenCheck = { ok: true; claims: TokenClaims } | { ok: false; message: string };

/**
 * Access tokens are HS256 JWTs signed with a key the emulator keeps (persisted with its state),
 * so only tokens it issued pass, and they keep passing across a restart with the same state.
 */
/** Issued access tokens kept for tests (Emulator.issuedTokens), newest last. */
const MAX_REMEMBERED_TOKENS = 100;

export class TokenIssuer {
  private readonly remembered: string[] = [];

  constructor(private readonly signingKey: Buffer) {}

  /** Test-only: the last access tokens issued, to check that they never reach a log. */
  issued(): string[] {
    return [...this.remembered];
  }

  issue(tenantId: string, clientId: string, audience: string): string {
    const now = nowSeconds();
    const claims: TokenClaims = {
      aud: audience,
      iss: `https://sts.windows.net/${tenantId}/`,
      tid: tenantId,
      appid: clientId,
      iat: now,
      nbf: now - 300,
      exp: now + TOKEN_LIFETIME_SECONDS,
      jti: randomUUID(),
    };
    const head = encodeJson({ alg: "HS256", typ: "JWT" });
    const body = encodeJson(claims);
    const token = `${head}.${body}.${this.sign(`${head}.${body}`)}`;
    this.remembered.push(token);
    if (this.remembered.length > MAX_REMEMBERED_TOKENS) this.remembered.shift();
    return token;
  }

  verify(token: string, audience: string, tenantId: string): TokenCheck {
    const parts = token.split(".");
    const [head, body, signature] = parts;
    if (parts.length !== 3 || head === undefined || body === undefined || signature === undefined) {
      return { ok: false, message: "AKV10013: Invalid token: not issued by this emulator." };
    }
    const expected = Buffer.from(this.sign(`${head}.${body}`));
    const actual = Buffer.from(signature);
    if (expected.length !== actual.length || !timingSafeEqual(expected, actual)) {
      return { ok: false, message: "AKV10013: Invalid token: not issued by this emulator." };
    }
    let claims: TokenClaims;
    try {
      claims = JSON.parse(Buffer.from(body, "base64url").toString("utf8")) as TokenClaims;
    } catch {
      return { ok: false, message: "AKV10013: Invalid token: malformed claims." };
    }
    if (claims.exp <= nowSeconds()) {
      return { ok: false, message: "AKV10032: Invalid token: the token is expired." };
    }
    if (claims.aud.replace(/\/+$/, "") !== audience) {
      return {
        ok: false,
        message: `AKV10022: Invalid audience. Expected ${audience}, found: ${claims.aud}.`,
      };
    }
    if (claims.tid !== tenantId) {
      return { ok: false, message: `AKV10032: Invalid issuer. Expected tenant ${tenantId}.` };
    }
    return { ok: true, claims };
  }

  private sign(data: string): string {
    return createHmac("sha256", this.signingKey).update(data).digest("base64url");
  }
}

function encodeJson(value: unknown): string {
  return Buffer.from(JSON.stringify(value)).toString("base64url");
}
