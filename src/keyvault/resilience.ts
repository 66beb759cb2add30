/**
 * How the plugin talks to Key Vault under faults: one "perCall" pipeline policy shared by every
 * Key Vault client (KeyClient, CryptographyClient, legacy decrypt) that gates each HTTP try through
 * a circuit breaker and a per-window rate limiter (rate-limiter.ts), bounds it with a per-try timeout, and retries with
 * deadline-aware backoff. The SDK's own retry policy is switched off (maxRetries 0).
 *
 * Why a pipeline policy and not a `retrying(op)` wrapper: it sees every HTTP try, including the
 * ones the SDK makes on its own (a CryptographyClient's GET, each page of a list), and the response
 * itself (status, Retry-After), so the limiter and the breaker count real requests, and a retried
 * list page does not restart the listing. It sits before the Key Vault auth policy, so a request
 * the breaker or the limiter refuses never asks the token endpoint either.
 */
import type { PipelinePolicy, PipelineRequest, PipelineResponse } from "@azure/core-rest-pipeline";
import { KmsError } from "../kms/errors.js";
import { classifyFailure, classifyStatus } from "./failures.js";
import { WindowLimiter, KEY_VAULT_WINDOW_MS, type Turn } from "./rate-limiter.js";
import { defaultAllowance, UNKNOWN_KEY_ALLOWANCE, type KeyKind } from "./service-limits.js";
import type { AdditionalPolicyConfig } from "./proxy-mode.js";

/** A clock and timers, injectable for tests. */
export interface Clock {
  now(): number;
}

export const systemClock: Clock = { now: () => performance.now() };

// ---------------------------------------------------------------------------------------------
// Deadlines

/** Deadlines (performance.now() ms) of signals made by `deadlineSignal`. */
const deadlines = new WeakMap<AbortSignal, number>();

/**
 * A signal that aborts after `ms` (or with `parent`), whose deadline the retry policy can read:
 * it then never starts a backoff it cannot finish. The reason is an UNAVAILABLE KmsError.
 */
export function deadlineSignal(ms: number, what: string, parent?: AbortSignal): AbortSignal {
  const controller = new AbortController();
  const timer = setTimeout(() => {
    controller.abort(
      new KmsError("UNAVAILABLE", `${what}: Key Vault did not answer within ${ms} ms`),
    );
  }, ms);
  timer.unref();
  controller.signal.addEventListener(
    "abort",
    () => {
      clearTimeout(timer);
    },
    { once: true },
  );
  if (parent !== undefined) {
    if (parent.aborted) controller.abort(parent.reason);
    else
      parent.addEventListener(
        "abort",
        () => {
          controller.abort(parent.reason);
        },
        { once: true },
      );
  }
  deadlines.set(controller.signal, performance.now() + ms);
  return controller.signal;
}

export function knownDeadline(signal: AbortSignal | undefined): number | undefined {
  return signal === undefined ? undefined : deadlines.get(signal);
}

/**
 * Why a request waits before it is sent: Key Vault's 429 ("throttled"), the client-side limit
 * alone ("rate-limit"), or an open circuit's next probe ("circuit").
 */
export type QueueCause = "throttled" | "rate-limit" | "circuit";

/** Told, for a request made with this signal, how long it waits before it is sent, and why. */
export type QueuedListener = (waitMs: number, cause: QueueCause) => void;
const queuedListeners = new WeakMap<AbortSignal, QueuedListener>();

/**
 * Asks to be told when a request made with `signal` has to wait for the rate limiter (Key Vault
 * throttling), and for how long: a caller sharing that request can then give up at once when the
 * wait outlives its own deadline, instead of at the deadline.
 */
export function whenQueued(signal: AbortSignal, listener: QueuedListener): void {
  queuedListeners.set(signal, listener);
}

// ---------------------------------------------------------------------------------------------
// Backoff

/** "Full jitter": uniform in [0, min(cap, base·2^attempt)], so retrying clients spread out. */
export function backoffDelay(
  attempt: number,
  baseMs: number,
  capMs: number,
  random: () => number = Math.random,
): number {
  return random() * Math.min(capMs, baseMs * 2 ** attempt);
}

interface HeaderBag {
  get(name: string): string | undefined;
}

