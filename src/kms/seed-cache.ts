/**
 * Unwrapped seeds by cache key: an LRU whose evictions zero the seed, and whose misses are
 * single-flight (concurrent Decrypts of one seed share one Key Vault unwrap). Unwraps in flight
 * live beside the LRU, not in it: an unwrap that Key Vault's throttling holds for seconds must
 * not push out seeds that are ready.
 */
import { LRUCache } from "lru-cache";
import { abortError, raceAbort } from "./abort.js";
import { KmsError, toKmsError } from "./errors.js";
import type { KeyReference, KeyWrapper, WrappedSeed } from "./key-wrapper.js";
import { Seed } from "./seed.js";

export const DEFAULT_CACHE_SIZE = 1000;
export const DEFAULT_UNWRAP_TIMEOUT_MS = 30_000;
/**
 * Key Vault's refusals of an input (a forged or foreign wrapped seed) are remembered this long by
 * the wrap block's digest, so repeating the same envelope costs no further call. Short: a key
 * deleted and recovered again is readable at most this much later.
 */
export const REFUSAL_MEMORY_MS = 30_000;
const MAX_REFUSALS = 1000;
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

/** Who waits for a seed: its abort signal and, when it has one, its deadline (epoch ms). */
export interface SeedCaller {
  readonly signal?: AbortSignal | undefined;
  readonly deadline?: number | undefined;
}

/** When the rate limiter will let an unwrap in flight be sent, why, and who must hear of that. */
interface Queueing {
  sendAt: number | undefined;
  cause: "throttled" | "rate-limit" | "circuit";
  readonly waiters: Set<() => void>;
}

interface Flight extends Queueing {
  readonly promise: Promise<Seed>;
}

