import { HttpAddressError, parseHttpAddress } from "../../../src/http/index.js";

describe("--metrics-addr", () => {
  it.each([
    ["8095", { host: undefined, port: 8095 }],
    [":8095", { host: undefined, port: 8095 }],
    ["127.0.0.1:0", { host: "127.0.0.1", port: 0 }],
    ["localhost:9100", { host: "localhost", port: 9100 }],
    ["[::1]:8095", { host: "::1", port: 8095 }],
  ])("%s → %j", (raw, expected) => {
    expect(parseHttpAddress("metrics-addr", raw)).toEqual(expected);
  });

  it.each(["", "http://x:1", "x:", "70000", "a:b", "1.2.3.4:99999"])(
    "refuses %j naming the flag",
    (raw) => {
      expect(() => parseHttpAddress("metrics-addr", raw)).toThrow(HttpAddressError);
      expect(() => parseHttpAddress("metrics-addr", raw)).toThrow(/--metrics-addr/);
    },
  );
});
