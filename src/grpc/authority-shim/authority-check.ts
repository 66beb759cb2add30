import type { HeaderField } from "./hpack-decoder.js";

// Octets Node's HTTP/2 server (nghttp2) accepts in :authority: RFC 3986 host characters without
// "/", "?", "#" and friends, and never empty. "@" (userinfo, RFC 9113 §8.3.1) is refused since
// nghttp2/nghttp2#2262 (October 2024): Node 24.22 (nghttp2 1.70) refuses it, Node 20.20 (1.61) did not.
// test/integration/authority-problem.test.ts checks every octet against the running Node, and
// also shows that a host header next to :authority is not checked, so only :authority is rewritten.
const ALLOWED = new Uint8Array(256);
for (const c of "!$%&'()*+,-.:;=[]_~") ALLOWED[c.charCodeAt(0)] = 1;
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
