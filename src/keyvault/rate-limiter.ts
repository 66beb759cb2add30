/**
 * The client-side limit on Key Vault requests, in Key Vault's own terms: a number of requests per
 * 10-second window (learn.microsoft.com/azure/key-vault/general/service-limits counts "maximum
 * transactions allowed in 10 seconds, per vault per region"). It keeps the send times of the last
 * window (a sliding log), so no 10-second span, hence none of Key Vault's windows however they are
 * aligned, carries more than the allowance. A request over it waits for its turn, in order; one
 * whose turn would come after its deadline is refused at once, unsent.
 *
 * The allowance adapts. A 429 without Retry-After (Key Vault sends none: vcsjones/AzureSignTool#219)
 * means the vault's quota for the window is spent, by this plugin, its HA peers or anyone else on
 * the vault: the allowance drops to what this plugin got through in the last window, so nothing
 * more goes out until that window has passed. If nothing of ours got through, it waits 1 s, 2 s,
 * 4 s … (learn's overview-throttling backoff), at most one window. A Retry-After is obeyed as
 * given. Each window without a 429 raises the allowance, up to the ceiling (the key type's default,
 * or the flag), by 1, then 2, 4 …: the first probe past a quota that is still there costs one 429
 * per window, and a quota that has come back is reached again within minutes.
 */
import type { Clock } from "./resilience.js";

/** Key Vault's window (service limits page). */
export const KEY_VAULT_WINDOW_MS = 10_000;
/** Send times are the client's; Key Vault counts arrivals. The margin absorbs jitter between them. */
const ARRIVAL_MARGIN_MS = 250;
/** First wait after a 429 none of our own sends explain; doubled per consecutive one. */
const FIRST_HOLD_MS = 1_000;

export interface Timers {
  set(callback: () => void, ms: number): unknown;
  clear(handle: unknown): void;
}

const realTimers: Timers = {
  set: (callback, ms) => {
    const timer = setTimeout(callback, ms);
    timer.unref();
    return timer;
  },
  clear: (handle) => {
    clearTimeout(handle as NodeJS.Timeout);
  },
};

/** A request's place: sent at `at` (clock ms), or (`queued`) waiting for it: then `wait`. */
export interface Turn {
  readonly at: number;
  readonly queued: boolean;
}

interface WaitingTurn extends Turn {
  at: number;
  readonly deadline: number;
  state: "waiting" | "due" | "refused";
  timer?: unknown;
  go?: () => void;
  refuse?: () => void;
  moved?: (waitMs: number) => void;
}

export class WindowLimiter {
  readonly #clock: Clock;
  readonly #timers: Timers;
  readonly #windowMs: number;
  #ceiling: number;
  #allowance: number;
  /** Send times, ascending; entries before `#head` have left the window. */
  #sent: number[] = [];
  #head = 0;
  /** Turns not yet due, in order. */
  #waiting: WaitingTurn[] = [];
  #holdUntil = -Infinity;
  #lastThrottle = -Infinity;
  #lastRaise = -Infinity;
  #raiseTimer: unknown;
  /** Consecutive 429s (reset by any other answer): the unexplained-429 backoff's exponent. */
  #streak = 0;
  /** The next raise; doubled by each, back to 1 at each 429. */
  #raiseStep = 1;

  constructor(
    allowance: number,
    clock: Clock,
    timers: Timers = realTimers,
    windowMs = KEY_VAULT_WINDOW_MS,
  ) {
    if (!(allowance >= 1)) throw new RangeError("allowance must be at least 1");
    this.#clock = clock;
    this.#timers = timers;
    this.#windowMs = windowMs + ARRIVAL_MARGIN_MS;
    this.#ceiling = this.#allowance = Math.floor(allowance);
  }

  /** Requests per window allowed now. */
  get allowance(): number {
    return this.#allowance;
  }

  /** Has Key Vault throttled within the last window (a refusal is then Key Vault's doing)? */
  get throttledRecently(): boolean {
    return this.#clock.now() - this.#lastThrottle < this.#windowMs;
  }

