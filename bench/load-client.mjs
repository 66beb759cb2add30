#!/usr/bin/env node
/* global process, performance, Buffer */
/**
 * The bench's load client, forked by run.mjs: its own process, so that the server under test
 * never shares an event loop with the load. Commands come over IPC ({ id, cmd, ...args }) and
 * each answers { id, ok, result | error }. Datasets (ciphertexts with the plaintext each must
 * decrypt to) stay here between commands, so no bulk data crosses the IPC channel.
 *
 * Every Decrypt is checked against its plaintext; a wrong one is reported, never skipped.
 */
import { randomBytes } from "node:crypto";
import * as v1beta1 from "../dist/gen/v1beta1/api_pb.js";
import * as v2 from "../dist/gen/v2/api_pb.js";
import { createPromiseClient, KmsClientError } from "../dist/grpc/promise-client.js";
import { parseEnvelope } from "../dist/kms/envelope.js";
import { Samples, shuffle } from "./lib/stats.mjs";

/** Generous: the plugin's client-side Key Vault rate limit may hold a seed-cache fill back. */
const TIMEOUT_MS = 30_000;
/** Encrypts a throughput run keeps (the newest ones) to decrypt and check afterwards. */
const VERIFY_SAMPLE = 64;

const targets = new Map(); // name -> { v2, v1 }
const datasets = new Map(); // name -> [{ ciphertext, keyId, plaintext }]
/** DEKs for Encrypt: made up front so that the client's own cost is the same for every server. */
const deks = Array.from({ length: 1024 }, () => randomBytes(32));

const target = (name) => {
  const t = targets.get(name);
  if (t === undefined) throw new Error(`no target ${name}`);
  return t;
};
const dataset = (name) => {
  const d = datasets.get(name);
  if (d === undefined || d.length === 0) throw new Error(`no dataset ${name}`);
  return d;
};

/** One KMS call of `api` ("v2" or "v1", i.e. v1beta1) on target `t`. */
const calls = {
  v2: {
    encrypt: async (t, plaintext) => {
      const r = await t.v2.encrypt({ plaintext, uid: "bench" });
      return { ciphertext: r.ciphertext, keyId: r.keyId, plaintext };
    },
    decrypt: async (t, item) =>
      (await t.v2.decrypt({ ciphertext: item.ciphertext, keyId: item.keyId, uid: "bench" }))
        .plaintext,
  },
  v1: {
    encrypt: async (t, plaintext) => {
      const r = await t.v1.encrypt({ version: "v1beta1", plain: plaintext });
      return { ciphertext: r.cipher, keyId: "", plaintext };
    },
    decrypt: async (t, item) =>
      (await t.v1.decrypt({ version: "v1beta1", cipher: item.ciphertext })).plain,
  },
};

class Tally {
  errors = {};
  firstError;
  wrong = 0;
  error(error) {
    const code = error instanceof KmsClientError ? error.codeName : `THROWN(${error?.name})`;
    this.errors[code] = (this.errors[code] ?? 0) + 1;
    this.firstError ??= String(error?.message ?? error);
  }
  check(got, want) {
    if (Buffer.compare(got, want) !== 0) this.wrong++;
  }
  get errorCount() {
    return Object.values(this.errors).reduce((a, b) => a + b, 0);
  }
  toJSON() {
    return { errors: this.errors, firstError: this.firstError, wrong: this.wrong };
  }
}

