import {
  HpackDecoder,
  HpackError,
  type HeaderField,
} from "../../../src/grpc/authority-shim/hpack-decoder.js";
import {
  encodeInteger,
  encodeLiteralBlock,
} from "../../../src/grpc/authority-shim/hpack-encoder.js";

const hex = (s: string): Buffer => Buffer.from(s.replace(/\s+/g, ""), "hex");
const pairs = (fields: HeaderField[]): [string, string][] =>
  fields.map((f) => [f.name.toString("latin1"), f.value.toString("latin1")]);
const table = (d: HpackDecoder): [string, string][] => d.dynamicTable.map((e) => [e.name, e.value]);

describe("HPACK decoder: RFC 7541 Appendix C.2 (single representations)", () => {
  it("C.2.1 literal with indexing", () => {
    const d = new HpackDecoder();
    const out = d.decode(hex("400a 6375 7374 6f6d 2d6b 6579 0d63 7573 746f 6d2d 6865 6164 6572"));
    expect(pairs(out)).toEqual([["custom-key", "custom-header"]]);
    expect(table(d)).toEqual([["custom-key", "custom-header"]]);
    expect(d.dynamicTableSize).toBe(55);
  });

  it("C.2.2 literal without indexing", () => {
    const d = new HpackDecoder();
    expect(pairs(d.decode(hex("040c 2f73 616d 706c 652f 7061 7468")))).toEqual([
      [":path", "/sample/path"],
    ]);
    expect(d.dynamicTableSize).toBe(0);
  });

  it("C.2.3 literal never indexed keeps the never-indexed flag", () => {
    const d = new HpackDecoder();
    const out = d.decode(hex("1008 7061 7373 776f 7264 0673 6563 7265 74"));
    expect(pairs(out)).toEqual([["password", "secret"]]);
    expect(out[0]!.neverIndex).toBe(true);
    expect(d.dynamicTableSize).toBe(0);
  });

  it("C.2.4 indexed field", () => {
    const d = new HpackDecoder();
    expect(pairs(d.decode(hex("82")))).toEqual([[":method", "GET"]]);
  });
});

const requests = [
  {
    headers: [
      [":method", "GET"],
      [":scheme", "http"],
      [":path", "/"],
      [":authority", "www.example.com"],
    ],
    table: [[":authority", "www.example.com"]],
    size: 57,
  },
  {
    headers: [
      [":method", "GET"],
      [":scheme", "http"],
      [":path", "/"],
      [":authority", "www.example.com"],
      ["cache-control", "no-cache"],
    ],
    table: [
      ["cache-control", "no-cache"],
      [":authority", "www.example.com"],
    ],
    size: 110,
  },
  {
    headers: [
      [":method", "GET"],
      [":scheme", "https"],
      [":path", "/index.html"],
      [":authority", "www.example.com"],
      ["custom-key", "custom-value"],
    ],
    table: [
      ["custom-key", "custom-value"],
      ["cache-control", "no-cache"],
      [":authority", "www.example.com"],
    ],
    size: 164,
  },
];

const date1 = "Mon, 21 Oct 2013 20:13:21 GMT";
const date2 = "Mon, 21 Oct 2013 20:13:22 GMT";
const cookie = "foo=ASDJKHQKBZXOQWEOPIUAXQWEOIU; max-age=3600; version=1";
const responses = [
  {
    headers: [
      [":status", "302"],
      ["cache-control", "private"],
      ["date", date1],
      ["location", "https://www.example.com"],
    ],
    table: [
      ["location", "https://www.example.com"],
      ["date", date1],
      ["cache-control", "private"],
      [":status", "302"],
    ],
    size: 222,
  },
  {
    headers: [
      [":status", "307"],
      ["cache-control", "private"],
      ["date", date1],
      ["location", "https://www.example.com"],
    ],
    table: [
      [":status", "307"],
      ["location", "https://www.example.com"],
      ["date", date1],
      ["cache-control", "private"],
    ],
    size: 222,
  },
  {
    headers: [
      [":status", "200"],
      ["cache-control", "private"],
      ["date", date2],
      ["location", "https://www.example.com"],
      ["content-encoding", "gzip"],
      ["set-cookie", cookie],
    ],
    table: [
      ["set-cookie", cookie],
      ["content-encoding", "gzip"],
      ["date", date2],
    ],
    size: 215,
  },
];

