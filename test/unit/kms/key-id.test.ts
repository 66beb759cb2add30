import { keyIdOf, keyUrl } from "../../../src/kms/key-id.js";

describe("key_id", () => {
  it("is the hex SHA-256 of the versioned key URL (the Go plugin's test vector)", () => {
    const ref = { vaultHost: "example.vault.azure.net", keyName: "mykey", keyVersion: "ABCD" };
    expect(keyUrl(ref)).toBe("https://example.vault.azure.net/keys/mykey/ABCD");
    expect(keyIdOf(ref)).toBe("567d783db3043fe298fe0d9eeedb0029a3815cdd4fe4b059d018c91e6acffe3b");
  });

  it("changes with the key version", () => {
    const a = keyIdOf({ vaultHost: "v.vault.azure.net", keyName: "k", keyVersion: "1" });
    const b = keyIdOf({ vaultHost: "v.vault.azure.net", keyName: "k", keyVersion: "2" });
    expect(a).not.toBe(b);
  });
});
