import type { HeaderField } from "./hpack-decoder.js";

// Octets nghttp2 accepts in :authority (its VALID_AUTHORITY_CHARS): RFC 3986 authority
// characters without "/", "?", "#" and friends, and never empty. Checked octet by octet against
// Node 20's server in test/integration/authority-problem.test.ts, which also shows that a host
// header next to :authority is not checked, so only :authority needs rewriting.
const ALLOWED = new Uint8Array(256);
for (const c of "!$%&'()*+,-.:;=@[]_~") ALLOWED[c.charCodeAt(0)] = 1;
for (let c = 0x30; c <= 0x39; c++) ALLOWED[c] = 1;
for (let c = 0x41; c <= 0x5a; c++) ALLOWED[c] = 1;
for (let c = 0x61; c <= 0x7a; c++) ALLOWED[c] = 1;

/** Whether Node's HTTP/2 server would accept this value as :authority. */
export function isAcceptableAuthority(value: Uint8Array): boolean {
  if (value.length === 0) return false;
  for (const b of value) if (ALLOWED[b] !== 1) return false;
  return true;
}

const AUTHORITY = Buffer.from(":authority");
const REPLACEMENT = Buffer.from("localhost");

function isRefusedAuthority(f: HeaderField): boolean {
  return f.name.equals(AUTHORITY) && !isAcceptableAuthority(f.value);
}

/** Whether the list holds an :authority that Node would refuse. */
export function needsAuthorityRewrite(fields: readonly HeaderField[]): boolean {
  return fields.some(isRefusedAuthority);
}

/** Replaces an :authority that Node would refuse with "localhost"; other fields unchanged. */
export function rewriteAuthority(field: HeaderField): HeaderField {
  if (!isRefusedAuthority(field)) return field;
  return { name: field.name, value: REPLACEMENT, neverIndex: field.neverIndex };
}
