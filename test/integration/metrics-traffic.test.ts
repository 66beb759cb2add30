/**
 * Known traffic through the whole plugin (real gRPC socket, real Azure SDK, the emulator), then
 * a real scrape of /metrics over HTTP: exact counts and exact label sets.
 */
import { randomBytes, randomUUID } from "node:crypto";
import { KeyManagementService as V2 } from "../../src/gen/v2/api_pb.js";
import { callError, createClient } from "../helpers/grpc-client.js";
import { startPluginHarness, type PluginHarness } from "../helpers/plugin-harness.js";
import { scrape as get } from "../helpers/scrape.js";

interface Sample {
  readonly name: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly value: number;
}

/** Prometheus text format → samples (enough for prom-client's output). */
function parse(text: string): Sample[] {
  const out: Sample[] = [];
  for (const line of text.split("\n")) {
    if (line === "" || line.startsWith("#")) continue;
    const m = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (m === null) throw new Error(`unparsable metrics line: ${line}`);
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? "").matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) labels[l[1]!] = l[2]!;
    out.push({ name: m[1]!, labels, value: Number(m[3]) });
  }
  return out;
}

async function scrape(h: PluginHarness): Promise<Sample[]> {
  const res = await get(h.plugin.metricsUrl);
  expect(res.status).toBe(200);
  expect(res.headers.get("content-type")).toMatch(/^text\/plain/);
  return parse(await res.text());
}

/** `{labels as "k=v,k=v"}` → value, for one metric name. */
function series(samples: Sample[], name: string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const s of samples) {
    if (s.name !== name) continue;
    const key = Object.entries(s.labels)
      .sort(([a], [b]) => a.localeCompare(b))
      .map(([k, v]) => `${k}=${v}`)
      .join(",");
    out[key] = s.value;
  }
  return out;
}

function delta(after: Record<string, number>, before: Record<string, number>) {
  const out: Record<string, number> = {};
  for (const [k, v] of Object.entries(after)) {
    const d = v - (before[k] ?? 0);
    if (d !== 0) out[k] = d;
  }
  return out;
}

const n = 7; // Encrypts
const m = 4; // Decrypts under the current seed
const k = 3; // Decrypts of random bytes (INVALID_ARGUMENT)