/** Retry-After (seconds or HTTP date), retry-after-ms or x-ms-retry-after-ms, in ms. */
export function retryAfterMs(
  headers: HeaderBag | undefined,
  nowEpochMs = Date.now(),
): number | undefined {
  if (headers === undefined) return undefined;
  for (const name of ["retry-after-ms", "x-ms-retry-after-ms"]) {
    const raw = headers.get(name);
    if (raw !== undefined && /^\d+(\.\d+)?$/.test(raw.trim())) return Number(raw.trim());
  }
  const raw = headers.get("retry-after")?.trim();
  if (raw === undefined || raw === "") return undefined;
  if (/^\d+(\.\d+)?$/.test(raw)) return Number(raw) * 1000;
  const date = Date.parse(raw);
  return Number.isFinite(date) ? Math.max(0, date - nowEpochMs) : undefined;
}

// ---------------------------------------------------------------------------------------------
// Circuit breaker

export const CircuitState = { closed: 0, halfOpen: 1, open: 2 } as const;
export type CircuitStateValue = (typeof CircuitState)[keyof typeof CircuitState];

export interface BreakerSettings {
  /** Consecutive failed requests (each after its retries) of the outage kind that open it. */
  readonly threshold: number;
  /** Failures further apart than this do not add up. */
  readonly windowMs: number;
  /** First cool-down; doubled after each failed probe, up to maxCoolDownMs. */
  readonly coolDownMs: number;
  readonly maxCoolDownMs: number;
}

export type Admission = "pass" | "probe" | "reject";

export class CircuitBreaker {
  readonly #s: BreakerSettings;
  readonly #clock: Clock;
  readonly #onState: (state: CircuitStateValue) => void;
  #state: CircuitStateValue = CircuitState.closed;
  #failures = 0;
  #lastFailureAt = -Infinity;
  #openedAt = 0;
  #coolDownMs: number;
  #probing = false;
  readonly #changes = new Set<() => void>();

  constructor(
    settings: BreakerSettings,
    clock: Clock = systemClock,
    onState: (state: CircuitStateValue) => void = () => undefined,
  ) {
    this.#s = settings;
    this.#clock = clock;
    this.#onState = onState;
    this.#coolDownMs = settings.coolDownMs;
  }

  get state(): CircuitStateValue {
    return this.#state;
  }

