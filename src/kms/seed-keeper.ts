/**
 * Which seeds may be used (docs/architecture.md, "key_id and rotation"): the current seed, the
 * cached older ones, and Key Vault's view of the key's versions, refreshed by a poll. It promotes a new
 * version, replaces an old seed, and drops every seed under a revoked version.
 */
import { LRUCache } from "lru-cache";
import type { KeyAllowlist } from "./allowlist.js";
import { KmsError, toKmsError } from "./errors.js";
import type { KeyReference, KeyState, KeyWrapper, RevocationReason } from "./key-wrapper.js";
import { notify, type KmsObserver } from "./observer.js";
import {
  keyNotFoundError,
  noUsableSeedError,
  noUsableVersionError,
  revokedVersionError,
} from "./revocation.js";
import { createSeed, reproveUnwrap, type Seed } from "./seed.js";
import { SeedCache } from "./seed-cache.js";

export const DEFAULT_POLL_INTERVAL_MS = 5 * 60_000;
export const DEFAULT_SEED_MAX_AGE_MS = 7 * 24 * 3600_000;
/** Retry delay of a failed seed-age wrap (or the max age itself, if shorter). */
const WRAP_RETRY_MS = 60_000;
/** setTimeout's longest delay; longer ones fire at once. */
const MAX_TIMER_MS = 2 ** 31 - 1;
/** Bound on the versions watched for revoke/restore events (real versions only, so few). */
const MAX_KNOWN_VERSIONS = 1000;

export interface SeedKeeperOptions {
  readonly wrapper: KeyWrapper;
  readonly allowlist: KeyAllowlist;
  readonly cacheSize?: number;
  readonly unwrapTimeoutMs?: number;
  /** 0 disables the timer (poll() is still callable). */
  readonly pollIntervalMs?: number;
  /** 0 disables seed replacement by age. */
  readonly seedMaxAgeMs?: number;
  readonly observer?: KmsObserver;
  readonly now?: () => number;
}

interface Revoked {
  readonly keyVersion: string;
  readonly reason: RevocationReason;
}

function sameRef(a: KeyReference | undefined, b: KeyReference | undefined): boolean {
  if (a === undefined || b === undefined) return a === b;
  return a.vaultHost === b.vaultHost && a.keyName === b.keyName && a.keyVersion === b.keyVersion;
}

function timerDelay(ms: number): number {
  return Math.min(Math.max(0, Math.round(ms)), MAX_TIMER_MS);
}

export function closedError(): KmsError {
  return new KmsError("UNAVAILABLE", "the KMS service is shutting down");
}

export class SeedKeeper {
  readonly cache: SeedCache;
  readonly #wrapper: KeyWrapper;
  readonly #allowlist: KeyAllowlist;
  readonly #observer: KmsObserver | undefined;
  readonly #now: () => number;
  readonly #pollIntervalMs: number;
  readonly #maxAgeMs: number;
  readonly #keyName: string;

  #current: Seed | undefined;
  #currentSince = 0;
  /** The key of the latest current seed, kept after it is dropped (for messages). */
  #lastKey: KeyReference | undefined;
  #state: KeyState | undefined;
  /** Versions of the configured key last reported revoked, for onRevoke/onRestore. */
  readonly #revoked = new Map<string, RevocationReason>();
  /** Versions of the configured key this plugin has held seeds under. */
  /** Versions seen in use, bounded: the oldest seen goes first. */
  readonly #known = new LRUCache<string, true>({ max: MAX_KNOWN_VERSIONS });
  /** Why no seed is usable although Key Vault answered (revoked, or its successor's wrap failed). */
  #unusable: KmsError | undefined;
  #served = false;
  #notReady = "not ready: no seed yet";
  /** Key Vault's refusal of the last poll's unwrap of the current seed, while it lasts. */
  #unwrapRefused: KmsError | undefined;
  #closed = false;
  #queue: Promise<void> = Promise.resolve();
  #polling = false;
  #pollTimer: NodeJS.Timeout | undefined;
  #ageTimer: NodeJS.Timeout | undefined;