const sequences = {
  "C.3 requests, raw strings": {
    maxTableSize: 4096,
    expected: requests,
    blocks: [
      "8286 8441 0f77 7777 2e65 7861 6d70 6c65 2e63 6f6d",
      "8286 84be 5808 6e6f 2d63 6163 6865",
      "8287 85bf 400a 6375 7374 6f6d 2d6b 6579 0c63 7573 746f 6d2d 7661 6c75 65",
    ],
  },
  "C.4 requests, Huffman": {
    maxTableSize: 4096,
    expected: requests,
    blocks: [
      "8286 8441 8cf1 e3c2 e5f2 3a6b a0ab 90f4 ff",
      "8286 84be 5886 a8eb 1064 9cbf",
      "8287 85bf 4088 25a8 49e9 5ba9 7d7f 8925 a849 e95b b8e8 b4bf",
    ],
  },
  "C.5 responses with evictions, raw strings": {
    maxTableSize: 256,
    expected: responses,
    blocks: [
      "4803 3330 3258 0770 7269 7661 7465 611d 4d6f 6e2c 2032 3120 4f63 7420 3230 3133 2032 303a" +
        "3133 3a32 3120 474d 546e 1768 7474 7073 3a2f 2f77 7777 2e65 7861 6d70 6c65 2e63 6f6d",
      "4803 3330 37c1 c0bf",
      "88c1 611d 4d6f 6e2c 2032 3120 4f63 7420 3230 3133 2032 303a 3133 3a32 3220 474d 54c0 5a04" +
        "677a 6970 7738 666f 6f3d 4153 444a 4b48 514b 425a 584f 5157 454f 5049 5541 5851 5745 4f49" +
        "553b 206d 6178 2d61 6765 3d33 3630 303b 2076 6572 7369 6f6e 3d31",
    ],
  },
  "C.6 responses with evictions, Huffman": {
    maxTableSize: 256,
    expected: responses,
    blocks: [
      "4882 6402 5885 aec3 771a 4b61 96d0 7abe 9410 54d4 44a8 2005 9504 0b81 66e0 82a6 2d1b ff6e" +
        "919d 29ad 1718 63c7 8f0b 97c8 e9ae 82ae 43d3",
      "4883 640e ffc1 c0bf",
      "88c1 6196 d07a be94 1054 d444 a820 0595 040b 8166 e084 a62d 1bff c05a 839b d9ab 77ad 94e7" +
        "821d d7f2 e6c7 b335 dfdf cd5b 3960 d5af 2708 7f36 72c1 ab27 0fb5 291f 9587 3160 65c0 03ed" +
        "4ee5 b106 3d50 07",
    ],
  },
};

describe.each(Object.entries(sequences))("HPACK decoder: RFC 7541 %s", (_title, seq) => {
  it("decodes each block and tracks the dynamic table", () => {
    const d = new HpackDecoder({ maxTableSize: seq.maxTableSize });
    seq.blocks.forEach((block, i) => {
      const want = seq.expected[i]!;
      expect(pairs(d.decode(hex(block)))).toEqual(want.headers);
      expect(table(d)).toEqual(want.table);
      expect(d.dynamicTableSize).toBe(want.size);
    });
  });
});

