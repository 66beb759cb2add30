/**
 * The token endpoint failing as networks do (reset, silence, a gateway's HTML 502) is an outage:
 * UNAVAILABLE naming the endpoint, retried and counted by the circuit breaker like Key Vault's
 * own failures. Only a definite refusal of the identity is UNAUTHENTICATED. The real credential
 * (createCredential) and the real Key Vault wrapper against the emulator; a fresh credential per
 * case, since MSAL caches tokens and holds requests after a 5xx.
 */
import { createEmulator, type Emulator, type FaultSpec } from "@keyvault-kms/emulator";
import { createCredential, type KeyVaultWrapper } from "../../src/keyvault/index.js";
import type { ResilienceSettings } from "../../src/keyvault/resilience.js";
import { KmsError } from "../../src/kms/index.js";
import { emulatorWrapper } from "../helpers/emulator-wrapper.js";

const KEY = "kek";
let emu: Emulator;
let host: string;

beforeAll(async () => {
  emu = await createEmulator({ keys: [{ name: KEY, kty: "RSA" }] });
  host = new URL(emu.authorityHost).host;
});

afterAll(async () => {
  await emu.close();
});

beforeEach(() => {
  emu.clearFaults();
  emu.resetCounters();
});

/** The wrapper with its own credential; the breaker opens after one failed request. */
function wrapper(
  clientSecret = emu.clientSecret,
  resilience: Partial<ResilienceSettings> = {},
): KeyVaultWrapper {
  const credential = createCredential({
    identity: {
      kind: "client-secret",
      tenantId: emu.tenantId,
      clientId: emu.clientId,
      clientSecret,
    },
    authorityHost: emu.authorityHost,
    caPem: emu.caPem,
  });
  // Tries long enough for a loaded machine's TLS handshakes; the silent endpoint's case shortens them.
  return emulatorWrapper(emu, KEY, (name) => name === KEY, {
    credential,
    resilience: {
      breakerThreshold: 1,
      perTryTimeoutMs: 5000,
      backoffBaseMs: 10,
      backoffCapMs: 50,
      ...resilience,
    },
  });
}

async function failure(promise: Promise<unknown>): Promise<KmsError> {
  try {
    await promise;
  } catch (err) {
    if (err instanceof KmsError) return err;
    throw new Error(`not a KmsError: ${String(err)}`, { cause: err });
  }
  throw new Error("expected a failure");
}

describe.each<[string, FaultSpec["kind"], RegExp]>([
  ["connection reset", "reset", /the token endpoint is unreachable at (\S+) \(no answer/],
  ["no answer at all", "hang", /the token endpoint did not answer in time \((\S+)\)/],
  ["a gateway's HTML 502", "html502", /the token endpoint is failing at (\S+) \(502\)/],
])("token endpoint: %s", (_name, kind, message) => {
  it("is UNAVAILABLE naming the endpoint, retried, and opens the circuit", async () => {
    emu.addFault({ operation: "token", kind });
    // A silent endpoint costs a whole try each time: short ones keep the test short.
    // A probe later than the refresh's own 30 s deadline: the next refresh cannot wait for it.
    const probeLater = { breakerCoolDownMs: 60_000, breakerMaxCoolDownMs: 60_000 };
    const w = wrapper(
      emu.clientSecret,
      kind === "hang" ? { perTryTimeoutMs: 300, ...probeLater } : probeLater,
    );
    const err = await failure(w.refresh());
    expect(err.code).toBe("UNAVAILABLE");
    expect(err.message).toMatch(message);
    expect(message.exec(err.message)?.[1]).toBe(host);
    expect(err.message).not.toMatch(/credentials|refused the identity/);
    // Retried: by the credential (reset, 502) or by the Key Vault retry policy (reset, silence).
    expect(emu.counters()["token"]).toBeGreaterThan(1);

    // Counted by the breaker: the next request is refused unsent, without asking for a token.
    const tokens = emu.counters()["token"];
    const open = await failure(w.refresh());
    expect(open.code).toBe("UNAVAILABLE");
    expect(open.message).toMatch(/circuit open/);
    expect(emu.counters()["token"]).toBe(tokens);
  });
});

it("after a 5xx, MSAL holds the token request: still UNAVAILABLE, not a refusal", async () => {
  emu.addFault({ operation: "token", kind: "503", count: 3 });
  const w = wrapper(emu.clientSecret, { breakerThreshold: 0 });
  expect((await failure(w.refresh())).message).toMatch(/token endpoint is failing at \S+ \(503\)/);
  const tokens = emu.counters()["token"];
  // The endpoint is fine again, but MSAL answers from its throttling cache for 60 s.
  const held = await failure(w.refresh());
  expect(held.code).toBe("UNAVAILABLE");
  expect(held.message).toMatch(/token endpoint is failing at \S+ \(it answered 429\/5xx/);
  expect(emu.counters()["token"]).toBe(tokens);
});

it("the OpenID configuration unreachable is UNAVAILABLE too", async () => {
  emu.addFault({ operation: "openid", kind: "reset" });
  const err = await failure(wrapper().refresh());
  expect(err.code).toBe("UNAVAILABLE");
  expect(err.message).toMatch(
    /the token endpoint is unreachable at \S+ \(its OpenID configuration/,
  );
});

it("a wrong client secret is UNAUTHENTICATED, not retried, and does not open the circuit", async () => {
  const w = wrapper("not the secret");
  const err = await failure(w.refresh());
  expect(err.code).toBe("UNAUTHENTICATED");
  expect(err.message).toMatch(/the token endpoint refused the identity; check azure\.json/);
  expect(emu.counters()["token"]).toBe(1);
  const again = await failure(w.refresh());
  expect(again.code).toBe("UNAUTHENTICATED");
  expect(emu.counters()["token"]).toBe(2);
});

it("after the fault clears, a new credential gets its token", async () => {
  emu.addFault({ operation: "token", kind: "reset", count: 1 });
  expect((await wrapper().refresh()).current).toBeDefined();
  expect(emu.counters()["token"]).toBe(2);
});
