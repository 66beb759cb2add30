import { WindowLimiter, type Timers, type Turn } from "../../../src/keyvault/rate-limiter.js";
import { defaultAllowance, UNKNOWN_KEY_ALLOWANCE } from "../../../src/keyvault/service-limits.js";

/** A clock and timers that move only when the test says. */
class FakeTime implements Timers {
  t = 0;
  private timers = new Map<number, { at: number; run: () => void }>();
  private nextId = 1;
  now(): number {
    return this.t;
  }
  set(run: () => void, ms: number): unknown {
    const id = this.nextId++;
    this.timers.set(id, { at: this.t + ms, run });
    return id;
  }
  clear(handle: unknown): void {
    this.timers.delete(handle as number);
  }
  /** Moves to `t`, running every timer due on the way, in time order. */
  async advance(t: number): Promise<void> {
    for (;;) {
      const due = [...this.timers.entries()]
        .filter(([, x]) => x.at <= t)
        .sort((a, b) => a[1].at - b[1].at)[0];
      if (due === undefined) break;
      this.timers.delete(due[0]);
      this.t = Math.max(this.t, due[1].at);
      due[1].run();
      await Promise.resolve();
    }
    this.t = t;
    await new Promise((r) => setImmediate(r));
  }
}

// The limiter's window is Key Vault's 10 s plus a 250 ms arrival margin.
const W = 10_250;

function limiter(allowance: number) {
  const time = new FakeTime();
  return { time, l: new WindowLimiter(allowance, time, time) };
}

/** Reserves `n` turns now; their waits (undefined: refused). */
function waits(l: WindowLimiter, time: FakeTime, n: number, deadline = Infinity) {
  return Array.from({ length: n }, () => {
    const turn = l.reserve(deadline);
    return turn === undefined ? undefined : turn.at - time.t;
  });
}