describe("HPACK decoder: table size updates and limits", () => {
  const sizeUpdate = (n: number): Buffer => {
    const out: number[] = [];
    encodeInteger(out, n, 5, 0x20);
    return Buffer.from(out);
  };

  it("applies a size update at the start of a block, evicting entries", () => {
    const d = new HpackDecoder();
    d.decode(hex(sequences["C.3 requests, raw strings"].blocks[0]!));
    d.decode(hex(sequences["C.3 requests, raw strings"].blocks[1]!));
    expect(d.dynamicTableSize).toBe(110);
    d.decode(Buffer.concat([sizeUpdate(60), hex("82")]));
    expect(table(d)).toEqual([["cache-control", "no-cache"]]);
    d.decode(Buffer.concat([sizeUpdate(0), sizeUpdate(4096)]));
    expect(d.dynamicTableSize).toBe(0);
    // An index into the now-empty dynamic table is an error.
    expect(() => d.decode(hex("be"))).toThrow(HpackError);
  });

  it("rejects a size update after a field, or above the allowed maximum", () => {
    const d = new HpackDecoder({ maxTableSize: 4096 });
    expect(() => d.decode(Buffer.concat([hex("82"), sizeUpdate(100)]))).toThrow(/after a header/);
    expect(() => d.decode(sizeUpdate(4097))).toThrow(/over limit/);
  });

  it("drops everything when an entry is larger than the table", () => {
    const d = new HpackDecoder({ maxTableSize: 64 });
    d.decode(hex("400a 6375 7374 6f6d 2d6b 6579 0d63 7573 746f 6d2d 6865 6164 6572")); // 55 bytes
    expect(d.dynamicTableSize).toBe(55);
    d.decode(hex("410a 6c6f 6e67 6e61 6d65 3d3d")); // 10 + 10 + 32 = 52 bytes: evicts
    expect(table(d)).toEqual([[":authority", "longname=="]]);
    const big = Buffer.concat([hex("4164"), Buffer.alloc(100, 0x61)]);
    expect(pairs(d.decode(big))).toEqual([[":authority", "a".repeat(100)]]);
    expect(d.dynamicTableSize).toBe(0);
  });

  it.each([
    ["index 0", "80"],
    ["index past the tables", "ff00"],
    ["truncated integer", "ff"],
    ["integer overflow", "ff ff ff ff ff 0f"],
    ["truncated string", "0004 6162"],
    ["missing value", "0001 61"],
    ["bad Huffman padding", "0081 00 00"],
  ])("rejects %s", (_name, block) => {
    expect(() => new HpackDecoder().decode(hex(block))).toThrow(HpackError);
  });

  it("bounds the decoded header list, so indexed references cannot amplify", () => {
    const d = new HpackDecoder({ maxHeaderListSize: 1000 });
    const entry = Buffer.concat([hex("4001 78 7f 85 06"), Buffer.alloc(900, 0x79)]); // x: y*900
    d.decode(entry);
    expect(() => d.decode(hex("be be"))).toThrow(/header list exceeds/);
  });
});

describe("HPACK literal encoder", () => {
  it("round-trips through the decoder without touching its dynamic table", () => {
    const fields: HeaderField[] = [
      { name: Buffer.from(":method"), value: Buffer.from("POST"), neverIndex: false },
      { name: Buffer.from(":authority"), value: Buffer.from("localhost"), neverIndex: false },
      { name: Buffer.from("x-long"), value: Buffer.alloc(70000, 0x7a), neverIndex: false },
      { name: Buffer.from("authorization"), value: Buffer.from("secret"), neverIndex: true },
      { name: Buffer.alloc(200, 0x6e), value: Buffer.alloc(0), neverIndex: false },
    ];
    const d = new HpackDecoder({ maxHeaderListSize: 1 << 20 });
    const out = d.decode(encodeLiteralBlock(fields));
    expect(out).toEqual(fields);
    expect(d.dynamicTableSize).toBe(0);
  });

  it("encodes integers per RFC 7541 C.1", () => {
    const enc = (n: number, bits: number): number[] => {
      const out: number[] = [];
      encodeInteger(out, n, bits, 0);
      return out;
    };
    expect(enc(10, 5)).toEqual([0x0a]);
    expect(enc(1337, 5)).toEqual([0x1f, 0x9a, 0x0a]);
    expect(enc(42, 8)).toEqual([0x2a]);
  });
});
