/** A compact JWS split into its parts; undefined when it is not one. */
export interface DecodedJwt {
  readonly header: Record<string, unknown>;
  readonly payload: Record<string, unknown>;
  /** "header.payload", the bytes the signature covers. */
  readonly signingInput: string;
  readonly signature: Buffer;
}

export function decodeJwt(token: string): DecodedJwt | undefined {
  const parts = token.split(".");
  const [head, body, signature] = parts;
  if (parts.length !== 3 || head === undefined || body === undefined || signature === undefined) {
    return undefined;
  }
  const header = parseSegment(head);
  const payload = parseSegment(body);
  if (header === undefined || payload === undefined) return undefined;
  return {
    header,
    payload,
    signingInput: `${head}.${body}`,
    signature: Buffer.from(signature, "base64url"),
  };
}

function parseSegment(segment: string): Record<string, unknown> | undefined {
  if (!/^[A-Za-z0-9_-]*$/.test(segment)) return undefined;
  try {
    const value: unknown = JSON.parse(Buffer.from(segment, "base64url").toString("utf8"));
    return typeof value === "object" && value !== null && !Array.isArray(value)
      ? (value as Record<string, unknown>)
      : undefined;
  } catch {
    return undefined;
  }
}

export function encodeSegment(value: unknown): string {
  return Buffer.from(JSON.stringify(value)).toString("base64url");
}

/** A numeric claim (exp, nbf), or undefined. */
export function numericClaim(payload: Record<string, unknown>, name: string): number | undefined {
  const value = payload[name];
  return typeof value === "number" && Number.isFinite(value) ? value : undefined;
}
