/**
 * The plugin against vaults that grant less than everything, and against a cloud that lags in
 * api-versions, as the real service answers them (the emulator's access policy and api-version
 * set: docs/emulator-fidelity.md).
 */
import { randomBytes, randomUUID } from "node:crypto";
import { KeyManagementService as V2 } from "../../src/gen/v2/api_pb.js";
import { parseEnvelope } from "../../src/kms/index.js";
import { eventually } from "../helpers/eventually.js";
import { callError, createClient, type PromiseClient } from "../helpers/grpc-client.js";
import { startPluginHarness } from "../helpers/plugin-harness.js";

/** What docs/install.md grants an access-policy identity. */
const DOCUMENTED = ["get", "list", "wrapKey", "unwrapKey", "decrypt"];
const without = (p: string) => DOCUMENTED.filter((x) => x !== p);

async function roundTrip(client: PromiseClient<typeof V2>) {
  const plaintext = randomBytes(32);
  const sealed = await client.encrypt({ plaintext, uid: randomUUID() });
  const opened = await client.decrypt({
    ciphertext: sealed.ciphertext,
    keyId: sealed.keyId,
    annotations: {},
    uid: randomUUID(),
  });
  expect(Buffer.from(opened.plaintext).equals(plaintext)).toBe(true);
  return { plaintext, ...sealed };
}

const messages = (logs: Record<string, unknown>[]) => logs.map((l) => String(l["msg"]));

/** The error of the plugin's "not ready" log line, once there is one. */
function notReadyError(logs: Record<string, unknown>[]): Promise<string> {
  return eventually(
    () => {
      const line = logs.find((l) => String(l["msg"]).startsWith("not ready: cannot load"));
      const err = line?.["err"] as { message?: string } | undefined;
      return err?.message;
    },
    5000,
    "the plugin to log why it is not ready",
  );
}

describe("an access-policy vault", () => {
  it("without list: serves, follows a rotation by GET, and says once what it cannot see", async () => {
    const h = await startPluginHarness({
      emulator: { keyPermissions: without("list") },
      args: ["--rotation-poll-interval", "200ms"],
      captureLogs: true,
    });
    let client = createClient(V2, h.socketPath);
    try {
      const first = await roundTrip(client);
      await h.emu.rotateKey("kek");
      await eventually(
        async () => ((await client.status({})).keyId !== first.keyId ? true : undefined),
        3000,
        "the rotation to be followed",
      );
      await roundTrip(client);
      const noList = messages(h.logs).filter((m) => m.includes('no "list" permission'));
      expect(noList).toHaveLength(1);
      // A fresh process reads the data sealed before, through Key Vault's unwrapKey.
      client.close();
      await h.restart();
      client = createClient(V2, h.socketPath);
      const opened = await client.decrypt({
        ciphertext: first.ciphertext,
        keyId: first.keyId,
        annotations: {},
        uid: randomUUID(),
      });
      expect(Buffer.from(opened.plaintext).equals(first.plaintext)).toBe(true);
    } finally {
      client.close();
      await h.close();
    }
  });

  it("without unwrapKey: never seals anything, and says which permission is missing", async () => {
    const h = await startPluginHarness({
      emulator: { keyPermissions: without("unwrapKey") },
      waitReady: false,
      captureLogs: true,
    });
    const client = createClient(V2, h.socketPath);
    try {
      const why = await notReadyError(h.logs);
      expect(why).toContain('keys "unwrapKey" permission');
      expect((await client.status({})).healthz).toMatch(/^not ready: .*PERMISSION_DENIED/);
      const err = await callError(
        client.encrypt({ plaintext: randomBytes(32), uid: randomUUID() }),
      );
      expect(err.codeName).not.toBe("OK");
      // The seed was wrapped (locally, with the public key) but never proved, so never used.
      expect(h.emu.counters()["unwrapkey"]).toBeGreaterThanOrEqual(1);
    } finally {
      client.close();
      await h.close();
    }
  });
});

describe("a key version whose key_ops no longer include unwrapKey", () => {
  it("fails its Decrypts FAILED_PRECONDITION naming key_ops, not permissions", async () => {
    const h = await startPluginHarness();
    let client = createClient(V2, h.socketPath);
    try {
      const sealed = await roundTrip(client);
      const version = parseEnvelope(sealed.ciphertext).seed.key.keyVersion;
      await h.emu.rotateKey("kek");
      h.emu.updateKeyVersion("kek", version, { keyOps: ["wrapKey"] });
      client.close();
      await h.restart();
      client = createClient(V2, h.socketPath);
      const err = await callError(
        client.decrypt({
          ciphertext: sealed.ciphertext,
          keyId: sealed.keyId,
          annotations: {},
          uid: randomUUID(),
        }),
      );
      expect(err.codeName).toBe("FAILED_PRECONDITION");
      expect(err.details).toContain("KeyOperationForbidden");
      expect(err.details).toContain("key_ops");
    } finally {
      client.close();
      await h.close();
    }
  });
});

describe("a cloud that only knows older api-versions (400 BadParameter, not recognized)", () => {
  const emulator = { apiVersions: ["7.0", "7.1"] };

  it("switches once to the version Key Vault names, and logs it", async () => {
    const h = await startPluginHarness({ emulator, captureLogs: true });
    const client = createClient(V2, h.socketPath);
    try {
      await roundTrip(client);
      await h.restart(); // a new process learns it again: one warning per process
      const fallbacks = h.logs.filter((l) => String(l["msg"]).includes("api-version"));
      expect(fallbacks.map((l) => l["to"])).toEqual(["7.1", "7.1"]);
    } finally {
      client.close();
      await h.close();
    }
  });

  it("with --keyvault-api-version it sends exactly that one: a known one works, an unknown one says which to use", async () => {
    const h = await startPluginHarness({ emulator, args: ["--keyvault-api-version", "7.0"] });
    const client = createClient(V2, h.socketPath);
    try {
      await roundTrip(client);
    } finally {
      client.close();
      await h.close();
    }
    const bad = await startPluginHarness({
      emulator,
      args: ["--keyvault-api-version", "7.4"],
      waitReady: false,
      captureLogs: true,
    });
    try {
      const why = await notReadyError(bad.logs);
      expect(why).toContain("the newest it supports is 7.1");
      expect(why).toContain("--keyvault-api-version 7.1");
    } finally {
      await bad.close();
    }
  });
});
