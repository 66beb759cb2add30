/**
 * A cold start under Key Vault's real quota model (the emulator's "quota" fault: the real 429,
 * no Retry-After, beyond N requests per fixed 10 s window): kube-apiserver restarts and reads
 * 10,000 objects under 50 seeds the plugin has never unwrapped, while the vault lets through 20
 * requests per window. Key Vault counts every transaction on the key (service limits page), so
 * the quota covers the plugin's GETs and lists too: at most 20 unwraps, fewer when it polls.
 */
import { randomBytes } from "node:crypto";
import { KeyManagementService as V2 } from "../../src/gen/v2/api_pb.js";
import { createKmsService, KeyAllowlist } from "../../src/kms/index.js";
import { createClient, KmsClientError } from "../helpers/grpc-client.js";
import { emulatorWrapper } from "../helpers/emulator-wrapper.js";
import { startPluginHarness } from "../helpers/plugin-harness.js";
import { scrapeText } from "../helpers/scrape.js";
import { report } from "../helpers/report.js";

const SEEDS = 50;
const OBJECTS = 10_000;
const QUOTA = 20;
const WINDOW_S = 10;
const DEADLINE_MS = 3_000;
/** kube-apiserver's reads are retried by their clients; here: after one window, at most 3 times. */
const CALLER_RETRIES = 3;
/** Calls in flight at once, as kube-apiserver's own concurrency bounds them. */
const CONCURRENCY = 200;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Sealed {
  readonly plaintext: Buffer;
  readonly ciphertext: Uint8Array;
  readonly keyId: string;
}

describe("a throttled cold start", () => {
  it(`${OBJECTS} Decrypts under ${SEEDS} seeds against ${QUOTA} unwraps per ${WINDOW_S} s: within the quota, breaker closed, every Decrypt succeeds within ${CALLER_RETRIES} retries`, async () => {
    const h = await startPluginHarness();
    try {
      // 50 seeds, as 50 earlier plugin instances would have left them: each start makes one.
      const vaultHost = new URL(h.emu.vaultUrl).host;
      const writer = emulatorWrapper(h.emu, "kek", (name) => name === "kek");
      const objects: Sealed[] = [];
      for (let s = 0; s < SEEDS; s++) {
        const service = createKmsService({
          wrapper: writer,
          allowlist: new KeyAllowlist({ vaultHost, keyName: "kek" }),
        });
        await service.start();
        for (let i = 0; i < OBJECTS / SEEDS; i++) {
          const plaintext = randomBytes(32);
          const r = service.encrypt(plaintext, { api: "v2", uid: "w" });
          expect(r.annotations.size).toBe(0);
          objects.push({ plaintext, ciphertext: r.ciphertext, keyId: r.keyId });
        }
        service.close();
      }

      // The vault's quota, then kube-apiserver's restart: a plugin with an empty seed cache.
      h.emu.addFault({ operation: "*", kind: "quota", limit: QUOTA, windowSeconds: WINDOW_S });
      await h.restart();
      h.emu.resetCounters();
      const client = createClient(V2, h.socketPath, { timeoutMs: DEADLINE_MS });
      try {
        let pending = objects.map((o, i) => ({ o, i }));
        const attemptsOf = new Array<number>(objects.length).fill(0);
        const codes: Record<string, number> = {};
        let slowestFailureMs = 0;
        const waves: string[] = [];
        for (let wave = 0; wave <= CALLER_RETRIES && pending.length > 0; wave++) {
          if (wave > 0) await sleep(WINDOW_S * 1000);
          const started = Date.now();
          const failed: typeof pending = [];
          let next = 0;
          const one = async (p: (typeof pending)[number]): Promise<void> => {
            attemptsOf[p.i] = (attemptsOf[p.i] ?? 0) + 1;
            const t0 = Date.now();
            try {
              const r = await client.decrypt({
                ciphertext: p.o.ciphertext,
                keyId: p.o.keyId,
                uid: "r",
              });
              if (!Buffer.from(r.plaintext).equals(p.o.plaintext))
                throw new Error("WRONG PLAINTEXT");
            } catch (error) {
              if (!(error instanceof KmsClientError)) throw error;
              codes[error.codeName] = (codes[error.codeName] ?? 0) + 1;
              slowestFailureMs = Math.max(slowestFailureMs, Date.now() - t0);
              failed.push(p);
            }
          };
          await Promise.all(
            Array.from({ length: CONCURRENCY }, async () => {
              while (next < pending.length) await one(pending[next++]!);
            }),
          );
          waves.push(
            `wave ${wave}: ${pending.length - failed.length}/${pending.length} ok in ${Date.now() - started} ms`,
          );
          pending = failed;
        }
        const metrics = await scrapeText(h.plugin.metricsUrl);
        const usage = h.emu.quotaUsage()[0]!.windows;
        report(
          `throttled cold start: ${waves.join("; ")}; failures ${JSON.stringify(codes)}, slowest ` +
            `failure ${slowestFailureMs} ms; quota windows ${JSON.stringify(usage)}; unwraps sent ` +
            `${h.emu.counters()["unwrapkey"]}`,
        );

        // Every Decrypt succeeded within three retries of its caller.
        expect(pending).toHaveLength(0);
        expect(Math.max(...attemptsOf)).toBeLessThanOrEqual(CALLER_RETRIES + 1);
        // Those that could not be carried failed fast, with UNAVAILABLE (not at their deadline).
        expect(Object.keys(codes).every((c) => c === "UNAVAILABLE")).toBe(true);
        expect(slowestFailureMs).toBeLessThan(DEADLINE_MS / 2);
        expect(h.emu.counters()["unwrapkey"]).toBeGreaterThanOrEqual(SEEDS);
        // The breaker never opened on throttling.
        expect(metrics).toMatch(/azurekms_keyvault_circuit_state 0/);
        expect(codes["UNAVAILABLE"] ?? 0).toBeGreaterThan(0);
        // Within the quota: no window served more than it allows (the emulator's count), and once
        // the plugin has met the quota, at most one request per window beyond it (its probe).
        for (const w of usage) expect(w.served).toBeLessThanOrEqual(QUOTA);
        for (const w of usage.slice(1)) expect(w.refused).toBeLessThanOrEqual(1);
        // One unwrap per seed, and the start-up's own requests (GET, list, the proof of its seed).
        expect(usage.reduce((n, w) => n + w.served, 0)).toBeLessThanOrEqual(SEEDS + 5);
      } finally {
        client.close();
      }
    } finally {
      await h.close();
    }
  }, 120_000);
});
