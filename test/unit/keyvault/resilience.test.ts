import type { PipelineRequest, PipelineResponse } from "@azure/core-rest-pipeline";
import { createHttpHeaders, createPipelineRequest } from "@azure/core-rest-pipeline";
import {
  backoffDelay,
  CircuitBreaker,
  CircuitState,
  createResilience,
  deadlineSignal,
  defaultResilience,
  retryAfterMs,
  verdictForError,
  verdictForStatus,
  type ResilienceSettings,
} from "../../../src/keyvault/resilience.js";
import { SingleFlight } from "../../../src/keyvault/single-flight.js";

class FakeClock {
  t = 0;
  now(): number {
    return this.t;
  }
}

const headers = (h: Record<string, string>) => createHttpHeaders(h);

describe("backoff", () => {
  it("is full jitter: uniform in [0, min(cap, base·2^n)]", () => {
    expect(backoffDelay(0, 200, 4000, () => 1)).toBe(200);
    expect(backoffDelay(3, 200, 4000, () => 1)).toBe(1600);
    expect(backoffDelay(10, 200, 4000, () => 1)).toBe(4000);
    expect(backoffDelay(5, 200, 4000, () => 0)).toBe(0);
    expect(backoffDelay(2, 200, 4000, () => 0.5)).toBe(400);
  });

  it("reads Retry-After in seconds or as a date, and the ms headers", () => {
    expect(retryAfterMs(headers({ "retry-after": "2" }))).toBe(2000);
    expect(retryAfterMs(headers({ "retry-after-ms": "150" }))).toBe(150);
    expect(retryAfterMs(headers({ "x-ms-retry-after-ms": "70" }))).toBe(70);
    const now = Date.parse("2025-01-01T00:00:00Z");
    expect(retryAfterMs(headers({ "retry-after": "Wed, 01 Jan 2025 00:00:03 GMT" }), now)).toBe(
      3000,
    );
    expect(retryAfterMs(headers({}))).toBeUndefined();
    expect(retryAfterMs(headers({ "retry-after": "soon" }))).toBeUndefined();
  });
});

describe("what is retried and what opens the circuit", () => {
  it("429 is throttling: retried, never an outage (Key Vault is there; its quota is spent)", () => {
    expect(verdictForStatus(429)).toEqual({ retry: true, outage: false, throttled: true });
  });

  it.each([
    [503, true, true],
    [500, true, true],
    [502, true, true],
    [408, true, true],
    [501, false, false],
    [505, false, false],
    [400, false, false],
    [401, false, false],
    [403, false, false],
    [404, false, false],
    [200, false, false],
  ])("status %i: retry %s, outage %s", (status, retry, outage) => {
    expect(verdictForStatus(status)).toEqual({ retry, outage });
  });

  it("network errors and timeouts are retried; identity errors are not (the credential retries)", () => {
    expect(verdictForError({ name: "RestError", code: "ECONNRESET" })).toEqual({
      retry: true,
      outage: true,
    });
    expect(verdictForError({ name: "AbortError" })).toEqual({ retry: true, outage: true });
    expect(verdictForError({ name: "AuthenticationError", statusCode: 503 })).toEqual({
      retry: false,
      outage: true,
    });
    expect(verdictForError({ name: "AuthenticationError", statusCode: 400 })).toEqual({
      retry: false,
      outage: false,
    });
    expect(
      verdictForError({
        name: "RestError",
        statusCode: 429,
        response: { headers: headers({ "retry-after": "1" }) },
      }),
    ).toEqual({ retry: true, outage: false, throttled: true, retryAfterMs: 1000 });
  });
});

