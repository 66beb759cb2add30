import { epochOf, type VersionInfo } from "../../../src/keyvault/key-versions.js";
import { keyIdNames, keyIdOf } from "../../../src/kms/key-id.js";

const v = (
  version: string,
  createdS: number,
  updatedS = createdS,
  reason?: VersionInfo["reason"],
) =>
  [version, { version, createdMs: createdS * 1000, updatedMs: updatedS * 1000, reason }] as const;

describe("epochOf: what makes a key_id a derivative", () => {
  it("is undefined in the ordinary case: the newest version, never changed", () => {
    const versions = new Map([v("a", 100), v("b", 200)]);
    expect(epochOf(versions, "b", false)).toBeUndefined();
  });

  it("a fall-back (a newer version disabled) and a version updated since created are derivatives, all distinct", () => {
    const aCurrent = new Map([v("a", 100), v("b", 200, 201, "disabled")]);
    const bAgain = new Map([v("a", 100), v("b", 200, 202)]);
    const aAgain = new Map([v("a", 100), v("b", 200, 203, "disabled")]);
    const epochs = [
      epochOf(new Map([v("a", 100)]), "a", false),
      epochOf(aCurrent, "a", false),
      epochOf(bAgain, "b", false),
      epochOf(aAgain, "a", false),
    ];
    expect(epochs[0]).toBeUndefined();
    expect(new Set(epochs).size).toBe(4);
  });

  it("counts neither a version of the same second nor one only not yet valid; a pin ignores newer versions", () => {
    expect(
      epochOf(new Map([v("a", 100), v("b", 100, 100, "expired")]), "a", false),
    ).toBeUndefined();
    expect(
      epochOf(new Map([v("a", 100), v("b", 200, 200, "not yet valid")]), "a", false),
    ).toBeUndefined();
    expect(
      epochOf(new Map([v("a", 100), v("b", 200, 201, "disabled")]), "a", true),
    ).toBeUndefined();
  });

  it("is the same whatever order the listing came in", () => {
    const one = new Map([v("a", 100), v("c", 300, 301, "disabled"), v("b", 200, 201, "disabled")]);
    const two = new Map([v("b", 200, 201, "disabled"), v("a", 100), v("c", 300, 301, "disabled")]);
    expect(epochOf(one, "a", false)).toBe(epochOf(two, "a", false));
  });
});

describe("key_id derivatives", () => {
  const ref = { vaultHost: "v.vault.azure.net", keyName: "k", keyVersion: "abc" };
  it("the Go plugin's key_id without an epoch; <it>_<16 hex> with one; Decrypt accepts both, nothing else", () => {
    const base = keyIdOf(ref);
    const derived = keyIdOf(ref, "updated 1000");
    expect(base).toMatch(/^[0-9a-f]{64}$/);
    expect(derived).toMatch(new RegExp(`^${base}_[0-9a-f]{16}$`));
    expect(keyIdOf(ref, "updated 2000")).not.toBe(derived);
    expect(keyIdNames(ref, base)).toBe(true);
    expect(keyIdNames(ref, derived)).toBe(true);
    expect(keyIdNames(ref, `${base}_`)).toBe(false);
    expect(keyIdNames(ref, `${base}_0123456789ABCDEF`)).toBe(false);
    expect(keyIdNames(ref, keyIdOf({ ...ref, keyVersion: "abd" }))).toBe(false);
  });
});
