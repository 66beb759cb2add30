/**
 * The most verbose log level (-v 10: our trace plus the Azure SDK's verbose output) over
 * encrypt, decrypt, rotation, unwrap, throttling, failures and token requests: no plaintext,
 * seed, access token or client secret appears in the output, raw or encoded.
 */
import { ClientSecretCredential } from "@azure/identity";
import { CryptographyClient } from "@azure/keyvault-keys";
import { randomBytes, randomUUID } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PassThrough } from "node:stream";
import { contractLine } from "../../src/commands/emulator.js";
import { startPlugin, type RunningPlugin } from "../../src/commands/plugin.js";
import { parseConfig } from "../../src/config/index.js";
import { createEmulator, type Emulator } from "@keyvault-kms/emulator";
import { KeyManagementService as V2 } from "../../src/gen/v2/api_pb.js";
import { keyUrl, parseEnvelope, type WrappedSeed } from "../../src/kms/index.js";
import { createLogger } from "../../src/log/index.js";
import { callError, createClient } from "../helpers/grpc-client.js";
import { eventually } from "../helpers/eventually.js";
import { serveArgs } from "../helpers/serve-args.js";

/** Every form a secret could take in a log line. */
function encodings(bytes: Buffer): string[] {
  const forms = [
    bytes.toString("hex"),
    bytes.toString("hex").toUpperCase(),
    bytes.toString("base64"),
    bytes.toString("base64url"),
    // Node's Buffer inspection: "<Buffer 0a 1b …>"
    Array.from(bytes.subarray(0, 12), (b) => b.toString(16).padStart(2, "0")).join(" "),
    // A JSON-serialised Uint8Array/Buffer: {"0":10,"1":27,…} or [10,27,…]
    Array.from(bytes.subarray(0, 12)).join(","),
  ];
  // base64 of the bytes at other alignments (a secret inside a longer encoded value).
  for (const skip of [1, 2]) forms.push(bytes.subarray(skip).toString("base64").slice(4, -4));
  return forms;
}