export class SeedCache {
  readonly #wrapper: KeyWrapper;
  readonly #flights = new Map<string, Flight>();
  readonly #refusals = new LRUCache<string, KmsError>({
    max: MAX_REFUSALS,
    ttl: REFUSAL_MEMORY_MS,
  });
  readonly #timeoutMs: number;
  readonly #lru: LRUCache<string, Seed>;
  readonly #refusal: ((key: KeyReference) => KmsError | undefined) | undefined;
  #refetches = 0;
  #evictions = 0;
  /** Bumped by clear(): an unwrap that lands after it is not cached (the keeper is closing). */
  #generation = 0;

  constructor(options: SeedCacheOptions) {
    const max = options.max ?? DEFAULT_CACHE_SIZE;
    const timeoutMs = options.unwrapTimeoutMs ?? DEFAULT_UNWRAP_TIMEOUT_MS;
    if (!Number.isInteger(max) || max < 1)
      throw new RangeError(`cache size must be a positive integer, got ${max}`);
    if (!(timeoutMs > 0)) throw new RangeError(`unwrap timeout must be positive, got ${timeoutMs}`);
    this.#wrapper = options.wrapper;
    this.#timeoutMs = timeoutMs;
    this.#refusal = options.refusal;
    this.#lru = new LRUCache<string, Seed>({
      max,
      dispose: (seed, _key, reason) => {
        // Only capacity evictions: deletes (revocation) and replacements are not pressure.
        if (reason === "evict") this.#evictions++;
        seed.destroy();
      },
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
   * zeroed) in between. The caller's signal abandons only its own wait, never the shared unwrap;
   * so does an unwrap held by Key Vault's throttling past the caller's deadline, at once.
   */
  async use<T>(
    wrapped: WrappedSeed,
    cacheKey: string,
    caller: SeedCaller | undefined,
    use: (seed: Seed) => T,
  ): Promise<T> {
    const signal = caller?.signal;
    for (let attempt = 1; ; attempt++) {
      if (signal?.aborted) throw abortError(signal.reason);
      const cached = this.get(cacheKey);
      if (cached !== undefined) return use(cached);
      const refused = this.#refusals.get(cacheKey);
      if (refused !== undefined) throw refused;
      const flight = this.#flights.get(cacheKey) ?? this.#start(cacheKey, wrapped);
      const fetching = this.#whileInTime(flight, caller?.deadline);
      const seed = await (signal === undefined ? fetching : raceAbort(fetching, signal));
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

  /**
   * `fetching`, or UNAVAILABLE as soon as its unwrap is known to wait (throttled) past `deadline`:
   * failing fast lets the caller retry later, when the unwrap, still queued, has filled the cache.
   */
  #whileInTime(flight: Flight, deadline: number | undefined): Promise<Seed> {
    const fetching = flight.promise;
    if (deadline === undefined) return fetching;
    return new Promise<Seed>((resolve, reject) => {
      const check = (): void => {
        if (flight.sendAt === undefined || flight.sendAt < deadline) return;
        flight.waiters.delete(check);
        const seconds = Math.max(1, Math.ceil((flight.sendAt - Date.now()) / 1000));
        reject(new KmsError("UNAVAILABLE", pastDeadline(flight.cause, seconds)));
      };
      flight.waiters.add(check);
      fetching.then(
        (value) => {
          flight.waiters.delete(check);
          resolve(value);
        },
        (error: unknown) => {
          flight.waiters.delete(check);
          reject(error instanceof Error ? error : toKmsError(error, "seed unwrap"));
        },
      );
      check();
    });
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

  /** Zeroes and drops every cached seed; unwraps still in flight are zeroed when they land. */
  clear(): void {
    this.#generation++;
    this.#lru.clear();
    this.#refusals.clear();
  }

  #start(cacheKey: string, wrapped: WrappedSeed): Flight {
    const queueing: Queueing = { sendAt: undefined, cause: "rate-limit", waiters: new Set() };
    const flight: Flight = Object.assign(queueing, {
      promise: this.#unwrapOnce(cacheKey, wrapped, queueing).finally(() => {
        if (this.#flights.get(cacheKey) === flight) this.#flights.delete(cacheKey);
      }),
    });
    this.#flights.set(cacheKey, flight);
    // Callers may all have left (deadline, cancel): the outcome is then nobody's to handle.
    flight.promise.catch(() => undefined);
    return flight;
  }

  async #unwrapOnce(cacheKey: string, wrapped: WrappedSeed, flight: Queueing): Promise<Seed> {
    const onQueued = (waitMs: number, cause: Queueing["cause"]): void => {
      flight.sendAt = Date.now() + waitMs;
      flight.cause = cause;
      for (const waiter of [...flight.waiters]) waiter();
    };
    const generation = this.#generation;
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
      call = this.#wrapper.unwrap(wrapped, { signal: controller.signal, onQueued });
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
      const refusal = toKmsError(error, "seed unwrap");
      if (refusal.refusedInput) this.#refusals.set(cacheKey, refusal);
      throw refusal;
    } finally {
      clearTimeout(timer);
    }
    const refused =
      generation === this.#generation
        ? this.#refusal?.(wrapped.key)
        : new KmsError("UNAVAILABLE", "the KMS service is shutting down: seed cache cleared");
    if (refused !== undefined) {
      bytes.fill(0);
      throw refused;
    }
    const seed = new Seed(bytes, wrapped);
    this.#lru.set(cacheKey, seed);
    // A seed evicted (zeroed) before its waiters ran is fetched again by them (use's loop).
    return seed;
  }
}

/** Why a caller gives up at once on an unwrap that cannot be sent before its deadline. */
function pastDeadline(cause: Queueing["cause"], seconds: number): string {
  if (cause === "circuit") {
    return `Key Vault circuit open after repeated failures: the seed's unwrap waits ${seconds} s for the next probe, past this call's deadline; it stays queued, so a retry after that finds the seed if Key Vault is back`;
  }
  const why =
    cause === "throttled"
      ? "Key Vault is throttling this vault (429)"
      : "the client-side rate limit (--keyvault-rate-limit) is reached";
  return `${why}: the seed's unwrap waits ${seconds} s for its turn, past this call's deadline; it stays queued, so a retry after that finds the seed`;
}
