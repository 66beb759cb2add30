// RFC 7541 Appendix A: the static table, index 1..61 (slot 0 is unused).
const ENTRIES: readonly (readonly [string, string])[] = [
  [":authority", ""],
  [":method", "GET"],
  [":method", "POST"],
  [":path", "/"],
  [":path", "/index.html"],
  [":scheme", "http"],
  [":scheme", "https"],
  [":status", "200"],
  [":status", "204"],
  [":status", "206"],
  [":status", "304"],
  [":status", "400"],
  [":status", "404"],
  [":status", "500"],
  ["accept-charset", ""],
  ["accept-encoding", "gzip, deflate"],
  ["accept-language", ""],
  ["accept-ranges", ""],
  ["accept", ""],
  ["access-control-allow-origin", ""],
  ["age", ""],
  ["allow", ""],
  ["authorization", ""],
  ["cache-control", ""],
  ["content-disposition", ""],
  ["content-encoding", ""],
  ["content-language", ""],
  ["content-length", ""],
  ["content-location", ""],
  ["content-range", ""],
  ["content-type", ""],
  ["cookie", ""],
  ["date", ""],
  ["etag", ""],
  ["expect", ""],
  ["expires", ""],
  ["from", ""],
  ["host", ""],
  ["if-match", ""],
  ["if-modified-since", ""],
  ["if-none-match", ""],
  ["if-range", ""],
  ["if-unmodified-since", ""],
  ["last-modified", ""],
  ["link", ""],
  ["location", ""],
  ["max-forwards", ""],
  ["proxy-authenticate", ""],
  ["proxy-authorization", ""],
  ["range", ""],
  ["referer", ""],
  ["refresh", ""],
  ["retry-after", ""],
  ["server", ""],
  ["set-cookie", ""],
  ["strict-transport-security", ""],
  ["transfer-encoding", ""],
  ["user-agent", ""],
  ["vary", ""],
  ["via", ""],
  ["www-authenticate", ""],
];

export interface StaticEntry {
  readonly name: Buffer;
  readonly value: Buffer;
}

export const STATIC_TABLE_LENGTH = ENTRIES.length;

const TABLE: readonly StaticEntry[] = ENTRIES.map(([name, value]) => ({
  name: Buffer.from(name, "latin1"),
  value: Buffer.from(value, "latin1"),
}));

/** The entry at a 1-based static index, or undefined outside 1..61. */
export function staticEntry(index: number): StaticEntry | undefined {
  return index >= 1 ? TABLE[index - 1] : undefined;
}

const FIRST_INDEX_BY_NAME = new Map<string, number>();
ENTRIES.forEach(([name], i) => {
  if (!FIRST_INDEX_BY_NAME.has(name)) FIRST_INDEX_BY_NAME.set(name, i + 1);
});

/** The lowest static index whose name is `name`, used to shorten re-encoded literals. */
export function staticNameIndex(name: Buffer): number | undefined {
  return FIRST_INDEX_BY_NAME.get(name.toString("latin1"));
}
