import { KeyAllowlist } from "../../../src/kms/allowlist.js";
import { annotationKeyProblem, validateAnnotations } from "../../../src/kms/annotations.js";
import { KmsError } from "../../../src/kms/errors.js";

describe("KeyAllowlist", () => {
  const list = new KeyAllowlist({ vaultHost: "prod.vault.azure.net", keyName: "kms-key" }, [
    { vaultHost: "Old.Vault.Azure.Net:443", keyName: "Legacy" },
  ]);

  it("allows the configured and extra keys, ignoring case and an explicit :443", () => {
    expect(list.allows({ vaultHost: "prod.vault.azure.net", keyName: "KMS-KEY" })).toBe(true);
    expect(list.allows({ vaultHost: "PROD.vault.azure.net:443", keyName: "kms-key" })).toBe(true);
    expect(list.allows({ vaultHost: "old.vault.azure.net", keyName: "legacy" })).toBe(true);
    expect(list.keys).toHaveLength(2);
  });

  it("refuses anything else with FAILED_PRECONDITION naming vault and key", () => {
    for (const key of [
      { vaultHost: "prod.vault.azure.net:8443", keyName: "kms-key" },
      { vaultHost: "evil.example", keyName: "kms-key" },
      { vaultHost: "prod.vault.azure.net", keyName: "legacy" },
      { vaultHost: "old.vault.azure.net", keyName: "kms-key" },
    ]) {
      expect(list.allows(key)).toBe(false);
      let thrown: unknown;
      try {
        list.check(key);
      } catch (error) {
        thrown = error;
      }
      expect(thrown).toBeInstanceOf(KmsError);
      expect((thrown as KmsError).code).toBe("FAILED_PRECONDITION");
      expect((thrown as KmsError).message).toContain(key.vaultHost);
      expect((thrown as KmsError).message).toContain(key.keyName);
    }
  });
});

describe("annotations (kube-apiserver's rules)", () => {
  it.each([
    "kms.example.com",
    "kms.example.com.",
    "a.b",
    "version.azure.akv.io",
    `${"a".repeat(63)}.io`,
  ])("accepts key %s", (key) => {
    expect(annotationKeyProblem(key)).toBeUndefined();
  });

  it.each([
    "",
    ".",
    "foo",
    "Foo.example.com",
    "a_b.example.com",
    "-a.example.com",
    "a-.example.com",
    "a..b",
    `${"a".repeat(64)}.io`,
    `${"a.".repeat(126)}ab`,
  ])("rejects key %j", (key) => {
    expect(annotationKeyProblem(key)).toBeDefined();
  });

  it("limits the total size to 32768 bytes of keys and values", () => {
    const key = "kms.example.com";
    validateAnnotations(new Map([[key, new Uint8Array(32768 - key.length)]]));
    expect(() => {
      validateAnnotations(new Map([[key, new Uint8Array(32769 - key.length)]]));
    }).toThrow(/exceeds the max size of 32768/);
  });
});
