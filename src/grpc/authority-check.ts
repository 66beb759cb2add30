import type { HeaderField } from "./hpack-decoder.js";

// Octets nghttp2 accepts in :authority and host (its VALID_AUTHORITY_CHARS): RFC 3986 authority
// characters without "/", "?", "#" and friends. Checked against Node 20's server in
// test/integration/authority-problem.test.ts.
const ALLOWED = new Uint8Array(256);
for (const c of "!$%&'()*+,-.:;=@[]_~") ALLOWED[c.charCodeAt(0)] = 1;
for (let c = 0x30; c <= 0x39; c++) ALLOWED[c] = 1;
for (let c = 0x41; c <= 0x5a; c++) ALLOWED[c] = 1;
for (let c = 0x61; c <= 0x7a; c++) ALLOWED[c] = 1;

/** Whether Node's HTTP/2 server would accept this value as :authority or host (not empty). */
export function isAcceptableAuthority(value: Uint8Array): boolean {
  if (value.length === 0) return false;
  for (const b of value) if (ALLOWED[b] !== 1) return false;
  return true;
}

const AUTHORITY = Buffer.from(":authority");
const HOST = Buffer.from("host");
const REPLACEMENT = Buffer.from("localhost");

function isAuthorityField(f: HeaderField): boolean {
  return f.name.equals(AUTHORITY) || f.name.equals(HOST);
}

/** Whether any :authority or host field in the list would be refused by Node. */
export function needsAuthorityRewrite(fields: readonly HeaderField[]): boolean {
  return fields.some((f) => isAuthorityField(f) && !isAcceptableAuthority(f.value));
}

/** Replaces an unacceptable :authority or host value with "localhost"; other fields unchanged. */
export function rewriteAuthority(field: HeaderField): HeaderField {
  if (!isAuthorityField(field) || isAcceptableAuthority(field.value)) return field;
  return { name: field.name, value: REPLACEMENT, neverIndex: field.neverIndex };
}