  /** The key's type is known: its default allowance becomes the ceiling. */
  setCeiling(allowance: number): void {
    const ceiling = Math.max(1, Math.floor(allowance));
    if (ceiling === this.#ceiling) return; // every refresh says it again
    this.#ceiling = ceiling;
    this.#allowance =
      this.#lastThrottle === -Infinity ? this.#ceiling : Math.min(this.#allowance, this.#ceiling);
    this.#reschedule();
  }

  /**
   * A turn for a request that must be sent by `deadline` (clock ms): due now (then counted as sent)
   * or later (then `wait` for it), or undefined, with nothing taken, if it would come too late.
   */
  reserve(deadline: number): Turn | undefined {
    const now = this.#clock.now();
    this.#prune(now);
    const at = this.#nextAt(now, this.#waiting.length);
    if (at > deadline) return undefined;
    if (at <= now) {
      this.#sent.push(now);
      return { at: now, queued: false };
    }
    const turn: WaitingTurn = { at, deadline, queued: true, state: "waiting" };
    this.#waiting.push(turn);
    if (this.#raiseTimer === undefined) this.#armRaise();
    return turn;
  }

  /**
   * Resolves when `turn` is due (it then counts as sent), earlier if the allowance rises; `moved`
   * hears each new wait. Rejects (turn given back) if the turn moves past its deadline or `signal`
   * aborts.
   */
  wait(turn: Turn, signal?: AbortSignal, moved?: (waitMs: number) => void): Promise<void> {
    if (!turn.queued) return Promise.resolve();
    const waiting = turn as WaitingTurn;
    if (waiting.state === "due") return Promise.resolve();
    if (waiting.state === "refused") return Promise.reject(new Error("turn past the deadline"));
    return new Promise<void>((resolve, reject) => {
      const onAbort = (): void => {
        if (this.#drop(waiting)) this.#reschedule();
        reject(new Error("aborted"));
      };
      signal?.addEventListener("abort", onAbort, { once: true });
      const done = (): void => {
        signal?.removeEventListener("abort", onAbort);
      };
      waiting.go = () => {
        done();
        resolve();
      };
      waiting.refuse = () => {
        done();
        reject(new Error("turn past the deadline"));
      };
      if (moved !== undefined) waiting.moved = moved;
      if (signal?.aborted === true) onAbort();
      else this.#arm(waiting);
    });
  }

  /** Key Vault answered with something other than 429. */
  answered(): void {
    this.#streak = 0;
  }

  /**
   * Key Vault answered 429 to the request sent at `turn`. The current service limits page says
   * throttled requests do not count, so it leaves the log.
   */
  throttled(turn: Turn, retryAfterMs?: number): void {
    const now = this.#clock.now();
    const i = this.#sent.lastIndexOf(turn.at);
    if (i >= this.#head) this.#sent.splice(i, 1);
    this.#prune(now);
    this.#lastThrottle = now;
    // 429s of requests sent together are one event: one step of the backoff per hold.
    if (now >= this.#holdUntil) this.#streak++;
    if (retryAfterMs !== undefined) {
      // Obeyed up to one window: a longer one holds this request's retry, not the whole plugin.
      this.#holdUntil = Math.max(this.#holdUntil, now + Math.min(retryAfterMs, this.#windowMs));
    } else {
      const accepted = this.#sent.length - this.#head;
      this.#allowance = Math.max(1, Math.min(this.#allowance, accepted));
      this.#raiseStep = 1;
      if (accepted === 0) {
        const step = Math.min(Math.max(0, this.#streak - 1), 16);
        const hold = Math.min(this.#windowMs, FIRST_HOLD_MS * 2 ** step);
        this.#holdUntil = Math.max(this.#holdUntil, now + hold);
      }
    }
    this.#reschedule();
  }

  /** A turn that was due, or sent at once, but whose request was not sent after all. */
  release(turn: Turn): void {
    const i = this.#sent.lastIndexOf(turn.at);
    if (i >= this.#head) this.#sent.splice(i, 1);
    this.#reschedule();
  }

  /**
   * When a request may go that follows the sends in the window and the first `ahead` waiting
   * turns: at most `allowance` in any window, never before one ahead of it, nor during a hold.
   */
  #nextAt(now: number, ahead: number): number {
    const sent = this.#sent.length - this.#head;
    const count = sent + ahead;
    const entry = (k: number): number =>
      k < sent ? (this.#sent[this.#head + k] ?? now) : (this.#waiting[k - sent]?.at ?? now);
    let at = Math.max(now, this.#holdUntil);
    if (count > 0) at = Math.max(at, entry(count - 1));
    if (count >= this.#allowance)
      at = Math.max(at, entry(count - this.#allowance) + this.#windowMs);
    return at;
  }

  /** The allowance or a hold changed: every waiting turn gets its new place, in order. */
  #reschedule(): void {
    const now = this.#clock.now();
    this.#prune(now);
    for (let i = 0; i < this.#waiting.length;) {
      const turn = this.#waiting[i];
      if (turn === undefined) break;
      const at = this.#nextAt(now, i);
      if (at > turn.deadline) {
        this.#waiting.splice(i, 1);
        this.#timers.clear(turn.timer);
        turn.state = "refused";
        turn.refuse?.();
        continue;
      }
      if (at !== turn.at) {
        turn.at = at;
        if (turn.go !== undefined) this.#arm(turn);
        turn.moved?.(at - now);
      }
      i++;
    }
    this.#armRaise();
  }

  #arm(turn: WaitingTurn): void {
    this.#timers.clear(turn.timer);
    turn.timer = this.#timers.set(
      () => {
        this.#due(turn);
      },
      Math.max(0, turn.at - this.#clock.now()),
    );
  }

  #due(turn: WaitingTurn): void {
    if (!this.#drop(turn)) return;
    const now = this.#clock.now();
    turn.at = now; // what throttled() will look for
    turn.state = "due";
    // Sends stay ascending: a turn is never due before one ahead of it.
    let i = this.#sent.length;
    while (i > this.#head && (this.#sent[i - 1] ?? 0) > now) i--;
    this.#sent.splice(i, 0, now);
    turn.go?.();
  }

  /** Takes `turn` out of the queue; false if it was not there. Later turns may move up. */
  #drop(turn: WaitingTurn): boolean {
    const i = this.#waiting.indexOf(turn);
    if (i < 0) return false;
    this.#waiting.splice(i, 1);
    this.#timers.clear(turn.timer);
    return true;
  }

  /** While turns wait below the ceiling, a quiet window raises the allowance and moves them up. */
  #armRaise(): void {
    this.#timers.clear(this.#raiseTimer);
    this.#raiseTimer = undefined;
    if (this.#allowance >= this.#ceiling || this.#waiting.length === 0) return;
    const at = Math.max(this.#lastThrottle, this.#lastRaise) + this.#windowMs;
    this.#raiseTimer = this.#timers.set(
      () => {
        this.#raiseTimer = undefined;
        this.#raise();
      },
      Math.max(0, at - this.#clock.now()),
    );
  }

  #raise(): void {
    const now = this.#clock.now();
    if (this.#allowance >= this.#ceiling) return;
    if (Math.min(now - this.#lastThrottle, now - this.#lastRaise) < this.#windowMs) {
      this.#armRaise();
      return;
    }
    this.#step(now);
    this.#prune(now);
    this.#reschedule();
  }

  #step(now: number): void {
    this.#allowance = Math.min(this.#ceiling, this.#allowance + this.#raiseStep);
    this.#raiseStep *= 2;
    this.#lastRaise = now;
  }

  #prune(now: number): void {
    const from = now - this.#windowMs;
    while (this.#head < this.#sent.length && (this.#sent[this.#head] ?? now) <= from) this.#head++;
    // Compact once the spent prefix dominates: the log stays bounded by one window's sends.
    if (this.#head > 64 && this.#head * 2 > this.#sent.length) {
      this.#sent = this.#sent.slice(this.#head);
      this.#head = 0;
    }
    if (this.#allowance < this.#ceiling && this.#waiting.length === 0) {
      // Nobody waits, so no timer raises it: raise on the next use instead.
      const quiet = Math.min(now - this.#lastThrottle, now - this.#lastRaise);
      // An idle plugin catches up every quiet window at once.
      for (
        let w = Math.floor(quiet / this.#windowMs);
        w > 0 && this.#allowance < this.#ceiling;
        w--
      ) {
        this.#step(now);
      }
    }
  }
}
