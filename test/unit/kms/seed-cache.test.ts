import { randomBytes } from "node:crypto";
import { KmsError } from "../../../src/kms/errors.js";
import { parseEnvelope, type Envelope } from "../../../src/kms/envelope.js";
import type { KeyWrapper } from "../../../src/kms/key-wrapper.js";
import { SeedCache } from "../../../src/kms/seed-cache.js";
import { FakeKeyWrapper, sharedKeyPair } from "../../helpers/fake-key-wrapper.js";
import { ctx, expectCode, isZero, startedServiceFor } from "./fixtures.js";

interface Sealed {
  readonly envelope: Envelope;
  readonly plaintext: Buffer;
}

const writerKeys = new FakeKeyWrapper({ keyPair: sharedKeyPair() });

/** One ciphertext under a fresh seed of `writerKeys`. */
async function sealed(): Promise<Sealed> {
  const writer = await startedServiceFor(writerKeys.withSameKeys());
  const plaintext = randomBytes(32);
  const envelope = parseEnvelope(writer.encrypt(plaintext, ctx()).ciphertext);
  writer.close();
  return { envelope, plaintext };
}

function open(cache: SeedCache, s: Sealed, signal?: AbortSignal): Promise<Buffer> {
  return cache.use(s.envelope.seed, s.envelope.seedCacheKey, { signal }, (seed) =>
    seed.open(s.envelope),
  );
}

