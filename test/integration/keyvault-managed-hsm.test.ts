/** The Key Vault KeyWrapper with a Managed HSM oct-HSM key: wraps go to the service (A256KW). */
import { randomBytes } from "node:crypto";
import { createEmulator, type Emulator } from "@keyvault-kms/emulator";
import { emulatorWrapper } from "../helpers/emulator-wrapper.js";
import { requestsSeen } from "../helpers/emulator-counters.js";

let emu: Emulator;
beforeAll(async () => {
  emu = await createEmulator({ flavor: "managedhsm", keys: [{ name: "aes", kty: "oct-HSM" }] });
});
afterAll(async () => {
  await emu.close();
});

function wrapper() {
  return emulatorWrapper(emu, "aes", (name) => name === "aes");
}

/** Key Vault requests only: token and bearer-challenge round trips left out. */
function keyVaultRequests(): Record<string, number> {
  return requestsSeen(emu.counters(), ["token", "openid", "challenge"]);
}

it("refresh (1 list + 1 get), wrap (1 wrapkey, A256KW), unwrap (1 unwrapkey), across a rotation", async () => {
  const w = wrapper();
  emu.resetCounters();
  const state = await w.refresh();
  expect(keyVaultRequests()).toEqual({ list: 1, get: 1 });
  const key = state.current;
  if (key === undefined) throw new Error("expected a current key version");

  const seed = randomBytes(32);
  emu.resetCounters();
  const wrapped = await w.wrap(seed, key);
  expect(wrapped.algorithm).toBe("A256KW");
  expect(wrapped.key).toEqual(key);
  expect(wrapped.wrapped).toHaveLength(40);
  expect(keyVaultRequests()).toEqual({ wrapkey: 1 });

  emu.resetCounters();
  expect(Buffer.from(await w.unwrap(wrapped)).equals(seed)).toBe(true);
  expect(keyVaultRequests()).toEqual({ unwrapkey: 1 });

  const { version } = await emu.rotateKey("aes");
  emu.resetCounters();
  const next = await w.refresh();
  expect(next.current?.keyVersion).toBe(version);
  expect(keyVaultRequests()).toEqual({ list: 1, get: 1 });
  emu.resetCounters();
  expect(Buffer.from(await w.unwrap(wrapped)).equals(seed)).toBe(true);
  expect(keyVaultRequests()).toEqual({ unwrapkey: 1 });
});
