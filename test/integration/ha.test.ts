/**
 * High availability: three plugin instances sharing one Key Vault, as on three control-plane nodes
 * (one emulator, three sockets, three seeds). kube-apiservers share etcd, so any node must read what
 * any other wrote; a key rotation must reach every node within one poll; restarting one node's
 * plugin must leave the others alone.
 */
import { randomBytes, randomUUID } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { contractLine } from "../../src/commands/emulator.js";
import { startPlugin, type RunningPlugin } from "../../src/commands/plugin.js";
import { parseConfig } from "../../src/config/index.js";
import { createEmulator, type Emulator } from "@keyvault-kms/emulator";
import { KeyManagementService as V2 } from "../../src/gen/v2/api_pb.js";
import { parseEnvelope } from "../../src/kms/index.js";
import { silentLogger } from "../../src/log/index.js";
import { emulatorClients } from "../helpers/emulator-clients.js";
import { goPluginKeyId } from "../helpers/go-plugin-ciphertext.js";
import { createClient, type PromiseClient } from "../helpers/grpc-client.js";
import { report } from "../helpers/report.js";
import { serveArgs } from "../helpers/serve-args.js";

const pollMs = 300;
/** One poll interval plus its ±10% jitter and scheduling slack. */
const withinOnePoll = pollMs * 1.1 + 1_500;
const keyName = "kek";

interface Node {
  readonly name: string;
  readonly socketPath: string;
  plugin: RunningPlugin;
  client: PromiseClient<typeof V2>;
}

interface Sealed {
  readonly by: string;
  readonly plaintext: Buffer;
  readonly ciphertext: Uint8Array;
  readonly keyId: string;
}

let dir: string;
let emu: Emulator | undefined;
let nodes: Node[] = [];

async function startNodePlugin(socketPath: string): Promise<RunningPlugin> {
  const contract = contractLine(emu!, keyName);
  const config = await parseConfig(
    serveArgs(contract, socketPath, ["--rotation-poll-interval", `${pollMs}ms`]),
    { ...contract.serveEnv },
  );
  const plugin = await startPlugin(config, silentLogger());
  await plugin.ready;
  return plugin;
}

async function startNode(name: string): Promise<Node> {
  const socketPath = join(dir, `${name}.sock`);
  const plugin = await startNodePlugin(socketPath);
  return { name, socketPath, plugin, client: createClient(V2, socketPath) };
}

async function seal(node: Node): Promise<Sealed> {
  const plaintext = randomBytes(48);
  const res = await node.client.encrypt({ plaintext, uid: randomUUID() });
  return { by: node.name, plaintext, ciphertext: res.ciphertext, keyId: res.keyId };
}

async function open(node: Node, s: Sealed): Promise<Buffer> {
  const res = await node.client.decrypt({
    ciphertext: s.ciphertext,
    keyId: s.keyId,
    annotations: {},
    uid: randomUUID(),
  });
  return Buffer.from(res.plaintext);
}

/** Every node decrypts every sealed value back to its plaintext. */
async function expectAllOpenEverywhere(on: readonly Node[], sealed: readonly Sealed[]) {
  for (const node of on) {
    for (const s of sealed) {
      const plaintext = await open(node, s);
      expect({ node: node.name, by: s.by, ok: plaintext.equals(s.plaintext) }).toEqual({
        node: node.name,
        by: s.by,
        ok: true,
      });
    }
  }
}

async function keyIds(on: readonly Node[]): Promise<string[]> {
  return Promise.all(on.map(async (n) => (await n.client.status({})).keyId));
}

function seedOf(s: Sealed): string {
  return parseEnvelope(s.ciphertext).seedCacheKey;
}

function versionOf(s: Sealed): string {
  return parseEnvelope(s.ciphertext).seed.key.keyVersion;
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "kvkms-ha-"));
  emu = await createEmulator({
    stateDir: join(dir, "emulator"),
    flavor: "vault",
    keys: [{ name: keyName, kty: "RSA", size: 2048 }],
  });
  nodes = [];
  for (const name of ["cp-0", "cp-1", "cp-2"]) nodes.push(await startNode(name));
});

afterAll(async () => {
  for (const node of nodes) {
    node.client.close();
    await node.plugin.stop();
  }
  await emu?.close();
  await rm(dir, { recursive: true, force: true });
});