describe("logs at -v 10", () => {
  let dir: string;
  let emu: Emulator;
  let plugin: RunningPlugin | undefined;
  const chunks: Buffer[] = [];

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "kvkms-logleak-"));
    emu = await createEmulator({
      stateDir: join(dir, "emulator"),
      keys: [{ name: "kek", kty: "RSA", size: 2048 }],
    });
  });
  afterAll(async () => {
    await plugin?.stop();
    await emu.close();
    await rm(dir, { recursive: true, force: true });
  });

  async function start(): Promise<RunningPlugin> {
    const contract = contractLine(emu, "kek");
    const config = await parseConfig(
      serveArgs(contract, join(dir, "kms.sock"), ["--rotation-poll-interval", "200ms", "-v", "10"]),
      contract.serveEnv,
    );
    const destination = new PassThrough();
    destination.on("data", (chunk: Buffer) => chunks.push(chunk));
    const p = await startPlugin(config, createLogger({ verbosity: 10, destination }));
    await p.ready;
    return p;
  }

  it("never contains plaintext, seeds, tokens or the client secret", async () => {
    plugin = await start();
    const socket = plugin.socketPath;
    let client = createClient(V2, socket);
    const plaintexts = [
      ...Array.from({ length: 20 }, () => randomBytes(32)),
      Buffer.from(`a-dek-that-looks-like-text-${randomUUID()}`),
    ];
    const sealed = [];
    for (const plaintext of plaintexts) {
      const res = await client.encrypt({ plaintext, uid: randomUUID() });
      sealed.push(res);
      const back = await client.decrypt({
        ciphertext: res.ciphertext,
        keyId: res.keyId,
        uid: randomUUID(),
      });
      expect(Buffer.from(back.plaintext).equals(plaintext)).toBe(true);
    }
    // Failures log at warn with their messages.
    await callError(client.decrypt({ ciphertext: randomBytes(80), keyId: "x", uid: randomUUID() }));
    await callError(client.encrypt({ plaintext: new Uint8Array(0), uid: randomUUID() }));

    // Rotation: the poll promotes the new version and wraps a new seed under it.
    const firstKeyId = (await client.status({})).keyId;
    await emu.rotateKey("kek");
    await eventually(async () => {
      const s = await client.status({});
      return s.keyId !== firstKeyId ? s : undefined;
    });
    const after = await client.encrypt({ plaintext: plaintexts[0]!, uid: randomUUID() });
    sealed.push(after);
    client.close();

    // A new process: new token, and every old seed is unwrapped by Key Vault (one throttled).
    await plugin.stop();
    plugin = await start();
    emu.addFault({ operation: "unwrapkey", kind: "429", count: 1, retryAfter: 0 });
    client = createClient(V2, plugin.socketPath);
    for (const res of sealed) {
      await client.decrypt({ ciphertext: res.ciphertext, keyId: res.keyId, uid: randomUUID() });
    }
    client.close();
    await plugin.stop();
    plugin = undefined;

    // The seeds themselves, recovered the way the plugin did: unwrapped by Key Vault.
    const credential = new ClientSecretCredential(emu.tenantId, emu.clientId, emu.clientSecret, {
      authorityHost: emu.authorityHost,
      disableInstanceDiscovery: true,
      tlsOptions: { ca: emu.caPem },
    });
    const seeds = new Map<string, Buffer>();
    for (const res of sealed) {
      const seed: WrappedSeed = parseEnvelope(res.ciphertext).seed;
      const id = Buffer.from(seed.wrapped).toString("base64");
      if (seeds.has(id)) continue;
      const crypto = new CryptographyClient(keyUrl(seed.key), credential, {
        tlsOptions: { ca: emu.caPem },
        disableChallengeResourceVerification: true,
      });
      const out = await crypto.unwrapKey(seed.algorithm, seed.wrapped);
      seeds.set(id, Buffer.from(out.result));
    }
    expect(seeds.size).toBe(2);

    const log = Buffer.concat(chunks);
    const text = log.toString("utf8");
    // The output is real: request lines, SDK lines, the start-up line with the identity.
    const lines = text
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(lines.some((l) => l["msg"] === "kms request ok" && typeof l["uid"] === "string")).toBe(
      true,
    );
    expect(lines.some((l) => l["msg"] === "kms request failed" && l["level"] === 40)).toBe(true);
    expect(lines.some((l) => l["component"] === "azure-sdk" && l["level"] === 20)).toBe(true);
    // The SDK's request dumps are there, without the CA bundle's PEM blocks.
    expect(text).toContain("[pem]");
    expect(text).not.toContain("BEGIN CERTIFICATE");
    const startup = lines.find((l) => l["msg"] === "starting keyvault-kms");
    expect(String(startup?.["identity"])).toContain(emu.clientId);
    expect(lines.filter((l) => l["msg"] === "starting keyvault-kms")).toHaveLength(2);

    const secrets: [string, Buffer][] = [
      ...plaintexts.map((p, i): [string, Buffer] => [`plaintext ${i}`, p]),
      ...[...seeds.values()].map((s, i): [string, Buffer] => [`seed ${i}`, s]),
      ["client secret", Buffer.from(emu.clientSecret)],
      ...emu.issuedTokens().map((t, i): [string, Buffer] => [`access token ${i}`, Buffer.from(t)]),
    ];
    expect(emu.issuedTokens().length).toBeGreaterThanOrEqual(2);
    const found: string[] = [];
    for (const [what, bytes] of secrets) {
      if (log.includes(bytes)) found.push(`${what} (raw)`);
      for (const form of encodings(bytes)) if (text.includes(form)) found.push(`${what}: ${form}`);
    }
    // Tokens and the secret are text: their JWT parts must not appear either.
    for (const token of emu.issuedTokens()) {
      const signature = token.split(".")[2]!;
      if (text.includes(signature)) found.push("an access token's signature");
    }
    expect(found).toEqual([]);
  });
});