describe("CircuitBreaker", () => {
  const settings = { threshold: 3, windowMs: 10_000, coolDownMs: 500, maxCoolDownMs: 2_000 };

  it("opens after N consecutive failures, probes once after the cool-down, and closes on success", () => {
    const clock = new FakeClock();
    const states: number[] = [];
    const b = new CircuitBreaker(settings, clock, (s) => states.push(s));
    b.failure();
    b.failure();
    expect(b.admit()).toBe("pass");
    b.failure();
    expect(b.state).toBe(CircuitState.open);
    expect(b.admit()).toBe("reject");
    clock.t = 499;
    expect(b.admit()).toBe("reject");
    clock.t = 500;
    expect(b.admit()).toBe("probe");
    expect(b.admit()).toBe("reject"); // one probe at a time
    b.success();
    expect(b.admit()).toBe("pass");
    expect(states).toEqual([2, 1, 0]);
  });

  it("a failed probe re-opens with a doubled cool-down, capped", () => {
    const clock = new FakeClock();
    const b = new CircuitBreaker(settings, clock);
    for (let i = 0; i < 3; i++) b.failure();
    const waits: number[] = [];
    for (let i = 0; i < 4; i++) {
      waits.push(b.retryInMs);
      clock.t += b.retryInMs;
      expect(b.admit()).toBe("probe");
      b.failure();
    }
    expect(waits).toEqual([500, 1000, 2000, 2000]);
    clock.t += b.retryInMs;
    expect(b.admit()).toBe("probe");
    b.success();
    for (let i = 0; i < 3; i++) b.failure();
    expect(b.retryInMs).toBe(500); // back to the first cool-down
  });

  it("failures further apart than the window do not add up; a success resets the count", () => {
    const clock = new FakeClock();
    const b = new CircuitBreaker(settings, clock);
    b.failure();
    b.failure();
    clock.t = 20_000;
    b.failure();
    b.failure();
    expect(b.state).toBe(CircuitState.closed);
    b.success();
    b.failure();
    b.failure();
    expect(b.state).toBe(CircuitState.closed);
  });

  it("a released probe lets the next request probe", () => {
    const clock = new FakeClock();
    const b = new CircuitBreaker(settings, clock);
    for (let i = 0; i < 3; i++) b.failure();
    clock.t = 500;
    expect(b.admit()).toBe("probe");
    b.release();
    expect(b.admit()).toBe("probe");
  });
});

describe("the retry policy", () => {
  type Answer = number | Error;

  /** Runs the policy over a fake transport answering `answers` in order. */
  function harness(answers: Answer[], overrides: Partial<ResilienceSettings> = {}) {
    const clock = new FakeClock();
    clock.t = performance.now(); // the clock deadlineSignal reads
    const sleeps: number[] = [];
    const sent: number[] = [];
    const { policy, breaker } = createResilience(
      { ...defaultResilience, rateLimit: 0, ...overrides },
      {},
      {
        clock,
        random: () => 1,
        sleep: (ms) => {
          sleeps.push(ms);
          clock.t += ms;
          return Promise.resolve();
        },
      },
    );
    const next = (request: PipelineRequest): Promise<PipelineResponse> => {
      sent.push(clock.t);
      const answer = answers.shift() ?? 200;
      if (answer instanceof Error) return Promise.reject(answer);
      const h: Record<string, string> = {};
      return Promise.resolve({ request, status: answer, headers: headers(h) });
    };
    const send = (signal?: AbortSignal) =>
      policy.policy.sendRequest(
        createPipelineRequest({
          url: "https://v.vault.azure.net/keys/k/v/unwrapkey",
          ...(signal === undefined ? {} : { abortSignal: signal }),
        }),
        next,
      );
    return { send, sleeps, sent, clock, breaker };
  }

  const restError = (status: number, h: Record<string, string> = {}) =>
    Object.assign(new Error(`status ${status}`), {
      name: "RestError",
      statusCode: status,
      response: { headers: headers(h) },
    });

  it("retries a 429 without Retry-After with exponential backoff, and succeeds", async () => {
    const t = harness([restError(429), restError(429)]);
    expect((await t.send()).status).toBe(200);
    expect(t.sent).toHaveLength(3);
    expect(t.sleeps).toEqual([200, 400]);
  });

  it("honours Retry-After", async () => {
    const t = harness([restError(429, { "retry-after": "2" })]);
    expect((await t.send()).status).toBe(200);
    expect(t.sleeps).toEqual([2000]);
  });

  it("gives up after maxTries and surfaces the last error", async () => {
    const t = harness([restError(503), restError(503), restError(503), restError(503)]);
    await expect(t.send()).rejects.toMatchObject({ statusCode: 503 });
    expect(t.sent).toHaveLength(4);
  });

  it("never starts a backoff that would end past the request's deadline", async () => {
    const t = harness([restError(503), restError(429, { "retry-after": "5" })]);
    const signal = deadlineSignal(1_000, "test");
    await expect(t.send(signal)).rejects.toMatchObject({ statusCode: 429 });
    expect(t.sleeps).toEqual([200]); // the 5 s Retry-After would end past the 1 s deadline
    expect(t.sent).toHaveLength(2);
  });

  it("does not retry a 400, 403 or 404, and those never open the circuit", async () => {
    const t = harness([restError(403), restError(404), restError(400), restError(403)], {
      breakerThreshold: 2,
    });
    for (let i = 0; i < 4; i++) await expect(t.send()).rejects.toBeDefined();
    expect(t.sent).toHaveLength(4);
    expect(t.breaker?.state).toBe(CircuitState.closed);
  });

  it("an open circuit fails fast with UNAVAILABLE without sending when the deadline ends before the next probe", async () => {
    const t = harness(
      Array.from({ length: 8 }, () => restError(503)),
      {
        breakerThreshold: 2,
        maxTries: 1,
      },
    );
    await expect(t.send()).rejects.toMatchObject({ statusCode: 503 });
    await expect(t.send()).rejects.toMatchObject({ statusCode: 503 });
    const before = t.sent.length;
    await expect(t.send(deadlineSignal(100, "test"))).rejects.toMatchObject({
      code: "UNAVAILABLE",
      message: /circuit open/,
    });
    expect(t.sent.length).toBe(before);
    // After the cool-down one probe goes out; it fails, and the circuit re-opens at once.
    t.clock.t += 500;
    await expect(t.send()).rejects.toMatchObject({ statusCode: 503 });
    expect(t.sent.length).toBe(before + 1);
    expect(t.breaker?.state).toBe(CircuitState.open);
  });
});