describe("WindowLimiter", () => {
  it("lets the allowance through at once, then gives each next request the turn one window after the one it follows", () => {
    const { time, l } = limiter(3);
    expect(waits(l, time, 3)).toEqual([0, 0, 0]);
    time.t = 100;
    expect(waits(l, time, 4)).toEqual([W - 100, W - 100, W - 100, 2 * W - 100]);
    // Refused (nothing taken) when the turn would come after the deadline.
    expect(l.reserve(time.t + 1_000)).toBeUndefined();
  });

  it("never puts more than the allowance in any 10 s span, whatever the arrival pattern", async () => {
    const { time, l } = limiter(5);
    const sends: number[] = [];
    const pending: Promise<void>[] = [];
    for (let step = 0; step < 300; step++) {
      await time.advance(step * 137);
      const turn = l.reserve(Infinity)!;
      pending.push(
        l.wait(turn).then(() => {
          sends.push(time.t);
        }),
      );
    }
    await time.advance(1_000_000);
    await Promise.all(pending);
    expect(sends).toHaveLength(300);
    for (let i = 0; i + 5 < sends.length; i++) {
      expect((sends[i + 5] ?? 0) - (sends[i] ?? 0)).toBeGreaterThanOrEqual(10_000);
    }
  });

  it("a queued turn whose time passed before its wait began is still counted when it goes", async () => {
    const { time, l } = limiter(1);
    l.reserve(Infinity);
    const late = l.reserve(Infinity)!;
    expect(late.queued).toBe(true);
    time.t = late.at + 5; // the clock moved on before the caller got to wait
    const going = l.wait(late);
    await time.advance(time.t);
    await going;
    // It is in the log now: the next request waits a window behind it.
    expect(l.reserve(Infinity)!.at).toBe(late.at + W);
  });

  it("gives an abandoned turn back: the turns behind it move up", async () => {
    const { time, l } = limiter(1);
    l.reserve(Infinity);
    const second = l.reserve(Infinity)!;
    const third = l.reserve(Infinity)!;
    expect([second.at, third.at]).toEqual([W, 2 * W]);
    const controller = new AbortController();
    const abandoned = l.wait(second, controller.signal);
    const moved: number[] = [];
    const kept = l.wait(third, undefined, (ms) => moved.push(ms));
    controller.abort();
    await expect(abandoned).rejects.toThrow();
    expect(moved).toEqual([W]);
    await time.advance(W);
    await kept;
  });

  it("after a 429 allows what got through in the window, and holds until that window has passed", () => {
    const { time, l } = limiter(100);
    const turns = Array.from({ length: 50 }, () => l.reserve(Infinity)!);
    time.t = 50;
    // Key Vault let 20 through and refused 30: each refusal leaves the log.
    for (const turn of turns.slice(20)) l.throttled(turn);
    expect(l.allowance).toBe(20);
    expect(l.throttledRecently).toBe(true);
    const next = waits(l, time, 30);
    expect(next.slice(0, 20)).toEqual(Array.from({ length: 20 }, () => W - 50));
    expect(next.slice(20)).toEqual(Array.from({ length: 10 }, () => 2 * W - 50));
  });

  it("a waiting turn that a lower allowance pushes past its deadline is refused at once", async () => {
    const { time, l } = limiter(4);
    const sent = Array.from({ length: 4 }, () => l.reserve(Infinity)!);
    const queued = Array.from({ length: 4 }, () => l.reserve(W + 1_000)!);
    expect(queued.map((t) => t.at)).toEqual([W, W, W, W]);
    const outcomes = queued.map((t) =>
      l.wait(t).then(
        () => "sent",
        () => "refused",
      ),
    );
    // Key Vault refused two of the four: two per window, so two of the queued are now too late.
    l.throttled(sent[3]!);
    l.throttled(sent[2]!);
    expect(l.allowance).toBe(2);
    expect(l.reserve(W + 1_000)).toBeUndefined();
    await time.advance(W);
    expect(await Promise.all(outcomes)).toEqual(["sent", "sent", "refused", "refused"]);
  });

  it("a 429 none of our sends explain holds 1 s, 2 s, 4 s … up to one window; any other answer resets that", async () => {
    const { time, l } = limiter(100);
    const holds: number[] = [];
    let turn: Turn = l.reserve(Infinity)!;
    const throttleNext = async (): Promise<void> => {
      l.throttled(turn);
      turn = l.reserve(Infinity)!;
      holds.push(turn.at - time.t);
      const due = l.wait(turn);
      await time.advance(turn.at);
      await due;
    };
    for (let i = 0; i < 6; i++) await throttleNext();
    expect(holds).toEqual([1_000, 2_000, 4_000, 8_000, W, W]);
    l.answered();
    holds.length = 0;
    await throttleNext();
    expect(holds).toEqual([1_000]);
  });

  it("obeys a Retry-After as given, without lowering the allowance", () => {
    const { l } = limiter(10);
    const turn = l.reserve(Infinity)!;
    l.throttled(turn, 2_000);
    expect(l.allowance).toBe(10);
    expect(l.reserve(Infinity)!.at).toBe(2_000);
  });

  it("raises the allowance by 1, 2, 4 … after each window without a 429, moving waiting turns up", async () => {
    const { time, l } = limiter(100);
    const turns = Array.from({ length: 9 }, () => l.reserve(Infinity)!);
    l.throttled(turns[8]!);
    expect(l.allowance).toBe(8);
    // 12 waiting: under 8 per window, the last four would go two windows later.
    const queued = Array.from({ length: 12 }, () => l.reserve(Infinity)!);
    expect(queued[11]!.at).toBe(2 * W);
    const done = queued.map((t) => l.wait(t));
    await time.advance(W);
    expect(l.allowance).toBe(9);
    // The raise at W let one more of them go in this window; the rest still wait their turn.
    expect(queued.filter((t) => t.at <= W)).toHaveLength(9);
    await time.advance(2 * W);
    expect(l.allowance).toBe(11);
    await time.advance(3 * W);
    await Promise.all(done);
  });

  it("takes the key type's default as its ceiling: at once before any 429", () => {
    const { l } = limiter(UNKNOWN_KEY_ALLOWANCE);
    l.setCeiling(1333);
    expect(l.allowance).toBe(1333);
    l.setCeiling(83);
    expect(l.allowance).toBe(83);
  });
});

describe("default allowance by key type (a third of the service limit per 10 s)", () => {
  it.each([
    [{ managedHsm: false, keyType: "RSA", rsaBits: 2048 }, 1333],
    [{ managedHsm: false, keyType: "RSA-HSM", rsaBits: 2048 }, 666],
    [{ managedHsm: false, keyType: "RSA", rsaBits: 3072 }, 333],
    [{ managedHsm: false, keyType: "RSA-HSM", rsaBits: 3072 }, 166],
    [{ managedHsm: false, keyType: "RSA", rsaBits: 4096 }, 166],
    [{ managedHsm: false, keyType: "RSA-HSM", rsaBits: 4096 }, 83],
    [{ managedHsm: true, keyType: "RSA-HSM", rsaBits: 2048 }, 3666],
    [{ managedHsm: true, keyType: "RSA-HSM", rsaBits: 4096 }, 533],
    [{ managedHsm: true, keyType: "oct-HSM" }, 6000],
  ])("%j: %i", (kind, allowance) => {
    expect(defaultAllowance(kind)).toBe(allowance);
  });

  it("before the key is read, the smallest vault figure", () => {
    expect(UNKNOWN_KEY_ALLOWANCE).toBe(83);
  });
});
