/**
 * Key rotation end to end: the real KeyClient rotates and updates the key in the emulator, the
 * plugin's watcher notices, and a client playing kube-apiserver talks to the plugin's socket.
 */
import { randomBytes, randomUUID } from "node:crypto";
import { setTimeout as sleep } from "node:timers/promises";
import { KeyManagementService as V2 } from "../../src/gen/v2/api_pb.js";
import { parseEnvelope } from "../../src/kms/index.js";
import { emulatorClients } from "../helpers/emulator-clients.js";
import { eventually } from "../helpers/eventually.js";
import {
  callError,
  createClient,
  KmsClientError,
  type PromiseClient,
} from "../helpers/grpc-client.js";
import { startPluginHarness, type PluginHarness } from "../helpers/plugin-harness.js";
import { scrape, scrapeText } from "../helpers/scrape.js";

const pollMs = 200;
const pollArgs = ["--rotation-poll-interval", `${pollMs}ms`];
/** One poll interval plus jitter and scheduling slack. */
const withinOnePoll = pollMs * 1.1 + 1500;

interface Sealed {
  plaintext: Buffer;
  ciphertext: Uint8Array;
  keyId: string;
}

async function seal(client: PromiseClient<typeof V2>): Promise<Sealed> {
  const plaintext = randomBytes(32);
  const res = await client.encrypt({ plaintext, uid: randomUUID() });
  return { plaintext, ciphertext: res.ciphertext, keyId: res.keyId };
}

async function open(client: PromiseClient<typeof V2>, s: Sealed): Promise<Buffer> {
  const res = await client.decrypt({
    ciphertext: s.ciphertext,
    keyId: s.keyId,
    annotations: {},
    uid: randomUUID(),
  });
  return Buffer.from(res.plaintext);
}

function versionOf(s: Sealed): string {
  return parseEnvelope(s.ciphertext).seed.key.keyVersion;
}

async function keyIdChangesFrom(
  client: PromiseClient<typeof V2>,
  from: string,
  timeoutMs = withinOnePoll,
): Promise<string> {
  return eventually(
    async () => {
      // While a revoked current version is replaced, no seed is usable until the new one has
      // been wrapped and proved by one Key Vault unwrap: Status fails FAILED_PRECONDITION then.
      const status = await client.status({}).catch((err: unknown) => {
        if (err instanceof KmsClientError && err.codeName === "FAILED_PRECONDITION")
          return undefined;
        throw err;
      });
      if (status === undefined) return undefined;
      const { keyId } = status;
      return keyId !== from ? keyId : undefined;
    },
    timeoutMs,
    `Status key_id to change from ${from}`,
  );
}

describe("following the newest key version", () => {
  let h: PluginHarness;
  let client: PromiseClient<typeof V2>;
  beforeAll(async () => {
    h = await startPluginHarness({ args: pollArgs });
    client = createClient(V2, h.socketPath);
  });
  afterAll(async () => {
    client.close();
    await h.close();
  });

  it("promotes a rotated version within one poll; Status and Encrypt never call Key Vault", async () => {
    const { keys } = emulatorClients(h.emu);
    const before = await seal(client);
    h.emu.resetCounters();
    const rotated = await keys.rotateKey("kek");
    const newKeyId = await keyIdChangesFrom(client, before.keyId);
    // Keep kube-apiserver's traffic going across the rotation.
    const after = await seal(client);
    for (let i = 0; i < 20; i++) await client.status({});
    expect(after.keyId).toBe(newKeyId);
    expect(versionOf(after)).toBe(rotated.properties.version);
    expect((await open(client, before)).equals(before.plaintext)).toBe(true);
    expect((await open(client, after)).equals(after.plaintext)).toBe(true);
    const c = h.emu.counters();
    // The test's own rotate and its client's sign-in aside: the watcher's reads and the one
    // unwrap that proves the new version's first seed (seed.ts).
    expect({
      wrapkey: c["wrapkey"],
      unwrapkey: c["unwrapkey"],
      encrypt: c["encrypt"],
      decrypt: c["decrypt"],
    }).toEqual({
      wrapkey: 0,
      unwrapkey: 1,
      encrypt: 0,
      decrypt: 0,
    });
    expect(c["get"]).toBe(1); // the new version's public key
    expect(c["list"]).toBeGreaterThanOrEqual(1);
  });

  it("counts decrypts per key version and exposes the current version", async () => {
    const s = await seal(client);
    await open(client, s);
    const res = await scrape(h.plugin.metricsUrl);
    expect(res.status).toBe(200);
    const text = await res.text();
    expect(text).toContain(`azurekms_decrypt_key_version_total{key_version="${versionOf(s)}"}`);
    expect(text).toMatch(
      new RegExp(
        `azurekms_current_key_info\\{key_version="${versionOf(s)}",key_id_hash="sha256:[0-9a-f]{64}"\\} 1`,
      ),
    );
  });
});