  /** ms until an open circuit lets a probe through (0 when it would now). */
  get retryInMs(): number {
    if (this.#state !== CircuitState.open) return 0;
    return Math.max(0, this.#openedAt + this.#coolDownMs - this.#clock.now());
  }

  /** May a try be sent? "probe": yes, as the one try that decides whether to close. */
  admit(): Admission {
    if (this.#state === CircuitState.closed) return "pass";
    if (this.#state === CircuitState.open && this.retryInMs === 0) {
      this.#set(CircuitState.halfOpen);
      this.#probing = true;
      return "probe";
    }
    return "reject";
  }

  /** A try got an answer that proves Key Vault is there (2xx, and also 4xx such as 403/404). */
  success(): void {
    this.#failures = 0;
    this.#probing = false;
    this.#coolDownMs = this.#s.coolDownMs;
    if (this.#state !== CircuitState.closed) this.#set(CircuitState.closed);
  }

  /** A try failed the way an outage does (network, timeout, 5xx, 429). */
  failure(): void {
    const now = this.#clock.now();
    if (this.#state === CircuitState.halfOpen) {
      this.#probing = false;
      this.#coolDownMs = Math.min(this.#s.maxCoolDownMs, this.#coolDownMs * 2);
      this.#open(now);
      return;
    }
    if (this.#state === CircuitState.open) return;
    if (now - this.#lastFailureAt > this.#s.windowMs) this.#failures = 0;
    this.#failures++;
    this.#lastFailureAt = now;
    if (this.#failures >= this.#s.threshold) this.#open(now);
  }

  /** An admitted probe was never sent (refused by the limiter): let the next request probe. */
  release(): void {
    if (this.#state === CircuitState.halfOpen && this.#probing) {
      this.#probing = false;
      this.#openedAt = this.#clock.now() - this.#coolDownMs;
      this.#set(CircuitState.open);
    }
  }

  #open(now: number): void {
    this.#openedAt = now;
    this.#failures = 0;
    this.#set(CircuitState.open);
  }

  /** Resolves at the next change of state (a probe admitted, a verdict). */
  changed(): Promise<void> {
    return new Promise((resolve) => this.#changes.add(resolve));
  }

  #set(state: CircuitStateValue): void {
    this.#state = state;
    const changes = [...this.#changes];
    this.#changes.clear();
    for (const resolve of changes) resolve();
    try {
      this.#onState(state);
    } catch {
      // Reporting must never change what the breaker does.
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Classifying a try

export interface TryVerdict {
  /** Worth another try (transient). */
  readonly retry: boolean;
  /** Counts toward opening the circuit. */
  readonly outage: boolean;
  /** Key Vault's quota is spent (429): it is there, so not an outage; the limiter slows down. */
  readonly throttled?: boolean;
  /** The server said when to come back. */
  readonly retryAfterMs?: number;
}

/** A Key Vault answer's verdict (failures.ts), with the Retry-After of a 429 or 503. */
export function verdictForStatus(status: number, headers?: HeaderBag): TryVerdict {
  if (status < 400) return { retry: false, outage: false };
  const { retry, outage, throttled } = classifyStatus(status);
  const after = status === 429 || status === 503 ? retryAfterMs(headers) : undefined;
  return {
    retry,
    outage,
    ...(throttled ? { throttled } : {}),
    ...(after === undefined ? {} : { retryAfterMs: after }),
  };
}

/** A try that threw (no answer, a token endpoint outage, an identity refusal): failures.ts. */
export function verdictForError(error: unknown): TryVerdict {
  const failure = classifyFailure(error);
  if (failure.status !== undefined) {
    const headers = (error as { response?: { headers?: HeaderBag } }).response?.headers;
    return verdictForStatus(failure.status, headers);
  }
  return { retry: failure.retry, outage: failure.outage };
}

// ---------------------------------------------------------------------------------------------
// The policy

export interface ResilienceSettings {
  /** Tries per HTTP request, the first included. */
  readonly maxTries: number;
  readonly backoffBaseMs: number;
  readonly backoffCapMs: number;
  /** A Retry-After longer than this is not waited for (the request fails at once). */
  readonly maxRetryAfterMs: number;
  /** One try may take this long; the request's own deadline may cut it shorter. */
  readonly perTryTimeoutMs: number;
  /** Bound on a request whose signal has no deadline this file knows. */
  readonly defaultDeadlineMs: number;
  /**
   * Requests per second to Key Vault, averaged over its 10-second window; "auto": the share of
   * the key type's service limit (service-limits.ts); 0 disables the limiter.
   */
  readonly rateLimit: number | "auto";
  /** Consecutive outage-kind failed requests that open the circuit; 0 disables the breaker. */
  readonly breakerThreshold: number;
  readonly breakerWindowMs: number;
  readonly breakerCoolDownMs: number;
  readonly breakerMaxCoolDownMs: number;
}

export const defaultResilience: ResilienceSettings = {
  maxTries: 4,
  backoffBaseMs: 200,
  backoffCapMs: 4_000,
  maxRetryAfterMs: 30_000,
  perTryTimeoutMs: 5_000,
  defaultDeadlineMs: 30_000,
  rateLimit: "auto",
  breakerThreshold: 5,
  breakerWindowMs: 10_000,
  breakerCoolDownMs: 500,
  breakerMaxCoolDownMs: 5_000,
};

/** What the policy reports (the metrics layer implements it; must not throw). */
export interface ResilienceObserver {
  onRateLimited?(outcome: "delayed" | "rejected"): void;
  /** Requests per 10 s the limiter allows now (lowered by a 429, raised after quiet windows). */
  onAllowance?(perWindow: number): void;
  onCircuitState?(state: CircuitStateValue): void;
}

export interface ResilienceDeps {
  readonly clock?: Clock;
  readonly random?: () => number;
  /** Waits `ms`, rejecting when `signal` aborts. */
  readonly sleep?: (ms: number, signal: AbortSignal | undefined) => Promise<void>;
}

export function abortableSleep(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(new Error("aborted"));
      return;
    }
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(new Error("aborted"));
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}

const policyName = "keyvaultKmsResilience";

export interface KeyVaultResilience {
  readonly policy: AdditionalPolicyConfig;
  readonly breaker: CircuitBreaker | undefined;
  /** The configured key's type is known: with rateLimit "auto", its default becomes the ceiling. */
  keyKnown(kind: KeyKind): void;
}

export function createResilience(
  settings: ResilienceSettings = defaultResilience,
  observer: ResilienceObserver = {},
  deps: ResilienceDeps = {},
): KeyVaultResilience {
  const clock = deps.clock ?? systemClock;
  const random = deps.random ?? Math.random;
  const sleep = deps.sleep ?? abortableSleep;
  const rate = settings.rateLimit;
  const auto = rate === "auto";
  const perWindow = auto ? UNKNOWN_KEY_ALLOWANCE : rate * (KEY_VAULT_WINDOW_MS / 1000);
  const limiter = perWindow >= 1 ? new WindowLimiter(perWindow, clock) : undefined;
  const breaker =
    settings.breakerThreshold > 0
      ? new CircuitBreaker(
          {
            threshold: settings.breakerThreshold,
            windowMs: settings.breakerWindowMs,
            coolDownMs: settings.breakerCoolDownMs,
            maxCoolDownMs: settings.breakerMaxCoolDownMs,
          },
          clock,
          (state) => observer.onCircuitState?.(state),
        )
      : undefined;
  const report = (outcome: "delayed" | "rejected"): void => {
    try {
      observer.onRateLimited?.(outcome);
    } catch {
      // Reporting must never change what the policy does.
    }
  };
  let reportedAllowance: number | undefined;
  const reportAllowance = (): void => {
    if (limiter === undefined || limiter.allowance === reportedAllowance) return;
    reportedAllowance = limiter.allowance;
    try {
      observer.onAllowance?.(limiter.allowance);
    } catch {
      // Reporting must never change what the policy does.
    }
  };
  reportAllowance();

  /**
   * Returns once the circuit would admit a try: closed, or open with its probe due. While it is
   * open, waits for the probe time; while a probe is out, for its verdict; either only while the
   * deadline allows. Only a deadline that ends before the next probe fails at once, unsent.
   */
  async function untilAdmissible(outer: AbortSignal | undefined, deadline: number): Promise<void> {
    if (breaker === undefined) return;
    for (;;) {
      const open = breaker.state === CircuitState.open;
      if (breaker.state === CircuitState.closed) return;
      const wait = breaker.retryInMs;
      if (open && wait === 0) return;
      const remaining = deadline - clock.now();
      if (remaining <= 0 || (open && wait >= remaining)) throw circuitOpen(wait);
      if (open && outer !== undefined) tellQueued(outer, wait, "circuit");
      const local = new AbortController();
      const signal = outer === undefined ? local.signal : AbortSignal.any([outer, local.signal]);
      try {
        await Promise.race([breaker.changed(), sleep(open ? wait : remaining, signal)]);
      } catch {
        if (outer?.aborted) throw abortedError();
        throw circuitOpen(breaker.retryInMs);
      } finally {
        local.abort();
      }
    }
  }

  function tellQueued(signal: AbortSignal, ms: number, cause: QueueCause): void {
    try {
      queuedListeners.get(signal)?.(ms, cause);
    } catch {
      // A listener must never change what the policy does.
    }
  }

  /** Waits for the limiter's turn while the deadline allows; otherwise fails without sending. */
  async function takeTurn(
    signal: AbortSignal | undefined,
    deadline: number,
  ): Promise<Turn | undefined> {
    if (limiter === undefined) return undefined;
    const turn = limiter.reserve(deadline);
    reportAllowance(); // a quiet window may have raised it
    if (turn === undefined) {
      report("rejected");
      throw rateLimited(limiter.throttledRecently);
    }
    if (!turn.queued) return turn;
    const wait = Math.max(0, turn.at - clock.now());
    report("delayed");
    const tell = (ms: number): void => {
      if (signal !== undefined) {
        tellQueued(signal, ms, limiter.throttledRecently ? "throttled" : "rate-limit");
      }
    };
    tell(wait);
    try {
      await limiter.wait(turn, signal, tell);
    } catch {
      throw rateLimited(limiter.throttledRecently);
    }
    return turn;
  }

  async function send(
    request: PipelineRequest,
    next: (r: PipelineRequest) => Promise<PipelineResponse>,
  ) {
    // Always a DOM AbortSignal here: the wrapper passes real ones (AbortSignalLike is its subset).
    const outer = request.abortSignal as AbortSignal | undefined;
    const started = clock.now();
    const deadline = knownDeadline(outer) ?? started + settings.defaultDeadlineMs;
    for (let attempt = 0; ; attempt++) {
      if (outer?.aborted) throw abortedError();
      // An open circuit: wait for its next probe, or its verdict, while the deadline allows…
      await untilAdmissible(outer, deadline);
      const turn = await takeTurn(outer, deadline);
      // …and admit only once the limiter's turn has come: a probe never waits in its queue.
      const admission = breaker?.admit() ?? "pass";
      if (admission === "reject") {
        // Another request became the probe meanwhile: wait for its verdict (not a new try).
        if (turn !== undefined) limiter?.release(turn);
        attempt--;
        continue;
      }
      const outcome = await oneTry(request, next, outer, deadline);
      if (outcome.answered && outcome.verdict.throttled !== true) limiter?.answered();
      if (outcome.verdict.throttled === true) {
        // Key Vault is there (the circuit may close) but its quota is spent: the limiter learns
        // and holds; the retry, if any, waits there for its turn, or fails now if past the deadline.
        breaker?.success();
        if (turn !== undefined) limiter?.throttled(turn, outcome.verdict.retryAfterMs);
        reportAllowance();
        const after = outcome.verdict.retryAfterMs ?? 0;
        const retry =
          limiter !== undefined &&
          attempt + 1 < settings.maxTries &&
          !outer?.aborted &&
          after <= settings.maxRetryAfterMs;
        if (retry) continue;
      }
      const finish = (failed: boolean): PipelineResponse => {
        // The breaker counts requests, each after its retries, so that one request's retries
        // alone never open it; a failed probe re-opens it at once.
        if (failed) breaker?.failure();
        if (outcome.response === undefined) throw outcome.error;
        return outcome.response;
      };
      if (outer?.aborted && outcome.response === undefined) {
        // The caller gave up: this try says nothing about Key Vault.
        if (admission === "probe") breaker?.release();
        return finish(false);
      }
      const { outage } = outcome.verdict;
      if (!outage && outcome.verdict.throttled !== true) {
        if (outcome.answered) breaker?.success();
        else if (admission === "probe") breaker?.release();
        return finish(false);
      }
      if (admission === "probe" || !outcome.verdict.retry || attempt + 1 >= settings.maxTries) {
        return finish(outage);
      }
      // Without a limiter, a 429 is retried like an outage, after Retry-After or a backoff.
      const retryAfter = outcome.verdict.retryAfterMs;
      if (retryAfter !== undefined && retryAfter > settings.maxRetryAfterMs) return finish(outage);
      const delay =
        retryAfter ?? backoffDelay(attempt, settings.backoffBaseMs, settings.backoffCapMs, random);
      // Never sleep past the deadline: a retry that cannot be sent in time is not started.
      if (clock.now() + delay >= deadline) return finish(outage);
      try {
        await sleep(delay, outer);
      } catch {
        return finish(outage);
      }
    }
  }

  interface TryOutcome {
    readonly response?: PipelineResponse;
    readonly error: Error;
    readonly verdict: TryVerdict;
    /** Key Vault (or the token endpoint) answered: it is there. */
    readonly answered: boolean;
  }

  async function oneTry(
    request: PipelineRequest,
    next: (r: PipelineRequest) => Promise<PipelineResponse>,
    outer: AbortSignal | undefined,
    deadline: number,
  ): Promise<TryOutcome> {
    const controller = new AbortController();
    const onAbort = (): void => {
      controller.abort();
    };
    outer?.addEventListener("abort", onAbort, { once: true });
    const budget = Math.max(1, Math.min(settings.perTryTimeoutMs, deadline - clock.now()));
    const timer = setTimeout(() => {
      controller.abort();
    }, budget);
    request.abortSignal = controller.signal;
    try {
      const response = await next(request);
      return {
        response,
        error: new Error(`Key Vault answered ${response.status}`),
        verdict: verdictForStatus(response.status, response.headers),
        answered: true,
      };
    } catch (error) {
      const verdict = verdictForError(error);
      const e = error as { statusCode?: unknown };
      return {
        error: error instanceof Error ? error : new Error(String(error)),
        verdict,
        answered: typeof e.statusCode === "number" && !verdict.outage,
      };
    } finally {
      clearTimeout(timer);
      outer?.removeEventListener("abort", onAbort);
      if (outer === undefined) delete request.abortSignal;
      else request.abortSignal = outer;
    }
  }

  const policy: PipelinePolicy = { name: policyName, sendRequest: send };
  return {
    policy: { policy, position: "perCall" },
    breaker,
    keyKnown(kind) {
      if (!auto || limiter === undefined) return;
      limiter.setCeiling(defaultAllowance(kind));
      reportAllowance();
    },
  };
}

function abortedError(): Error {
  const error = new Error("The operation was aborted.");
  error.name = "AbortError";
  return error;
}

function rateLimited(throttled: boolean): KmsError {
  return new KmsError(
    "UNAVAILABLE",
    throttled
      ? "Key Vault request not sent: Key Vault is throttling this vault (429) and the request's turn comes after its deadline"
      : "Key Vault request not sent: client-side rate limit (--keyvault-rate-limit) reached before the deadline",
  );
}

function circuitOpen(retryInMs: number): KmsError {
  return new KmsError(
    "UNAVAILABLE",
    `Key Vault circuit open after repeated failures: request not sent; next probe in ${Math.ceil(retryInMs)} ms`,
  );
}
