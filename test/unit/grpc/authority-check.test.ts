import {
  isAcceptableAuthority,
  needsAuthorityRewrite,
  rewriteAuthority,
} from "../../../src/grpc/authority-shim/authority-check.js";
import type { HeaderField } from "../../../src/grpc/authority-shim/hpack-decoder.js";

const field = (name: string, value: string, neverIndex = false): HeaderField => ({
  name: Buffer.from(name),
  value: Buffer.from(value, "latin1"),
  neverIndex,
});

describe("authority check", () => {
  it.each([
    ["localhost", true],
    ["%2Fopt%2Fazurekms.socket", true],
    ["[::1]:443", true],
    ["user@host:80", false],
    ["@", false],
    ["/opt/azurekms.socket", false],
    ["", false],
    ["a b", false],
    ["a?b", false],
    ["caf\xe9", false],
  ])("%j acceptable: %s", (value, ok) => {
    expect(isAcceptableAuthority(Buffer.from(value, "latin1"))).toBe(ok);
  });

  it("rewrites only a refused :authority, keeping its never-indexed flag", () => {
    const fields = [
      field(":authority", "/opt/azurekms.socket", true),
      field("host", "/opt/azurekms.socket"),
      field("x-path", "/a/b"),
    ];
    expect(needsAuthorityRewrite(fields)).toBe(true);
    const out = fields.map(rewriteAuthority);
    expect(out[0]).toEqual(field(":authority", "localhost", true));
    expect(out.slice(1)).toEqual(fields.slice(1));
    expect(needsAuthorityRewrite([field(":authority", "localhost")])).toBe(false);
    expect(rewriteAuthority(field(":authority", "ok"))).toEqual(field(":authority", "ok"));
  });
});
