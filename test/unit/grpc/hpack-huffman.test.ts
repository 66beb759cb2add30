import {
  EOS,
  HUFFMAN_CODES,
  HuffmanError,
  huffmanDecode,
  huffmanEncode,
  huffmanEncodedLength,
} from "../../../src/grpc/authority-shim/hpack-huffman.js";

const hex = (s: string): Buffer => Buffer.from(s.replace(/\s+/g, ""), "hex");

describe("HPACK Huffman code (RFC 7541 Appendix B)", () => {
  it("has 257 symbols and is a complete prefix code (Kraft sum is exactly 1)", () => {
    expect(HUFFMAN_CODES).toHaveLength(257);
    // Sum of 2^(30-len) must be 2^30 for a complete code; integers keep it exact.
    const sum = HUFFMAN_CODES.reduce((acc, [, bits]) => acc + 2 ** (30 - bits), 0);
    expect(sum).toBe(2 ** 30);
  });

  it("is canonical: the typed codes equal the codes derived from the typed lengths alone", () => {
    // Two independent typings (codes and lengths) must agree, which catches a typo in either.
    const order = HUFFMAN_CODES.map(([code, bits], symbol) => ({ code, bits, symbol })).sort(
      (a, b) => a.bits - b.bits || a.symbol - b.symbol,
    );
    let next = 0;
    let prevBits = order[0]!.bits;
    const mismatches: number[] = [];
    order.forEach((e, i) => {
      if (i > 0) {
        next = (next + 1) * 2 ** (e.bits - prevBits);
        prevBits = e.bits;
      }
      if (next !== e.code) mismatches.push(e.symbol);
    });
    expect(mismatches).toEqual([]);
    expect(HUFFMAN_CODES[EOS]).toEqual([0x3fffffff, 30]);
  });

  it("round-trips every byte value", () => {
    const all = Buffer.from(Array.from({ length: 256 }, (_, i) => i));
    const both = Buffer.concat([all, Buffer.from(all).reverse()]);
    expect(huffmanDecode(huffmanEncode(both))).toEqual(both);
    for (let i = 0; i < 256; i++) {
      const one = Buffer.from([i, i, i]);
      expect(huffmanDecode(huffmanEncode(one))).toEqual(one);
    }
  });

  it.each([
    ["www.example.com", "f1e3 c2e5 f23a 6ba0 ab90 f4ff"],
    ["no-cache", "a8eb 1064 9cbf"],
    ["custom-key", "25a8 49e9 5ba9 7d7f"],
    ["custom-value", "25a8 49e9 5bb8 e8b4 bf"],
    ["302", "6402"],
    ["private", "aec3 771a 4b"],
    ["Mon, 21 Oct 2013 20:13:21 GMT", "d07a be94 1054 d444 a820 0595 040b 8166 e082 a62d 1bff"],
    ["https://www.example.com", "9d29 ad17 1863 c78f 0b97 c8e9 ae82 ae43 d3"],
    ["307", "640e ff"],
    ["gzip", "9bd9 ab"],
    [
      "foo=ASDJKHQKBZXOQWEOPIUAXQWEOIU; max-age=3600; version=1",
      "94e7 821d d7f2 e6c7 b335 dfdf cd5b 3960 d5af 2708 7f36 72c1 ab27 0fb5 291f 9587 3160 65c0 03ed 4ee5 b106 3d50 07",
    ],
  ])("matches the RFC 7541 Appendix C string %j", (text, coded) => {
    expect(huffmanEncode(Buffer.from(text, "latin1")).toString("hex")).toBe(
      hex(coded).toString("hex"),
    );
    expect(huffmanDecode(hex(coded)).toString("latin1")).toBe(text);
    expect(huffmanEncodedLength(Buffer.from(text, "latin1"))).toBe(hex(coded).length);
  });

  it("decodes the empty string", () => {
    expect(huffmanDecode(Buffer.alloc(0))).toEqual(Buffer.alloc(0));
  });

  it("rejects padding longer than 7 bits, padding that is not all ones, and EOS", () => {
    // "a" is 00011 (5 bits); a whole extra 0xff byte is 11 bits of padding.
    expect(() => huffmanDecode(Buffer.from([0x1f, 0xff]))).toThrow(HuffmanError);
    // 00011 followed by 000 padding is not a prefix of EOS.
    expect(() => huffmanDecode(Buffer.from([0x18]))).toThrow(HuffmanError);
    // 30 one-bits are EOS, which must not appear in a string.
    expect(() => huffmanDecode(Buffer.from([0xff, 0xff, 0xff, 0xff]))).toThrow(HuffmanError);
    expect(huffmanDecode(Buffer.from([0x1f]))).toEqual(Buffer.from("a"));
  });
});