describe("disabling and re-enabling the newest version", () => {
  it("moves Encrypt back within one poll, stops decrypting even from cache, and restores both", async () => {
    const h = await startPluginHarness({ args: pollArgs });
    const client = createClient(V2, h.socketPath);
    try {
      const { keys } = emulatorClients(h.emu);
      const old = await seal(client);
      // Key Vault's `created` has one-second resolution: the new version strictly newer.
      await new Promise((r) => setTimeout(r, 1_100));
      const newer = await keys.rotateKey("kek");
      const newKeyId = await keyIdChangesFrom(client, old.keyId);
      const underNew = await seal(client);
      expect(underNew.keyId).toBe(newKeyId);

      // `updated`, too, has one-second resolution: each change a second after the last.
      await new Promise((r) => setTimeout(r, 1_100));
      await keys.updateKeyProperties("kek", newer.properties.version!, { enabled: false });
      // Back on the old version, under a derivative of its key_id: KMS v2 forbids reporting
      // old.keyId again (docs/rotation.md, "key_ids are never reused").
      const fellBackTo = await keyIdChangesFrom(client, newKeyId);
      expect(fellBackTo).not.toBe(old.keyId);
      expect(fellBackTo.startsWith(`${old.keyId}_`)).toBe(true);
      expect((await seal(client)).keyId).toBe(fellBackTo);
      // Its seed is still in the plugin's memory, but the version is revoked.
      h.emu.resetCounters();
      const err = await callError(open(client, underNew));
      expect(err.codeName).toBe("FAILED_PRECONDITION");
      expect(err.details).toContain(newer.properties.version);
      expect(h.emu.counters()["unwrapkey"]).toBe(0);
      expect((await open(client, old)).equals(old.plaintext)).toBe(true);

      await new Promise((r) => setTimeout(r, 1_100));
      await keys.updateKeyProperties("kek", newer.properties.version!, { enabled: true });
      // The newer version again, under a derivative of its key_id (it was updated since created).
      const back = await keyIdChangesFrom(client, fellBackTo);
      expect(back.startsWith(`${newKeyId}_`)).toBe(true);
      expect((await open(client, underNew)).equals(underNew.plaintext)).toBe(true);
    } finally {
      client.close();
      await h.close();
    }
  });
});

describe("an expired version (a rotation policy puts exp on every version)", () => {
  it("stays readable after a restart: Key Vault, not the SDK, decides whether it unwraps", async () => {
    const h = await startPluginHarness({ args: pollArgs });
    let client = createClient(V2, h.socketPath);
    try {
      const { keys } = emulatorClients(h.emu);
      const underV1 = [await seal(client), await seal(client), await seal(client)];
      const v1 = versionOf(underV1[0]!);
      await keys.rotateKey("kek");
      const v2KeyId = await keyIdChangesFrom(client, underV1[0]!.keyId);
      await keys.updateKeyProperties("kek", v1, { expiresOn: new Date(Date.now() - 60_000) });
      // A fresh process: every seed under v1 must come back through Key Vault's unwrapKey.
      client.close();
      await h.restart();
      client = createClient(V2, h.socketPath);
      h.emu.resetCounters();
      for (const s of underV1) expect((await open(client, s)).equals(s.plaintext)).toBe(true);
      expect(h.emu.counters()["unwrapkey"]).toBeGreaterThanOrEqual(1);
      // Nothing new is sealed under the expired version.
      expect((await seal(client)).keyId).toBe(v2KeyId);
    } finally {
      client.close();
      await h.close();
    }
  });
});

describe("deleting the key while the plugin runs (Key Vault then lists it as empty, not 404)", () => {
  it.each([
    ["following the newest version", false],
    ["pinned to a version", true],
  ])("%s: Encrypt and Decrypt stop within one poll; recovering restores both", async (_, pin) => {
    const h = await startPluginHarness({ args: pollArgs });
    let client = createClient(V2, h.socketPath);
    try {
      const { keys } = emulatorClients(h.emu);
      const sealed = await seal(client);
      if (pin) {
        await h.restartWith([...pollArgs, "--key-version", versionOf(sealed)]);
        client.close();
        client = createClient(V2, h.socketPath);
      }
      const underRun = await seal(client);
      await (await keys.beginDeleteKey("kek", { intervalInMs: 10 })).pollUntilDone();
      // The real service's answer to the plugin's poll: 200 {"value":[],"nextLink":null}.
      const listed = [];
      for await (const v of keys.listPropertiesOfKeyVersions("kek")) listed.push(v);
      expect(listed).toEqual([]);
      const refused = await eventually(
        () =>
          seal(client).then(
            () => undefined,
            (err: unknown) => err,
          ),
        withinOnePoll,
        "Encrypt to fail after the key was deleted",
      );
      expect(refused).toMatchObject({ codeName: "FAILED_PRECONDITION" });
      h.emu.resetCounters();
      for (const s of [sealed, underRun]) {
        const err = await callError(open(client, s));
        expect(err.codeName).toBe("FAILED_PRECONDITION");
      }
      expect(h.emu.counters()["unwrapkey"]).toBe(0); // refused from the revocation, not by Key Vault

      await (await keys.beginRecoverDeletedKey("kek", { intervalInMs: 10 })).pollUntilDone();
      await eventually(
        async () => (await seal(client).catch(() => undefined)) ?? undefined,
        withinOnePoll,
        "Encrypt to work again after the key was recovered",
      );
      for (const s of [sealed, underRun])
        expect((await open(client, s)).equals(s.plaintext)).toBe(true);
    } finally {
      client.close();
      await h.close();
    }
  });
});

