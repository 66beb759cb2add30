/**
 * How the plugin talks to Key Vault under faults, through the real plugin and the emulator:
 * retries within the deadline, answering before kube-apiserver's 3 s timeout, the circuit breaker,
 * the client-side rate limiter, and single-flight refreshes.
 */
import { randomBytes, randomUUID } from "node:crypto";
import { KeyManagementService as V2 } from "../../src/gen/v2/api_pb.js";
import { deadlineSignal } from "../../src/keyvault/resilience.js";
import { createKmsService, KeyAllowlist } from "../../src/kms/index.js";
import { eventually } from "../helpers/eventually.js";
import { emulatorWrapper } from "../helpers/emulator-wrapper.js";
import { callError, createClient, type PromiseClient } from "../helpers/grpc-client.js";
import { startPluginHarness, type PluginHarness } from "../helpers/plugin-harness.js";
import { scrapeText } from "../helpers/scrape.js";
import { report } from "../helpers/report.js";
import { totalRequests } from "../helpers/emulator-counters.js";

interface Sealed {
  plaintext: Buffer;
  ciphertext: Uint8Array;
  keyId: string;
}

type Client = PromiseClient<typeof V2>;

async function seal(client: Client): Promise<Sealed> {
  const plaintext = randomBytes(32);
  const res = await client.encrypt({ plaintext, uid: randomUUID() });
  return { plaintext, ciphertext: res.ciphertext, keyId: res.keyId };
}

async function open(client: Client, s: Sealed): Promise<Buffer> {
  const res = await client.decrypt({
    ciphertext: s.ciphertext,
    keyId: s.keyId,
    annotations: {},
    uid: randomUUID(),
  });
  return Buffer.from(res.plaintext);
}

const sum = totalRequests;

/** kube-apiserver's default per-call timeout. */
const apiserverTimeoutMs = 3_000;