  constructor(options: SeedKeeperOptions) {
    this.#wrapper = options.wrapper;
    this.#allowlist = options.allowlist;
    this.#observer = options.observer;
    this.#now = options.now ?? Date.now;
    this.#pollIntervalMs = options.pollIntervalMs ?? DEFAULT_POLL_INTERVAL_MS;
    this.#maxAgeMs = options.seedMaxAgeMs ?? DEFAULT_SEED_MAX_AGE_MS;
    if (!(this.#pollIntervalMs >= 0)) {
      throw new RangeError(`poll interval must be ≥ 0, got ${this.#pollIntervalMs}`);
    }
    if (!(this.#maxAgeMs >= 0)) {
      throw new RangeError(`seed max age must be ≥ 0, got ${this.#maxAgeMs}`);
    }
    this.#keyName = options.allowlist.keys[0]?.keyName ?? "";
    this.cache = new SeedCache({
      wrapper: options.wrapper,
      refusal: (key) => this.refusal(key),
      ...(options.cacheSize === undefined ? {} : { max: options.cacheSize }),
      ...(options.unwrapTimeoutMs === undefined
        ? {}
        : { unwrapTimeoutMs: options.unwrapTimeoutMs }),
    });
  }

  /** The seed Encrypt uses; undefined before the first one, after close, or while none is usable. */
  get current(): Seed | undefined {
    return this.#current;
  }

  /** How long the current seed has been current (by this keeper's clock), if there is one. */
  get currentAgeMs(): number | undefined {
    return this.#current === undefined ? undefined : this.#now() - this.#currentSince;
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** Whether a current seed has ever existed (kube-apiserver may be writing under it). */
  get served(): boolean {
    return this.#served;
  }

  /** Why no current seed is usable, when Key Vault's answer is the reason. */
  get unusable(): KmsError | undefined {
    return this.#current === undefined && !this.#closed ? this.#unusable : undefined;
  }

  /** Status.healthz while there is no current seed and no `unusable` to throw. */
  get notReady(): string {
    return this.#notReady;
  }

  /** Why Key Vault refused the last poll's unwrap of the current seed; undefined while it works. */
  get unwrapRefused(): KmsError | undefined {
    return this.#unwrapRefused;
  }

  /** Key Vault's view of the configured key as of the last successful refresh, if any. */
  get keyState(): KeyState | undefined {
    return this.#state;
  }

  /** Why Key Vault says `key` must not be used: only versions of the configured key count. */
  revocationOf(key: KeyReference): RevocationReason | undefined {
    const reason = this.#state?.revocation(key.keyVersion);
    return reason !== undefined && this.#allowlist.isConfigured(key) ? reason : undefined;
  }

  /** The Decrypt error for data under `key`, if its version is revoked. */
  refusal(key: KeyReference): KmsError | undefined {
    const reason = this.revocationOf(key);
    return reason === undefined
      ? undefined
      : revokedVersionError(key.keyName, key.keyVersion, reason);
  }

  /** Refreshes and makes the first current seed; throws (and sets `notReady`) on failure. */
  start(): Promise<void> {
    return this.#serial(async () => {
      if (this.#closed) throw closedError();
      let state: KeyState;
      try {
        state = await this.#wrapper.refresh();
      } catch (error) {
        throw this.#notReadyBecause("reading the key failed", toKmsError(error, "key refresh"));
      }
      if (this.#isClosed()) throw closedError();
      const failure = await this.#apply(state);
      if (this.#isClosed()) throw closedError();
      if (this.#current === undefined) {
        throw failure === undefined
          ? this.#notReadyBecause("no usable key version", this.#unusable ?? this.#noUsable())
          : this.#notReadyBecause("wrapping a seed failed", failure);
      }
      if (failure !== undefined) this.#report(failure);
      this.#startPolling();
    });
  }

  /** Refreshes and applies Key Vault's view; never rejects (failures go to onRefreshFailed). */
  poll(): Promise<void> {
    return this.#serial(async () => {
      if (this.#closed) return;
      let state: KeyState;
      try {
        state = await this.#wrapper.refresh();
      } catch (error) {
        // Network, 5xx, 429, 401, 403: not key state, so nothing changes.
        if (!this.#isClosed()) this.#report(toKmsError(error, "key refresh"));
        return;
      }
      if (this.#isClosed()) return;
      const held = this.#current;
      const failure = await this.#apply(state);
      if (failure !== undefined) this.#report(failure);
      // A seed made by this poll was just proven; one kept from before is proven again.
      if (held !== undefined && held === this.#current) await this.#reprove(held);
    }).catch((error: unknown) => {
      this.#report(toKmsError(error, "key refresh"));
    });
  }

  /** Stops the timers and zeroes every seed. */
  close(): void {
    this.#closed = true;
    this.#notReady = "not ready: shutting down";
    clearTimeout(this.#pollTimer);
    clearTimeout(this.#ageTimer);
    this.#pollTimer = undefined;
    this.#ageTimer = undefined;
    this.#current?.destroy();
    this.#current = undefined;
    this.cache.clear();
  }

  /**
   * One unwrap per poll: a permission lost (403) or key_ops changed shows within one poll. An
   * outage says nothing about permissions and changes nothing.
   */
  async #reprove(seed: Seed): Promise<void> {
    let refused: KmsError | undefined;
    try {
      await reproveUnwrap(this.#wrapper, seed);
    } catch (error) {
      const e = toKmsError(error, "unwrap proof");
      if (e.code !== "PERMISSION_DENIED" && e.code !== "FAILED_PRECONDITION") return;
      refused = e;
    }
    if (this.#isClosed() || (refused === undefined && this.#unwrapRefused === undefined)) return;
    const changed = (refused === undefined) !== (this.#unwrapRefused === undefined);
    this.#unwrapRefused = refused;
    if (changed) notify(this.#observer, "onUnwrapRefused", refused);
  }

  // A method, not the field, so checks after an await are not narrowed away by the compiler.
  #isClosed(): boolean {
    return this.#closed;
  }

  /** Runs tasks one at a time: a poll, a start and a seed-age renewal never interleave. */
  #serial(task: () => Promise<void>): Promise<void> {
    const run = this.#queue.then(task);
    this.#queue = run.catch(() => undefined);
    return run;
  }

  /** Applies one successful refresh; returns a wrap failure to report, if any. */
  async #apply(state: KeyState): Promise<KmsError | undefined> {
    const before = this.#current?.wrapped.key;
    const keyIdBefore = this.#current?.keyId;
    const servedBefore = this.#served;
    if (state.limitation !== this.#state?.limitation) {
      notify(this.#observer, "onKeyViewLimited", state.limitation);
    }
    this.#state = state;
    this.#noteRevocations(state);

    // Revocation first and synchronously: no seed under a revoked version is used from now on.
    this.cache.deleteWhere((seed) => this.revocationOf(seed.wrapped.key) !== undefined);
    const held = this.#current;
    if (held !== undefined && this.revocationOf(held.wrapped.key) !== undefined) {
      held.destroy();
      this.#current = undefined;
      this.#unusable = this.#noUsable();
    }

    // Never seal under a version whose data Decrypt would refuse (an inconsistent KeyState).
    const target =
      state.current === undefined || this.revocationOf(state.current) !== undefined
        ? undefined
        : state.current;
    let failure: KmsError | undefined;
    if (target === undefined) {
      // Not revoked but no longer current (a wrapper oddity): keep its data readable.
      if (this.#current !== undefined) this.cache.add(this.#current);
      this.#current = undefined;
      this.#unusable = this.#noUsable();
    } else if (
      !sameRef(this.#current?.wrapped.key, target) ||
      this.#current?.epoch !== state.currentEpoch
    ) {
      // A new version, or the same one whose key_id Key Vault's state changed: a new seed, so
      // that a seed's key_id never changes under it.
      try {
        const seed = await createSeed(this.#wrapper, target, state.currentEpoch);
        if (this.#isClosed()) {
          seed.destroy();
          return undefined;
        }
        this.#install(seed);
      } catch (error) {
        failure = toKmsError(error, "seed creation");
        // Without a usable seed the next poll retries; with one, it stays in use meanwhile.
        if (this.#current === undefined && this.#served) {
          this.#unusable = noUsableSeedError(
            this.#keyName,
            this.#lastRevoked(),
            target.keyVersion,
            failure,
          );
        }
      }
    } else {
      failure = await this.#renewIfOld();
    }

    const after = this.#current?.wrapped.key;
    const keyIdAfter = this.#current?.keyId;
    if (keyIdBefore !== keyIdAfter) {
      if (after === undefined || keyIdAfter === undefined) {
        notify(this.#observer, "onCurrentKey", undefined, "");
      } else {
        if (servedBefore) notify(this.#observer, "onPromote", before, after);
        notify(this.#observer, "onCurrentKey", after, keyIdAfter);
        notify(this.#observer, "onSeedCreated", after, servedBefore ? "promotion" : "start");
      }
    }
    return failure;
  }

  /** Makes `seed` current; the previous one stays readable from the cache unless revoked. */
  #install(seed: Seed): void {
    const previous = this.#current;
    this.#current = seed;
    this.#currentSince = this.#now();
    this.#lastKey = seed.wrapped.key;
    this.#unusable = undefined;
    this.#served = true;
    if (this.#unwrapRefused !== undefined) {
      // A new seed is only installed once Key Vault has unwrapped it.
      this.#unwrapRefused = undefined;
      notify(this.#observer, "onUnwrapRefused", undefined);
    }
    this.#know(seed.wrapped.key);
    if (previous !== undefined) {
      if (this.revocationOf(previous.wrapped.key) === undefined) this.cache.add(previous);
      else previous.destroy();
    }
    this.#armAge();
  }

  /** Replaces the current seed by one under the same key once it is older than the max age. */
  async #renewIfOld(): Promise<KmsError | undefined> {
    const old = this.#current;
    if (old === undefined || this.#maxAgeMs <= 0) return undefined;
    if (this.#now() - this.#currentSince < this.#maxAgeMs) return undefined;
    let seed: Seed;
    try {
      seed = await createSeed(this.#wrapper, old.wrapped.key, old.epoch);
    } catch (error) {
      this.#armAge(Math.min(WRAP_RETRY_MS, this.#maxAgeMs));
      return toKmsError(error, "seed creation");
    }
    if (this.#isClosed() || this.#current !== old) {
      seed.destroy();
      return undefined;
    }
    this.#install(seed);
    notify(this.#observer, "onSeedCreated", seed.wrapped.key, "max-age");
    return undefined;
  }

  #armAge(delay?: number): void {
    clearTimeout(this.#ageTimer);
    this.#ageTimer = undefined;
    if (this.#closed || this.#maxAgeMs <= 0 || this.#current === undefined) return;
    const due = delay ?? this.#currentSince + this.#maxAgeMs - this.#now();
    this.#ageTimer = setTimeout(() => {
      this.#ageTimer = undefined;
      void this.#serial(async () => {
        if (this.#closed) return;
        const failure = await this.#renewIfOld();
        if (failure !== undefined) this.#report(failure);
        // Fired before the seed was due (a clamped delay, a slow clock): wait again.
        else if (this.#ageTimer === undefined) this.#armAge();
      }).catch((error: unknown) => {
        this.#report(toKmsError(error, "seed creation"));
      });
    }, timerDelay(due));
    this.#ageTimer.unref();
  }

  #startPolling(): void {
    if (this.#polling || this.#pollIntervalMs <= 0) return;
    this.#polling = true;
    this.#armPoll();
  }

  #armPoll(): void {
    if (this.#closed) return;
    // Jitter keeps the plugins of many control-plane nodes from polling Key Vault in step.
    const delay = this.#pollIntervalMs * (0.9 + 0.2 * Math.random());
    this.#pollTimer = setTimeout(() => {
      this.#pollTimer = undefined;
      void this.poll().then(() => {
        this.#armPoll();
      });
    }, timerDelay(delay));
    this.#pollTimer.unref();
  }

  #noteRevocations(state: KeyState): void {
    for (const seed of this.cache.seeds()) this.#know(seed.wrapped.key);
    if (state.current !== undefined) this.#know(state.current);
    // Oldest first, so that events come in the order the versions were seen.
    const versions = new Set([...this.#known.rkeys(), ...this.#revoked.keys()]);
    for (const version of versions) {
      const reason = state.revocation(version);
      const before = this.#revoked.get(version);
      if (reason !== undefined && reason !== before) {
        this.#revoked.set(version, reason);
        notify(this.#observer, "onRevoke", version, reason);
      } else if (reason === undefined && before !== undefined) {
        this.#revoked.delete(version);
        notify(this.#observer, "onRestore", version);
      }
    }
  }

  #know(key: KeyReference): void {
    if (this.#known.has(key.keyVersion) || !this.#allowlist.isConfigured(key)) return;
    this.#known.set(key.keyVersion, true);
  }

  /** The latest current version, if it is the one revoked. */
  #lastRevoked(): Revoked | undefined {
    const last = this.#lastKey;
    const reason = last === undefined ? undefined : this.revocationOf(last);
    return last === undefined || reason === undefined
      ? undefined
      : { keyVersion: last.keyVersion, reason };
  }

  #noUsable(): KmsError {
    const last = this.#lastRevoked();
    if (last === undefined && this.#state?.versions.length === 0) {
      return keyNotFoundError(this.#keyName);
    }
    return noUsableVersionError(this.#keyName, last);
  }

  #notReadyBecause(what: string, error: KmsError): KmsError {
    if (!this.#served && !this.#closed)
      this.#notReady = `not ready: ${what} (${error.code}: ${error.message})`;
    return error;
  }

  #report(error: KmsError): void {
    notify(this.#observer, "onRefreshFailed", error);
  }
}