describe("SeedCache", () => {
  it("shares one unwrap among concurrent misses and serves hits synchronously", async () => {
    const fake = writerKeys.withSameKeys({ latencyMs: 5 });
    const cache = new SeedCache({ wrapper: fake });
    const s = await sealed();
    const outs = await Promise.all(Array.from({ length: 50 }, () => open(cache, s)));
    for (const out of outs) expect(out).toEqual(s.plaintext);
    expect(fake.calls.unwrap).toBe(1);
    expect(cache.get(s.envelope.seedCacheKey)?.open(s.envelope)).toEqual(s.plaintext);
    expect(cache.size).toBe(1);
  });

  it("an unwrap in flight never evicts a ready seed; its landing does, and zeroes it", async () => {
    const fake = writerKeys.withSameKeys();
    const cache = new SeedCache({ wrapper: fake, max: 1 });
    const k = await sealed();
    const l = await sealed();
    expect(await open(cache, k)).toEqual(k.plaintext);
    const release = fake.holdUnwraps();
    const lOut = open(cache, l);
    // L's unwrap is held (as Key Vault's throttling would): K stays ready meanwhile.
    expect(cache.get(k.envelope.seedCacheKey)).toBeDefined();
    expect(await open(cache, k)).toEqual(k.plaintext);
    expect(fake.calls.unwrap).toBe(2);
    release();
    expect(await lOut).toEqual(l.plaintext);
    expect(cache.get(k.envelope.seedCacheKey)).toBeUndefined();
    expect(isZero(fake.unwrapped[0]!)).toBe(true);
    expect(isZero(fake.unwrapped[1]!)).toBe(false);
  });

  it("fetches again when the seed is evicted (and zeroed) between its unwrap landing and its use", async () => {
    const fake = writerKeys.withSameKeys();
    const cache = new SeedCache({ wrapper: fake, max: 1 });
    const k = await sealed();
    const l = await sealed();
    const release = fake.holdUnwraps();
    const kOut = open(cache, k);
    const lOut = open(cache, l);
    // Both land in one tick: L's landing evicts K before K's caller runs, which unwraps again.
    release();
    expect(await kOut).toEqual(k.plaintext);
    expect(await lOut).toEqual(l.plaintext);
    expect(cache.refetches).toBe(1);
    expect(fake.calls.unwrap).toBe(3); // K, L, K again
    expect(isZero(fake.unwrapped[0]!)).toBe(true);
  });

  it.each([
    [
      "throttled" as const,
      /^Key Vault is throttling this vault \(429\): the seed's unwrap waits 60 s/,
    ],
    [
      "rate-limit" as const,
      /^the client-side rate limit \(--keyvault-rate-limit\) is reached: the seed's unwrap waits 60 s/,
    ],
    [
      "circuit" as const,
      /^Key Vault circuit open after repeated failures: the seed's unwrap waits 60 s for the next probe/,
    ],
  ])(
    "a caller whose deadline comes before the queued unwrap fails at once, naming why (%s)",
    async (cause, message) => {
      const fake = writerKeys.withSameKeys();
      const queued: KeyWrapper = {
        refresh: () => fake.refresh(),
        wrap: (seed, key) => fake.wrap(seed, key),
        unwrap: (wrapped, options) => {
          options?.onQueued?.(60_000, cause);
          return fake.unwrap(wrapped, options);
        },
        decryptLegacy: (...args) => fake.decryptLegacy(...args),
      };
      const cache = new SeedCache({ wrapper: queued });
      const s = await sealed();
      const release = fake.holdUnwraps();
      const use = (deadline?: number) =>
        cache.use(s.envelope.seed, s.envelope.seedCacheKey, { deadline }, (seed) =>
          seed.open(s.envelope),
        );
      const patient = use(); // no deadline: waits for the unwrap
      const hurried = await expectCode(() => use(Date.now() + 3_000), "UNAVAILABLE");
      expect(hurried.message).toMatch(message);
      release();
      expect(await patient).toEqual(s.plaintext);
      // The queued unwrap filled the cache: the retry is a hit.
      expect(await use(Date.now() + 3_000)).toEqual(s.plaintext);
      expect(fake.calls.unwrap).toBe(1);
    },
  );

  it("an unwrap that lands after clear() is zeroed, not cached", async () => {
    const fake = writerKeys.withSameKeys();
    const cache = new SeedCache({ wrapper: fake });
    const k = await sealed();
    const release = fake.holdUnwraps();
    const out = open(cache, k);
    cache.clear();
    release();
    await expectCode(() => out, "UNAVAILABLE");
    expect(cache.size).toBe(0);
    expect(isZero(fake.unwrapped[0]!)).toBe(true);
  });

  it("zeroes evicted seeds", async () => {
    const fake = writerKeys.withSameKeys();
    const cache = new SeedCache({ wrapper: fake, max: 2 });
    const all = [await sealed(), await sealed(), await sealed()];
    for (const s of all) expect(await open(cache, s)).toEqual(s.plaintext);
    expect(fake.unwrapped.map(isZero)).toEqual([true, false, false]);
  });

  it("does not cache a failed unwrap", async () => {
    const fake = writerKeys.withSameKeys();
    const cache = new SeedCache({ wrapper: fake });
    const s = await sealed();
    fake.failNextUnwraps(2, new KmsError("UNAVAILABLE", "throttled"));
    await expectCode(() => open(cache, s), "UNAVAILABLE");
    await expectCode(() => open(cache, s), "UNAVAILABLE");
    expect(await open(cache, s)).toEqual(s.plaintext);
    expect(fake.calls.unwrap).toBe(3);
  });

  it("rejects an unwrapped seed of the wrong length and zeroes it", async () => {
    const returned = randomBytes(16);
    const fake = writerKeys.withSameKeys();
    const short: KeyWrapper = {
      refresh: () => fake.refresh(),
      wrap: (seed, key) => fake.wrap(seed, key),
      unwrap: () => Promise.resolve(returned),
      decryptLegacy: (...args) => fake.decryptLegacy(...args),
    };
    const cache = new SeedCache({ wrapper: short });
    const s = await sealed();
    const error = await expectCode(() => open(cache, s), "INVALID_ARGUMENT");
    expect(error.message).toContain("16 bytes");
    expect(isZero(returned)).toBe(true);
    expect(cache.size).toBe(0);
  });

  it("does not start an unwrap for a caller that has already given up", async () => {
    const fake = writerKeys.withSameKeys();
    const cache = new SeedCache({ wrapper: fake });
    const s = await sealed();
    const aborted = new AbortController();
    aborted.abort();
    await expectCode(() => open(cache, s, aborted.signal), "CANCELLED");
    expect(fake.calls.unwrap).toBe(0);
  });

  it("deletes and zeroes the seeds a predicate selects, leaving the others", async () => {
    const fake = writerKeys.withSameKeys();
    const cache = new SeedCache({ wrapper: fake });
    const all = [await sealed(), await sealed(), await sealed()];
    for (const s of all) await open(cache, s);
    const doomed = all[1]!.envelope.seedCacheKey;
    expect(cache.seeds()).toHaveLength(3);
    expect(cache.deleteWhere((seed) => seed.cacheKey === doomed)).toBe(1);
    expect(fake.unwrapped.map(isZero)).toEqual([false, true, false]);
    expect(cache.size).toBe(2);
    expect(cache.get(doomed)).toBeUndefined();
    expect(await open(cache, all[1]!)).toEqual(all[1]!.plaintext); // unwrapped again
    expect(fake.calls.unwrap).toBe(4);
  });

  it("refuses an unwrap that lands after its key was refused, zeroing it, without caching", async () => {
    const fake = writerKeys.withSameKeys();
    let refused = false;
    const cache = new SeedCache({
      wrapper: fake,
      refusal: (key) =>
        refused ? new KmsError("FAILED_PRECONDITION", `${key.keyVersion} revoked`) : undefined,
    });
    const s = await sealed();
    const release = fake.holdUnwraps();
    const pending = Promise.all([open(cache, s), open(cache, s)]);
    refused = true;
    release();
    const error = await expectCode(() => pending, "FAILED_PRECONDITION");
    expect(error.message).toContain("revoked");
    expect(isZero(fake.unwrapped[0]!)).toBe(true);
    expect(cache.size).toBe(0);
    refused = false;
    expect(await open(cache, s)).toEqual(s.plaintext);
  });

  it("refuses nonsense sizes", () => {
    const fake = writerKeys.withSameKeys();
    expect(() => new SeedCache({ wrapper: fake, max: 0 })).toThrow(RangeError);
    expect(() => new SeedCache({ wrapper: fake, unwrapTimeoutMs: 0 })).toThrow(RangeError);
  });
});