describe("three plugin instances sharing one Key Vault", () => {
  const before: Sealed[] = [];
  const after: Sealed[] = [];

  it("report the same key_id, each with its own seed, and each decrypts what the others encrypted", async () => {
    const ids = await keyIds(nodes);
    expect(new Set(ids).size).toBe(1);
    for (const node of nodes) for (let i = 0; i < 3; i++) before.push(await seal(node));
    expect(new Set(before.map((s) => s.keyId))).toEqual(new Set(ids));
    // Three independent seeds: reading another node's data takes a real unwrap in Key Vault.
    expect(new Set(before.map(seedOf)).size).toBe(3);
    await expectAllOpenEverywhere(nodes, before);
  });

  it("a key rotation converges on all three within one poll interval", async () => {
    const { keys } = emulatorClients(emu!);
    const oldIds = await keyIds(nodes);
    const started = Date.now();
    const rotated = await keys.rotateKey(keyName);
    const converged = new Map<string, number>();
    while (converged.size < nodes.length && Date.now() - started < withinOnePoll + 2_000) {
      const ids = await keyIds(nodes);
      ids.forEach((id, i) => {
        const name = nodes[i]!.name;
        if (id !== oldIds[i] && !converged.has(name)) converged.set(name, Date.now() - started);
      });
      await new Promise((r) => setTimeout(r, 20));
    }
    expect([...converged.keys()].sort()).toEqual(nodes.map((n) => n.name));
    for (const ms of converged.values()) expect(ms).toBeLessThanOrEqual(withinOnePoll);
    const newIds = await keyIds(nodes);
    expect(new Set(newIds).size).toBe(1);
    expect(newIds[0]).not.toBe(oldIds[0]);

    for (const node of nodes) after.push(await seal(node));
    for (const s of after) {
      expect(s.keyId).toBe(newIds[0]);
      expect(versionOf(s)).toBe(rotated.properties.version);
    }
    // New data reads everywhere, and data under the old version still does.
    await expectAllOpenEverywhere(nodes, [...after, ...before]);
  });

  it("restarting one instance changes nothing for the others", async () => {
    const [first, restarted, third] = nodes as [Node, Node, Node];
    const others = [first, third];
    const idsBefore = await keyIds(others);
    const seedsBefore = await Promise.all(others.map(async (n) => seedOf(await seal(n))));

    // Node cp-1 goes away (its kubelet restarts the pod): the others keep serving meanwhile.
    restarted.client.close();
    await restarted.plugin.stop();
    const during = await Promise.all(others.map((n) => seal(n)));
    await expectAllOpenEverywhere(others, [...during, ...before, ...after]);

    restarted.plugin = await startNodePlugin(restarted.socketPath);
    restarted.client = createClient(V2, restarted.socketPath);

    // The others: same key_id, same seed (no re-seed, so no key_id churn for their API servers).
    expect(await keyIds(others)).toEqual(idsBefore);
    const seedsAfter = await Promise.all(others.map(async (n) => seedOf(await seal(n))));
    expect(seedsAfter).toEqual(seedsBefore);
    // The restarted one: the same key_id as the others, a fresh seed, and it reads everything.
    expect((await restarted.client.status({})).keyId).toBe(idsBefore[0]);
    const fresh = await seal(restarted);
    expect(seedsBefore).not.toContain(seedOf(fresh));
    await expectAllOpenEverywhere([restarted], [...before, ...after, ...during]);
    // And what it writes now reads on the others.
    await expectAllOpenEverywhere(nodes, [fresh]);
  });

  it("key_ids are never reused: A → B → A′ → B′ → A″ gives five distinct key_ids, every instance agrees at every step, one started afterwards agrees, and all data decrypts", async () => {
    const { keys } = emulatorClients(emu!);
    const sealed: Sealed[] = [];
    const steps: { step: string; keyId: string }[] = [];
    // While a revoked current version is replaced, Status fails FAILED_PRECONDITION for a moment.
    const idsNow = () =>
      Promise.all(
        nodes.map((n) =>
          n.client.status({}).then(
            (r) => r.keyId,
            () => "",
          ),
        ),
      );
    /** Waits for every node to report one key_id other than `previous`; seals on each with it. */
    async function settle(step: string, previous: string | undefined): Promise<string> {
      const started = Date.now();
      let ids = await idsNow();
      while (
        (new Set(ids).size !== 1 || ids[0] === previous || ids[0] === "") &&
        Date.now() - started < withinOnePoll + 2_000
      ) {
        await new Promise((r) => setTimeout(r, 20));
        ids = await idsNow();
      }
      expect({ step, agree: new Set(ids).size === 1, changed: ids[0] !== previous }).toEqual({
        step,
        agree: true,
        changed: true,
      });
      const keyId = ids[0]!;
      for (const node of nodes) {
        const s = await seal(node);
        expect(s.keyId).toBe(keyId); // Encrypt returns Status's key_id
        sealed.push(s);
      }
      steps.push({ step, keyId });
      return keyId;
    }
    // Key Vault's `updated` has one-second resolution: changes a second apart stay distinct.
    const tick = () => new Promise((r) => setTimeout(r, 1_100));

    const a = (await keys.getKey(keyName)).properties.version!;
    const idA = (await keyIds(nodes))[0]!;
    // The ordinary case: the newest version, never changed, has the Go plugin's key_id.
    expect(idA).toBe(goPluginKeyId(emu!.vaultUrl, keyName, a));
    steps.push({ step: "A", keyId: idA });
    await tick(); // B strictly newer than A
    const b = (await keys.rotateKey(keyName)).properties.version!;
    const idB = await settle("B", idA);
    expect(idB).toBe(goPluginKeyId(emu!.vaultUrl, keyName, b));
    await tick();
    await keys.updateKeyProperties(keyName, b, { enabled: false });
    const idA1 = await settle("A′ (B disabled)", idB);
    await tick();
    await keys.updateKeyProperties(keyName, b, { enabled: true });
    const idB1 = await settle("B′ (B enabled again)", idA1);
    await tick();
    await keys.updateKeyProperties(keyName, b, { enabled: false });
    await settle("A″ (B disabled again)", idB1);
    report(
      `key_ids: ${steps.map((s) => `${s.step} ${s.keyId.slice(0, 12)}…${s.keyId.slice(64)}`).join(", ")}`,
    );
    expect(new Set(steps.map((s) => s.keyId)).size).toBe(steps.length);

    // An instance started now, reading the same Key Vault state, reports the same key_id.
    const late = await startNode("cp-late");
    try {
      expect((await late.client.status({})).keyId).toBe(steps.at(-1)!.keyId);
      // Data written at every step decrypts everywhere, on the newcomer too, once B is enabled
      // again (a disabled version's data is refused, as it must be) and every node has seen it.
      await keys.updateKeyProperties(keyName, b, { enabled: true });
      await new Promise((r) => setTimeout(r, withinOnePoll));
      await expectAllOpenEverywhere([...nodes, late], sealed);
    } finally {
      late.client.close();
      await late.plugin.stop();
    }
  });
});