describe("metrics after known traffic", () => {
  let h: PluginHarness;
  beforeAll(async () => {
    h = await startPluginHarness();
  });
  afterAll(async () => {
    await h.close();
  });

  it("counts every call, Key Vault try, retry and seed lookup exactly", async () => {
    // A ciphertext whose seed the next process must unwrap: sealed now, decrypted after restart.
    let client = createClient(V2, h.socketPath);
    const old = await client.encrypt({ plaintext: randomBytes(16), uid: randomUUID() });
    client.close();
    h.emu.resetCounters();
    await h.restart();

    const before = await scrape(h);
    // Start-up: the key read (versions listed, current one fetched), the token and its OpenID
    // metadata; the seed is wrapped locally with the public key and unwrapped once by Key Vault
    // (the proof that it can be read back). The 401 challenges each new client gets are part of
    // authenticating and not counted: they match the emulator's counts minus its "challenge" ones.
    const startup = series(before, "azurekms_keyvault_requests_total");
    const emu = h.emu.counters();
    expect(startup).toEqual({
      "operation=get,outcome=ok": emu["get"],
      "operation=list,outcome=ok": emu["list"],
      "operation=unwrapkey,outcome=ok": emu["unwrapkey"],
      "operation=token,outcome=ok": emu["token"]! + emu["openid"]!,
    });
    expect(emu).toMatchObject({ get: 1, list: 1, token: 1, openid: 1, wrapkey: 0, unwrapkey: 1 });
    expect(series(before, "azurekms_grpc_request_duration_seconds_count")).toEqual({});
    expect(series(before, "azurekms_seeds_created_total")).toEqual({ "cause=start": 1 });

    client = createClient(V2, h.socketPath);
    const status = await client.status({});
    const sealed = [];
    for (let i = 0; i < n; i++) {
      sealed.push(await client.encrypt({ plaintext: randomBytes(32), uid: randomUUID() }));
    }
    for (let i = 0; i < m; i++) {
      const s = sealed[i]!;
      await client.decrypt({ ciphertext: s.ciphertext, keyId: s.keyId, uid: randomUUID() });
    }
    for (let i = 0; i < k; i++) {
      const err = await callError(
        client.decrypt({ ciphertext: randomBytes(100), keyId: status.keyId, uid: randomUUID() }),
      );
      expect(err.codeName).toBe("INVALID_ARGUMENT");
    }
    // Key Vault throttles the unwrap once, with Retry-After: the SDK retries it.
    h.emu.addFault({ operation: "unwrapkey", kind: "429", count: 1, retryAfter: 0 });
    await client.decrypt({ ciphertext: old.ciphertext, keyId: old.keyId, uid: randomUUID() });
    client.close();

    const after = await scrape(h);
    expect(series(after, "azurekms_grpc_request_duration_seconds_count")).toEqual({
      "code=OK,method=Status,service=v2": 1,
      "code=OK,method=Encrypt,service=v2": n,
      "code=OK,method=Decrypt,service=v2": m + 1,
      "code=INVALID_ARGUMENT,method=Decrypt,service=v2": k,
    });
    // Buckets from 50 µs to 10 s, cumulative, ending in +Inf.
    const buckets = after
      .filter(
        (s) =>
          s.name === "azurekms_grpc_request_duration_seconds_bucket" &&
          s.labels["method"] === "Encrypt",
      )
      .map((s) => s.labels["le"]);
    expect(buckets[0]).toBe("0.00005");
    expect(buckets.slice(-2)).toEqual(["10", "+Inf"]);

    const kvAfter = series(after, "azurekms_keyvault_requests_total");
    expect(h.emu.counters()["unwrapkey"]).toBe(3); // the proof, then the throttled try and its retry
    expect(delta(kvAfter, startup)).toEqual({
      "operation=unwrapkey,outcome=throttled": 1,
      "operation=unwrapkey,outcome=ok": 1,
    });
    expect(
      delta(
        series(after, "azurekms_keyvault_request_duration_seconds_count"),
        series(before, "azurekms_keyvault_request_duration_seconds_count"),
      ),
    ).toEqual({ "operation=unwrapkey,outcome=throttled": 1, "operation=unwrapkey,outcome=ok": 1 });
    expect(
      delta(
        series(after, "azurekms_keyvault_retries_total"),
        series(before, "azurekms_keyvault_retries_total"),
      ),
    ).toEqual({ "operation=unwrapkey": 1 });

    expect(series(after, "azurekms_seed_cache_requests_total")).toEqual({
      "result=hit": m,
      "result=miss": 1,
    });
    expect(series(after, "azurekms_seed_cache_size")).toEqual({ "": 1 });
    expect(series(after, "azurekms_seed_cache_evictions_total")).toEqual({ "": 0 });
    expect(series(after, "azurekms_decrypt_key_version_total")).toEqual({
      [`key_version=${currentVersion(after)}`]: m + 1,
    });
    const age = series(after, "azurekms_seed_age_seconds")[""];
    expect(age).toBeGreaterThanOrEqual(0);
    expect(age).toBeLessThan(60);
    const build = series(after, "azurekms_build_info");
    expect(Object.values(build)).toEqual([1]);
    expect(Object.keys(build)[0]).toMatch(/^commit=[^,]+,version=\d+\.\d+\.\d+/);
    // Node's standard process metrics, under their standard names.
    expect(after.some((s) => s.name === "process_cpu_user_seconds_total")).toBe(true);
    expect(after.some((s) => s.name === "nodejs_eventloop_lag_seconds")).toBe(true);
  });

  it("labels are bounded: no uid, URL, key name or error text anywhere", async () => {
    const samples = await scrape(h);
    const allowed = new Set([
      "service",
      "method",
      "code",
      "operation",
      "outcome",
      "result",
      "le",
      "key_version",
      "key_id_hash",
      "reason",
      "cause",
      "version",
      "commit",
      // prom-client's default metrics
      "kind",
      "type",
      "space",
      "major",
      "minor",
      "patch",
    ]);
    for (const s of samples) {
      for (const [label, value] of Object.entries(s.labels)) {
        expect([s.name, label, allowed.has(label)]).toEqual([s.name, label, true]);
        expect(value).not.toMatch(/https?:|\/keys\/|kek/);
      }
      if (s.name.startsWith("azurekms_") && s.name.endsWith("_total")) {
        expect(s.value).toBeGreaterThanOrEqual(0);
      }
    }
    const operations = new Set(
      samples
        .filter((s) => s.name === "azurekms_keyvault_requests_total")
        .map((s) => s.labels["operation"]),
    );
    for (const op of operations) {
      expect([
        "get",
        "list",
        "wrapkey",
        "unwrapkey",
        "encrypt",
        "decrypt",
        "token",
        "other",
      ]).toContain(op);
    }
  });

  it("reports Key Vault reachability in /readyz from the plugin's own calls", async () => {
    const body = (await (await fetch(`${h.plugin.healthUrl!}/readyz`)).json()) as {
      keyVault: { healthy: boolean | null; lastSuccessAt: string | null };
    };
    expect(body.keyVault.healthy).toBe(true);
    expect(body.keyVault.lastSuccessAt).not.toBeNull();
  });
});

function currentVersion(samples: Sample[]): string {
  const info = samples.find((s) => s.name === "azurekms_current_key_info");
  return info?.labels["key_version"] ?? "?";
}