describe("pinned --key-version", () => {
  it("never changes key_id, and decrypts data under other versions", async () => {
    const h = await startPluginHarness({ args: pollArgs });
    const client = createClient(V2, h.socketPath);
    try {
      const { keys } = emulatorClients(h.emu);
      const underFirst = await seal(client);
      const firstVersion = versionOf(underFirst);
      await keys.rotateKey("kek");
      await keyIdChangesFrom(client, underFirst.keyId);
      const underSecond = await seal(client);

      await h.restartWith([...pollArgs, "--key-version", firstVersion]);
      const pinned = createClient(V2, h.socketPath);
      expect((await pinned.status({})).keyId).toBe(underFirst.keyId);
      await keys.rotateKey("kek");
      await sleep(pollMs * 5);
      expect((await pinned.status({})).keyId).toBe(underFirst.keyId);
      expect((await seal(pinned)).keyId).toBe(underFirst.keyId);
      expect((await open(pinned, underSecond)).equals(underSecond.plaintext)).toBe(true);
      pinned.close();
    } finally {
      client.close();
      await h.close();
    }
  });
});

describe("a Key Vault outage during rotation polls", () => {
  it("changes nothing and drops nothing; the rotation lands once Key Vault answers", async () => {
    const h = await startPluginHarness({ args: pollArgs });
    const client = createClient(V2, h.socketPath);
    try {
      const { keys } = emulatorClients(h.emu);
      const before = await seal(client);
      await keys.rotateKey("kek");
      // 429 last: after it the plugin holds its requests for Key Vault's 10 s window.
      for (const kind of ["503", "reset", "429"] as const) {
        h.emu.clearFaults();
        h.emu.addFault({ operation: "list", kind });
        const failuresBefore = h.emu.counters()["list"] ?? 0;
        // A 429 holds the next poll for Key Vault's window (rate-limiter.ts): one refused poll.
        const failed = kind === "429" ? 1 : 2;
        await eventually(
          () => ((h.emu.counters()["list"] ?? 0) >= failuresBefore + failed ? true : undefined),
          5000,
          "failed polls",
        );
        const status = await client.status({});
        expect(status).toMatchObject({ healthz: "ok", keyId: before.keyId });
        expect((await open(client, before)).equals(before.plaintext)).toBe(true);
        expect((await seal(client)).keyId).toBe(before.keyId);
      }
      h.emu.clearFaults();
      // The poll the 429 held goes out when Key Vault's window has passed.
      await keyIdChangesFrom(client, before.keyId, 10_250 + withinOnePoll);
      expect((await open(client, before)).equals(before.plaintext)).toBe(true);
    } finally {
      client.close();
      await h.close();
    }
  });
});

describe("seed age", () => {
  it("replaces the seed under the same key version: key_id unchanged, old seeds readable", async () => {
    const h = await startPluginHarness({ args: [...pollArgs, "--seed-max-age", "1s"] });
    const client = createClient(V2, h.socketPath);
    try {
      const first = await seal(client);
      const firstSeed = Buffer.from(parseEnvelope(first.ciphertext).seed.wrapped);
      const second = await eventually(
        async () => {
          const s = await seal(client);
          return Buffer.from(parseEnvelope(s.ciphertext).seed.wrapped).equals(firstSeed)
            ? undefined
            : s;
        },
        5000,
        "a new seed",
      );
      expect(second.keyId).toBe(first.keyId);
      expect(versionOf(second)).toBe(versionOf(first));
      h.emu.resetCounters();
      const missesBefore = await seedCacheMisses(h);
      expect((await open(client, first)).equals(first.plaintext)).toBe(true);
      expect((await open(client, second)).equals(second.plaintext)).toBe(true);
      // Both from memory (no cache miss, so no unwrap for them: the emulator's unwrapkey count
      // holds only the proofs of seeds the 1 s age keeps making), and never a remote wrap.
      expect(await seedCacheMisses(h)).toBe(missesBefore);
      expect(h.emu.counters()["wrapkey"]).toBe(0);
    } finally {
      client.close();
      await h.close();
    }
  });
});

/** azurekms_seed_cache_requests_total{result="miss"} from the plugin's /metrics. */
async function seedCacheMisses(h: PluginHarness): Promise<number> {
  const text = await scrapeText(h.plugin.metricsUrl);
  const m = /^azurekms_seed_cache_requests_total\{result="miss"\} (\d+)$/m.exec(text);
  return m === null ? 0 : Number(m[1]);
}