describe("Key Vault faults through the plugin", () => {
  let h: PluginHarness;
  let client: Client;
  /** Sealed before a restart: its seed is unknown to the plugin, so Decrypt must unwrap. */
  let sealed: Sealed;

  beforeAll(async () => {
    h = await startPluginHarness();
    client = createClient(V2, h.socketPath, { timeoutMs: apiserverTimeoutMs });
    sealed = await seal(client);
  });
  afterAll(async () => {
    client.close();
    await h.close();
  });
  beforeEach(async () => {
    h.emu.clearFaults();
    // An empty seed cache: every Decrypt of `sealed` unwraps in Key Vault.
    await h.restart();
    client.close();
    client = createClient(V2, h.socketPath, { timeoutMs: apiserverTimeoutMs });
    h.emu.resetCounters();
  });

  it.each([
    ["500", { kind: "500" as const }],
    ["503", { kind: "503" as const }],
    ["connection reset", { kind: "reset" as const }],
  ])("%s twice: retried, and the Decrypt succeeds", async (_name, fault) => {
    h.emu.addFault({ operation: "unwrapkey", count: 2, ...fault });
    const started = Date.now();
    expect((await open(client, sealed)).equals(sealed.plaintext)).toBe(true);
    const elapsed = Date.now() - started;
    expect(h.emu.counters()["unwrapkey"]).toBe(3);
    expect(elapsed).toBeLessThan(apiserverTimeoutMs);
    report(`resilience: ${_name} ×2 → ok in ${elapsed} ms`);
  });

  it("429 without Retry-After: the Decrypt fails fast, UNAVAILABLE naming the throttling; the circuit stays closed; a retry after the window succeeds", async () => {
    h.emu.addFault({ operation: "unwrapkey", kind: "429", count: 2 });
    const started = Date.now();
    const err = await callError(open(client, sealed));
    expect(Date.now() - started).toBeLessThan(apiserverTimeoutMs / 2);
    expect(err.codeName).toBe("UNAVAILABLE");
    expect(err.details).toMatch(/Key Vault is throttling this vault \(429\)/);
    // Key Vault's window is 10 s: the unwrap, still queued, fills the cache when its turn comes.
    const ok = await eventually(
      async () => ((await open(client, sealed).catch(() => undefined)) ? true : undefined),
      15_000,
      "a Decrypt after the window",
    );
    expect(ok).toBe(true);
    const metrics = await scrapeText(h.plugin.metricsUrl);
    expect(metrics).toMatch(/azurekms_keyvault_circuit_state 0/);
    expect(metrics).toMatch(/azurekms_keyvault_rate_limit_allowance [1-9]/);
    report(`resilience: 429 ×2 without Retry-After → ok after ${Date.now() - started} ms`);
  }, 30_000);

  it("429 with Retry-After: 1 is honoured (the retry waits about a second)", async () => {
    h.emu.addFault({ operation: "unwrapkey", kind: "429", count: 1, retryAfter: 1 });
    const started = Date.now();
    expect((await open(client, sealed)).equals(sealed.plaintext)).toBe(true);
    const elapsed = Date.now() - started;
    expect(elapsed).toBeGreaterThanOrEqual(950);
    expect(elapsed).toBeLessThan(apiserverTimeoutMs);
    expect(h.emu.counters()["unwrapkey"]).toBe(2);
    report(`resilience: 429 Retry-After 1 → ok in ${elapsed} ms`);
  });

  it("latency above the deadline: the plugin answers DEADLINE_EXCEEDED itself, before 3 s", async () => {
    h.emu.addFault({ operation: "unwrapkey", kind: "latency", ms: 5_000, count: 1 });
    const started = Date.now();
    const err = await callError(open(client, sealed));
    const elapsed = Date.now() - started;
    expect(err.codeName).toBe("DEADLINE_EXCEEDED");
    // The plugin's own words, not grpc-js's client-side "Deadline exceeded after …".
    expect(err.details).toMatch(/the plugin gave up just before the call's deadline/);
    // Those details prove the answer beat the client's own deadline timer; the wall time seen
    // here also holds this process's event-loop lag (emulator, plugin and client share it).
    expect(elapsed).toBeLessThan(apiserverTimeoutMs + 150);
    expect(elapsed).toBeGreaterThan(apiserverTimeoutMs - 300);
    report(`resilience: latency 5 s → ${err.codeName} from the plugin at ${elapsed} ms`);
  });

  it("an outage opens the circuit: Key Vault sees only probes, a deadline shorter than the next probe fails at once, unsent; cached work goes on; it closes by itself", async () => {
    const cached = await seal(client); // the current seed, in memory
    h.emu.addFault({ operation: "*", kind: "503" });
    let opened = false;
    for (let i = 0; i < 12 && !opened; i++) {
      const err = await callError(open(client, sealed));
      expect(err.codeName).toBe("UNAVAILABLE");
      const metrics = await scrapeText(h.plugin.metricsUrl);
      opened = /azurekms_keyvault_circuit_state [12]/.test(metrics);
    }
    expect(opened).toBe(true);
    // Open: a read with time left waits for the next probe and answers before its deadline;
    // Key Vault sees the probes only (about one per cool-down), not one request per read.
    h.emu.resetCounters();
    const started = performance.now();
    for (let i = 0; i < 3; i++) {
      const err = await callError(open(client, sealed));
      expect(["UNAVAILABLE", "DEADLINE_EXCEEDED"]).toContain(err.codeName);
    }
    const seconds = (performance.now() - started) / 1000;
    const sent = h.emu.counters()["unwrapkey"] ?? 0;
    expect(sent).toBeLessThanOrEqual(Math.ceil(seconds / 0.5) + 1);
    // A read whose deadline ends before the next probe is refused at once, unsent.
    const short = createClient(V2, h.socketPath, { timeoutMs: 150 });
    const timings: number[] = [];
    let refused: string | undefined;
    try {
      for (let i = 0; i < 5 && refused === undefined; i++) {
        h.emu.resetCounters();
        const t0 = performance.now();
        const err = await callError(open(short, sealed));
        timings.push(performance.now() - t0);
        if (/circuit open/.test(err.details) && sum(h.emu.counters()) === 0) refused = err.details;
      }
    } finally {
      short.close();
    }
    expect(refused).toBeDefined();
    expect(Math.min(...timings)).toBeLessThan(50);
    report(
      `resilience: circuit open → ${sent} unwraps in ${seconds.toFixed(1)} s of reads; a 150 ms read refused in ${timings
        .map((t) => t.toFixed(1))
        .join(", ")} ms`,
    );
    // Encrypt, Status and cached Decrypt do not need Key Vault.
    expect((await client.status({})).healthz).toBe("ok");
    expect((await seal(client)).keyId).toBe(cached.keyId);
    expect((await open(client, cached)).equals(cached.plaintext)).toBe(true);
    const metrics = await scrapeText(h.plugin.metricsUrl);
    expect(metrics).toMatch(/azurekms_keyvault_circuit_state [12]/);

    h.emu.clearFaults();
    const healedAt = Date.now();
    await eventually(
      async () => {
        try {
          return (await open(client, sealed)).equals(sealed.plaintext) ? true : undefined;
        } catch {
          return undefined;
        }
      },
      10_000,
      "Decrypt to work again once Key Vault answers",
    );
    report(`resilience: circuit closed ${Date.now() - healedAt} ms after the fault cleared`);
    const after = await scrapeText(h.plugin.metricsUrl);
    expect(after).toMatch(/azurekms_keyvault_circuit_state 0/);
    expect(after).toMatch(/azurekms_keyvault_retries_total\{operation="unwrapkey"\} [1-9]/);
  });
});

describe("after an outage", () => {
  it("the first Decrypts of uncached seeds issued the moment Key Vault recovers all succeed", async () => {
    const h = await startPluginHarness();
    const client = createClient(V2, h.socketPath, { timeoutMs: apiserverTimeoutMs });
    try {
      // Eight seeds the plugin has never seen, as other instances would have left them.
      const vaultHost = new URL(h.emu.vaultUrl).host;
      const writer = emulatorWrapper(h.emu, "kek", (name) => name === "kek");
      const unseen: Sealed[] = [];
      for (let i = 0; i < 8; i++) {
        const service = createKmsService({
          wrapper: writer,
          allowlist: new KeyAllowlist({ vaultHost, keyName: "kek" }),
        });
        await service.start();
        const plaintext = randomBytes(32);
        const r = service.encrypt(plaintext, { api: "v2", uid: "w" });
        unseen.push({
          plaintext: Buffer.from(plaintext),
          ciphertext: r.ciphertext,
          keyId: r.keyId,
        });
        service.close();
      }
      h.emu.addFault({ operation: "*", kind: "503" });
      // An outage of 6 s with reads all along: the circuit opens, its probes fail, and its
      // cool-down grows to the longest (--keyvault-breaker-cooldown).
      const outageEnds = Date.now() + 6_000;
      let sawOpen = false;
      for (let i = 0; Date.now() < outageEnds; i++) {
        const s = unseen[i % unseen.length]!;
        const err = await callError(open(client, s));
        expect(["UNAVAILABLE", "DEADLINE_EXCEEDED"]).toContain(err.codeName);
        const metrics = await scrapeText(h.plugin.metricsUrl);
        if (/azurekms_keyvault_circuit_state [12]/.test(metrics)) sawOpen = true;
        await new Promise((r) => setTimeout(r, 100));
      }
      expect(sawOpen).toBe(true);
      h.emu.clearFaults();
      const recovered = Date.now();
      const outcomes = await Promise.all(
        unseen.map((s) =>
          open(client, s).then(
            (p) => (p.equals(s.plaintext) ? "ok" : "WRONG PLAINTEXT"),
            (e: unknown) => String(e),
          ),
        ),
      );
      report(
        `resilience: after a 6 s outage, ${outcomes.filter((o) => o === "ok").length}/${outcomes.length} uncached Decrypts ok, in ${Date.now() - recovered} ms`,
      );
      expect(outcomes).toEqual(unseen.map(() => "ok"));
    } finally {
      client.close();
      await h.close();
    }
  }, 30_000);
});

describe("client-side rate limiter", () => {
  it("lets its allowance per 10 s through, and refuses at once, unsent, what would wait past its deadline", async () => {
    const h = await startPluginHarness();
    try {
      // 1/s over Key Vault's 10 s window: 10 requests per window.
      const wrapper = emulatorWrapper(h.emu, "kek", () => true, { resilience: { rateLimit: 1 } });
      const state = await wrapper.refresh();
      const wrapped = await wrapper.wrap(randomBytes(32), state.current!);
      h.emu.resetCounters();
      // The refresh and its GETs already took some of the window; fill the rest.
      let sent = 0;
      for (;;) {
        const started = performance.now();
        try {
          await wrapper.unwrap(wrapped, { signal: deadlineSignal(200, "test") });
          sent++;
        } catch (error) {
          expect(error).toMatchObject({ code: "UNAVAILABLE", message: /client-side rate limit/ });
          expect(performance.now() - started).toBeLessThan(100);
          break;
        }
      }
      expect(sent).toBeGreaterThan(0);
      expect(sent).toBeLessThanOrEqual(10);
      expect(h.emu.counters()["unwrapkey"]).toBe(sent);
      // A caller that gives up while its request waits for its turn gets UNAVAILABLE, unsent.
      const controller = new AbortController();
      setTimeout(() => {
        controller.abort();
      }, 300);
      const t1 = Date.now();
      await expect(wrapper.unwrap(wrapped, { signal: controller.signal })).rejects.toMatchObject({
        code: "UNAVAILABLE",
      });
      expect(Date.now() - t1).toBeLessThan(450);
      expect(h.emu.counters()["unwrapkey"]).toBe(sent);
      report(`resilience: limiter 1/s: ${sent} unwraps in the window, then refused unsent`);
    } finally {
      await h.close();
    }
  });
});

describe("single-flight", () => {
  it("identical concurrent refreshes send one list", async () => {
    const h = await startPluginHarness();
    try {
      const wrapper = emulatorWrapper(h.emu, "kek", () => true);
      await wrapper.refresh();
      h.emu.resetCounters();
      h.emu.addFault({ operation: "list", kind: "latency", ms: 200, count: 1 });
      const states = await Promise.all(Array.from({ length: 20 }, () => wrapper.refresh()));
      expect(h.emu.counters()["list"]).toBe(1);
      for (const s of states) expect(s.current).toEqual(states[0]!.current);
      // After it lands, the next refresh is a new request.
      await wrapper.refresh();
      expect(h.emu.counters()["list"]).toBe(2);
    } finally {
      await h.close();
    }
  });
});