describe("an open circuit and a deadline that outlasts its next probe", () => {
  it("the request waits for the probe time, becomes the probe, and succeeds with Key Vault", async () => {
    const clock = {
      t: performance.now(),
      now() {
        return this.t;
      },
    };
    const sleeps: number[] = [];
    const answers = [503, 503, 200, 200];
    const { policy, breaker } = createResilience(
      { ...defaultResilience, rateLimit: 0, breakerThreshold: 2, maxTries: 1 },
      {},
      {
        clock,
        sleep: (ms) => {
          sleeps.push(ms);
          clock.t += ms;
          return Promise.resolve();
        },
      },
    );
    const next = (request: PipelineRequest): Promise<PipelineResponse> => {
      const status = answers.shift() ?? 200;
      if (status >= 500) {
        return Promise.reject(
          Object.assign(new Error("503"), { name: "RestError", statusCode: status }),
        );
      }
      return Promise.resolve({ request, status, headers: headers({}) });
    };
    const send = () =>
      policy.policy.sendRequest(
        createPipelineRequest({
          url: "https://v.vault.azure.net/keys/k/v/unwrapkey",
          abortSignal: deadlineSignal(3_000, "test"),
        }),
        next,
      );
    await expect(send()).rejects.toMatchObject({ statusCode: 503 });
    await expect(send()).rejects.toMatchObject({ statusCode: 503 });
    expect(breaker?.state).toBe(CircuitState.open);
    expect((await send()).status).toBe(200);
    expect(sleeps).toEqual([500]); // waited for the probe time, then was the probe
    expect(breaker?.state).toBe(CircuitState.closed);
  });

  it("a request that meets a probe in flight waits for its verdict, then goes", async () => {
    const { policy, breaker } = createResilience({
      ...defaultResilience,
      rateLimit: 0,
      breakerThreshold: 1,
      breakerCoolDownMs: 1,
      breakerMaxCoolDownMs: 1,
      maxTries: 1,
    });
    let release!: () => void;
    const held = new Promise<void>((r) => (release = r));
    let calls = 0;
    const next = async (request: PipelineRequest): Promise<PipelineResponse> => {
      calls++;
      if (calls === 1) {
        throw Object.assign(new Error("503"), { name: "RestError", statusCode: 503 });
      }
      if (calls === 2) await held; // the probe, answered later
      return { request, status: 200, headers: headers({}) };
    };
    const send = () =>
      policy.policy.sendRequest(
        createPipelineRequest({
          url: "https://v.vault.azure.net/keys/k/v/unwrapkey",
          abortSignal: deadlineSignal(3_000, "test"),
        }),
        next,
      );
    await expect(send()).rejects.toMatchObject({ statusCode: 503 });
    await new Promise((r) => setTimeout(r, 5));
    const probe = send();
    await new Promise((r) => setTimeout(r, 5));
    expect(breaker?.state).toBe(CircuitState.halfOpen);
    const waiting = send();
    await new Promise((r) => setTimeout(r, 20));
    expect(calls).toBe(2); // it did not fail, nor send beside the probe
    release();
    expect((await probe).status).toBe(200);
    expect((await waiting).status).toBe(200);
    expect(calls).toBe(3);
  });
});

