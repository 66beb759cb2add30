/**
 * Unwrapped seeds by cache key: an LRU whose misses are single-flight (concurrent Decrypts of one
 * seed share one Key Vault unwrap) and whose evictions zero the seed.
 */
import { LRUCache } from "lru-cache";
import { abortError, raceAbort } from "./abort.js";
import { KmsError, toKmsError } from "./errors.js";
import type { KeyReference, KeyWrapper, WrappedSeed } from "./key-wrapper.js";
import { Seed } from "./seed.js";

export const DEFAULT_CACHE_SIZE = 1000;
export const DEFAULT_UNWRAP_TIMEOUT_MS = 30_000;
/** Fetches per request when the seed keeps being evicted before it can be used. */
const MAX_FETCH_ATTEMPTS = 4;

export interface SeedCacheOptions {
  readonly wrapper: KeyWrapper;
  readonly max?: number;
  /** Deadline of one shared unwrap; independent of any single caller's deadline. */
  readonly unwrapTimeoutMs?: number;
  /**
   * Why seeds under `key` may no longer be used, asked again when an unwrap lands: a version
   * revoked while its unwrap was in flight must not slip into the cache.
   */
  readonly refusal?: (key: KeyReference) => KmsError | undefined;
}

export class SeedCache {
  readonly #wrapper: KeyWrapper;
  readonly #timeoutMs: number;
  readonly #lru: LRUCache<string, Seed, WrappedSeed>;
  readonly #refusal: ((key: KeyReference) => KmsError | undefined) | undefined;
  #refetches = 0;
  #evictions = 0;

  constructor(options: SeedCacheOptions) {
    const max = options.max ?? DEFAULT_CACHE_SIZE;
    const timeoutMs = options.unwrapTimeoutMs ?? DEFAULT_UNWRAP_TIMEOUT_MS;
    if (!Number.isInteger(max) || max < 1)
      throw new RangeError(`cache size must be a positive integer, got ${max}`);
    if (!(timeoutMs > 0)) throw new RangeError(`unwrap timeout must be positive, got ${timeoutMs}`);
    this.#wrapper = options.wrapper;
    this.#timeoutMs = timeoutMs;
    this.#refusal = options.refusal;
    this.#lru = new LRUCache<string, Seed, WrappedSeed>({
      max,
      // An eviction of an in-flight entry must not fail the callers already waiting on it.
      ignoreFetchAbort: true,
      dispose: (seed, _key, reason) => {
        // Only capacity evictions: deletes (revocation) and replacements are not pressure.
        if (reason === "evict") this.#evictions++;
        seed.destroy();
      },
      fetchMethod: (cacheKey, _stale, { context }) => this.#unwrap(cacheKey, context),
    });
  }

  get size(): number {
    return this.#lru.size;
  }

  get max(): number {
    return this.#lru.max;
  }

  /** Times a fetched seed was found evicted before use and fetched again (cache too small). */
  get refetches(): number {
    return this.#refetches;
  }

  /** Seeds dropped to make room (the cache was full): a steady rise means --cache-size is small. */
  get evictions(): number {
    return this.#evictions;
  }

  /** A cached, usable seed, or undefined (also while its unwrap is in flight). Synchronous. */
  get(cacheKey: string): Seed | undefined {
    const seed = this.#lru.get(cacheKey);
    return seed === undefined || seed.destroyed ? undefined : seed;
  }

  /** Adds a seed that is already unwrapped (a replaced current seed). */
  add(seed: Seed): void {
    this.#lru.set(seed.cacheKey, seed);
  }

  /**
   * Finds or unwraps the seed and runs `use` on it synchronously, so it cannot be evicted (and
   * zeroed) in between. `signal` abandons only this caller's wait, never the shared unwrap.
   */
  async use<T>(
    wrapped: WrappedSeed,
    cacheKey: string,
    signal: AbortSignal | undefined,
    use: (seed: Seed) => T,
  ): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      if (signal?.aborted) throw abortError(signal.reason);
      const fetching = this.#lru.fetch(cacheKey, { context: wrapped });
      const seed = await (signal === undefined ? fetching : raceAbort(fetching, signal));
      if (seed === undefined) throw new KmsError("INTERNAL", "seed cache returned no seed");
      if (!seed.destroyed) return use(seed);
      // Evicted by another request between the fetch resolving and now: fetch again.
      this.#refetches++;
      if (attempt === MAX_FETCH_ATTEMPTS) {
        throw new KmsError(
          "UNAVAILABLE",
          `seed cache (size ${this.#lru.max}) is too small for the seeds being decrypted; raise --cache-size`,
        );
      }
    }
  }

  /** The cached seeds (not those in flight), without touching their recency. */
  seeds(): Seed[] {
    return Array.from(this.#lru.entries(), ([, seed]) => seed);
  }

  /**
   * Zeroes and drops every cached seed `predicate` selects; returns how many. Unwraps in flight
   * are not seen here: `refusal` stops them when they land.
   */
  deleteWhere(predicate: (seed: Seed) => boolean): number {
    const doomed: string[] = [];
    for (const [cacheKey, seed] of this.#lru.entries()) {
      if (predicate(seed)) doomed.push(cacheKey);
    }
    for (const cacheKey of doomed) this.#lru.delete(cacheKey);
    return doomed.length;
  }

  /** Zeroes and drops every cached seed. */
  clear(): void {
    this.#lru.clear();
  }

  async #unwrap(cacheKey: string, wrapped: WrappedSeed): Promise<Seed> {
    const controller = new AbortController();
    const timer = setTimeout(() => {
      controller.abort(
        new KmsError(
          "UNAVAILABLE",
          `Key Vault did not unwrap the seed within ${this.#timeoutMs} ms`,
        ),
      );
    }, this.#timeoutMs);
    timer.unref();
    let call: Promise<Uint8Array>;
    try {
      call = this.#wrapper.unwrap(wrapped, { signal: controller.signal });
    } catch (error) {
      call = Promise.reject(toKmsError(error, "seed unwrap"));
    }
    let bytes: Uint8Array;
    try {
      bytes = await raceAbort(call, controller.signal);
    } catch (error) {
      // A wrapper that ignores the signal may still answer later: zero what it returns.
      if (controller.signal.aborted) {
        call.then(
          (late) => late.fill(0),
          () => undefined,
        );
      }
      throw toKmsError(error, "seed unwrap");
    } finally {
      clearTimeout(timer);
    }
    const refused = this.#refusal?.(wrapped.key);
    if (refused !== undefined) {
      bytes.fill(0);
      throw refused;
    }
    const seed = new Seed(bytes, wrapped);
    // A seed evicted or replaced while in flight is never stored, so never disposed: zero it once
    // every caller waiting on it has used it (they all run as microtasks before this fires).
    setImmediate(() => {
      if (this.#lru.peek(cacheKey) !== seed) seed.destroy();
    });
    return seed;
  }
}