const commands = {
  connect({ name, socket }) {
    targets.set(name, {
      v2: createPromiseClient(v2.KeyManagementService, socket, { timeoutMs: TIMEOUT_MS }),
      v1: createPromiseClient(v1beta1.KeyManagementService, socket, { timeoutMs: TIMEOUT_MS }),
    });
    // Connect now: the first measured call must not pay for the connection.
    return target(name).v2.status({});
  },

  disconnect({ name }) {
    const t = targets.get(name);
    t?.v2.close();
    t?.v1.close();
    targets.delete(name);
  },

  /** Replaces a dataset (the orchestrator's crafted envelopes for the cache fill). */
  putDataset({ name, items }) {
    datasets.set(
      name,
      items.map((i) => ({ ...i, plaintext: Buffer.from(i.plaintext) })),
    );
    return datasets.get(name).length;
  },

  /** Count and number of distinct seeds (plugin envelopes; 0 for other ciphertexts). */
  datasetInfo({ name }) {
    const items = dataset(name);
    const seeds = new Set();
    for (const item of items) {
      try {
        seeds.add(parseEnvelope(item.ciphertext).seedCacheKey);
      } catch {
        // Not a plugin envelope (the direct mode's RSA blobs).
      }
    }
    return { count: items.length, distinctSeeds: seeds.size };
  },

  /**
   * Closed loop for warmupMs + durationMs: `concurrency` workers, each one call at a time.
   * Only calls started after the warm-up are measured.
   */
  async run({ name, op, concurrency, warmupMs, durationMs, pool, fixedPlaintext, verify }) {
    const t = target(name);
    const items = op === "decrypt" ? dataset(pool) : [];
    const fixed = fixedPlaintext === undefined ? undefined : Buffer.from(fixedPlaintext);
    const samples = new Samples();
    const tally = new Tally();
    const kept = [];
    let next = 0;
    const from = performance.now() + warmupMs;
    const end = from + durationMs;
    let lastDone = from;

    const once = async () => {
      const i = next++;
      if (op === "status") {
        await t.v2.status({});
      } else if (op === "encrypt") {
        const item = await calls.v2.encrypt(t, deks[i % deks.length]);
        if (verify) kept[i % VERIFY_SAMPLE] = item;
      } else {
        const item = items[i % items.length];
        tally.check(await calls.v2.decrypt(t, item), fixed ?? item.plaintext);
      }
    };
    const worker = async () => {
      for (;;) {
        const t0 = performance.now();
        if (t0 >= end) return;
        try {
          await once();
        } catch (error) {
          tally.error(error);
        }
        const t1 = performance.now();
        if (t0 >= from) {
          samples.add(t1 - t0);
          if (t1 > lastDone) lastDone = t1;
        }
      }
    };
    await Promise.all(Array.from({ length: concurrency }, worker));

    // Outside the clock: what was encrypted must decrypt back.
    for (const item of kept.filter(Boolean)) {
      try {
        tally.check(await calls.v2.decrypt(t, item), item.plaintext);
      } catch (error) {
        tally.error(error);
      }
    }
    const seconds = (lastDone - from) / 1000;
    return {
      latency: samples.summary(),
      throughput: seconds > 0 ? samples.count / seconds : 0,
      verified: kept.filter(Boolean).length,
      ...tally.toJSON(),
    };
  },

  /** `n` Encrypts of fresh DEKs at `concurrency`; the results go into dataset `store`. */
  async encryptBatch({ name, api, n, concurrency, store, append }) {
    const t = target(name);
    const out = append && datasets.has(store) ? datasets.get(store) : [];
    const plaintexts = Array.from({ length: n }, () => randomBytes(32));
    const result = await batch(n, concurrency, async (i) => {
      out.push(await calls[api].encrypt(t, plaintexts[i]));
    });
    datasets.set(store, out);
    return result;
  },

  /** Every item of dataset `pool` decrypted once, in shuffled order, checked. */
  async decryptBatch({ name, api, pool, concurrency }) {
    const t = target(name);
    const items = shuffle([...dataset(pool)]);
    return batch(items.length, concurrency, async (i, tally) => {
      tally.check(await calls[api].decrypt(t, items[i]), items[i].plaintext);
    });
  },
};

/** Runs call(i) for i in 0..n-1 with `concurrency` in flight; wall time, latencies, errors. */
async function batch(n, concurrency, call) {
  const samples = new Samples();
  const tally = new Tally();
  let next = 0;
  const t0 = performance.now();
  const worker = async () => {
    while (next < n) {
      const i = next++;
      const s = performance.now();
      try {
        await call(i, tally);
      } catch (error) {
        tally.error(error);
      }
      samples.add(performance.now() - s);
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, n) }, worker));
  const wallMs = performance.now() - t0;
  return { n, wallMs, latency: samples.summary(), ...tally.toJSON() };
}

process.on("message", (msg) => {
  const { id, cmd, ...args } = msg;
  Promise.resolve()
    .then(() => commands[cmd](args))
    .then(
      (result) => process.send({ id, ok: true, result }),
      (error) => process.send({ id, ok: false, error: String(error?.stack ?? error) }),
    );
});
process.on("disconnect", () => {
  for (const name of [...targets.keys()]) commands.disconnect({ name });
  process.exit(0);
});