describe("the rate limiter in the policy", () => {
  it("refuses unsent when the deadline comes before the token", async () => {
    // 0.1/s over a 10 s window: one request per window.
    const { policy } = createResilience({ ...defaultResilience, rateLimit: 0.1 });
    let sent = 0;
    const next = (request: PipelineRequest): Promise<PipelineResponse> => {
      sent++;
      return Promise.resolve({ request, status: 200, headers: headers({}) });
    };
    const req = (signal: AbortSignal) =>
      createPipelineRequest({ url: "https://v.vault.azure.net/keys/k", abortSignal: signal });
    await policy.policy.sendRequest(req(deadlineSignal(5_000, "t")), next);
    const started = performance.now();
    await expect(
      policy.policy.sendRequest(req(deadlineSignal(200, "t")), next),
    ).rejects.toMatchObject({ code: "UNAVAILABLE", message: /client-side rate limit/ });
    expect(performance.now() - started).toBeLessThan(50);
    expect(sent).toBe(1);
  });
});

describe("SingleFlight", () => {
  it("coalesces identical calls; one caller leaving does not stop the others", async () => {
    const flights = new SingleFlight<Uint8Array>();
    let calls = 0;
    let release!: (v: Uint8Array) => void;
    let workSignal!: AbortSignal;
    const work = (signal: AbortSignal) => {
      calls++;
      workSignal = signal;
      return new Promise<Uint8Array>((resolve) => (release = resolve));
    };
    const leaving = new AbortController();
    const a = flights.run("k", leaving.signal, work, (v) => Uint8Array.from(v));
    const b = flights.run("k", undefined, work, (v) => Uint8Array.from(v));
    await Promise.resolve();
    await Promise.resolve();
    leaving.abort(new Error("gone"));
    await expect(a).rejects.toThrow("gone");
    expect(workSignal.aborted).toBe(false);
    release(new Uint8Array([1, 2, 3]));
    const got = await b;
    expect([...got]).toEqual([1, 2, 3]);
    expect(calls).toBe(1);
    expect(flights.size).toBe(0);
  });

  it("aborts the shared call when every caller has left", async () => {
    const flights = new SingleFlight<number>();
    let workSignal!: AbortSignal;
    const c1 = new AbortController();
    const c2 = new AbortController();
    const work = (signal: AbortSignal) => {
      workSignal = signal;
      return new Promise<number>(() => undefined);
    };
    const a = flights.run("k", c1.signal, work);
    const b = flights.run("k", c2.signal, work);
    await Promise.resolve();
    await Promise.resolve();
    c1.abort(new Error("1"));
    await expect(a).rejects.toThrow("1");
    expect(workSignal.aborted).toBe(false);
    c2.abort(new Error("2"));
    await expect(b).rejects.toThrow("2");
    expect(workSignal.aborted).toBe(true);
  });
});
