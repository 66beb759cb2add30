import { randomBytes } from "node:crypto";
import { parseEnvelope } from "../../../src/kms/envelope.js";
import { KmsError } from "../../../src/kms/errors.js";
import { keyIdOf } from "../../../src/kms/key-id.js";
import { FakeKeyWrapper, sharedKeyPair } from "../../helpers/fake-key-wrapper.js";
import {
  ctx,
  expectCode,
  isZero,
  NONE,
  recordingObserver,
  serviceFor,
  startedServiceFor,
  tick,
  waitFor,
} from "./fixtures.js";

type Service = Awaited<ReturnType<typeof startedServiceFor>>;

function fakeWrapper(): FakeKeyWrapper {
  return new FakeKeyWrapper({ keyPair: sharedKeyPair() });
}

function seedOf(ciphertext: Uint8Array): string {
  return parseEnvelope(ciphertext).seedCacheKey;
}

function roundTrip(service: Service): { check: () => Promise<void>; seed: string } {
  const plaintext = randomBytes(32);
  const { ciphertext, keyId } = service.encrypt(plaintext, ctx());
  return {
    seed: seedOf(ciphertext),
    check: async () => {
      const out = await service.decrypt({ ciphertext, keyId, annotations: NONE }, ctx());
      expect(Buffer.from(out)).toEqual(plaintext);
    },
  };
}

describe("seed age", () => {
  it("replaces the current seed under the same version after a short real max age", async () => {
    const fake = fakeWrapper();
    const { observer, events } = recordingObserver();
    const service = await startedServiceFor(fake, { seedMaxAgeMs: 50, observer });
    const keyId = service.status().keyId;
    const first = roundTrip(service);

    await waitFor(() => fake.calls.wrap >= 2);
    expect(service.status().keyId).toBe(keyId);
    const second = roundTrip(service);
    expect(second.seed).not.toBe(first.seed);
    expect(service.encrypt(randomBytes(8), ctx()).keyId).toBe(keyId);
    await first.check(); // the replaced seed is cached: no Key Vault call
    await second.check();
    expect(fake.calls.unwrap).toBe(0);
    expect(fake.calls.refresh).toBe(1); // no poll involved
    expect(events).toContain("seed " + fake.currentKey().keyVersion.slice(0, 6) + " max-age");
    expect(events.filter((e) => e.startsWith("current "))).toHaveLength(1);
    service.close();
  });

  it("follows the injected clock: due only once the max age has passed", async () => {
    const fake = fakeWrapper();
    let clock = 1_000_000;
    const service = await startedServiceFor(fake, { seedMaxAgeMs: 10_000, now: () => clock });
    const first = roundTrip(service);
    clock += 9_999;
    await service.poll();
    expect(roundTrip(service).seed).toBe(first.seed);
    clock += 1;
    await service.poll();
    const second = roundTrip(service);
    expect(second.seed).not.toBe(first.seed);
    // The new seed's age starts now.
    clock += 9_999;
    await service.poll();
    expect(roundTrip(service).seed).toBe(second.seed);
    await first.check();
    expect(fake.calls).toEqual({ wrap: 2, unwrap: 0, refresh: 4 });
    service.close();
  });

  it("keeps the old seed when the wrap fails, reports it, and retries", async () => {
    const fake = fakeWrapper();
    let clock = 0;
    const { observer, events } = recordingObserver();
    const service = await startedServiceFor(fake, {
      seedMaxAgeMs: 1000,
      now: () => clock,
      observer,
    });
    const first = roundTrip(service);
    clock = 1000;
    fake.failNextWraps(1, new KmsError("UNAVAILABLE", "down"));
    await service.poll();
    expect(events.at(-1)).toBe("failed UNAVAILABLE");
    expect(service.status().healthz).toBe("ok");
    expect(roundTrip(service).seed).toBe(first.seed);
    await service.poll();
    expect(roundTrip(service).seed).not.toBe(first.seed);
    service.close();
  });

  it("retries a failed wrap on its own timer", async () => {
    const fake = fakeWrapper();
    const service = await startedServiceFor(fake, { seedMaxAgeMs: 40 });
    const first = roundTrip(service);
    fake.failNextWraps(1, new KmsError("UNAVAILABLE", "down"));
    // Due at 40 ms (fails), retried min(60 s, 40 ms) later.
    await waitFor(() => fake.calls.wrap >= 3);
    expect(roundTrip(service).seed).not.toBe(first.seed);
    service.close();
  });

  it("is off with seedMaxAgeMs 0", async () => {
    const fake = fakeWrapper();
    let clock = 0;
    const service = await startedServiceFor(fake, { seedMaxAgeMs: 0, now: () => clock });
    const first = roundTrip(service);
    clock = 365 * 24 * 3600_000;
    await service.poll();
    expect(roundTrip(service).seed).toBe(first.seed);
  });
});

describe("timers", () => {
  it("polls on the interval and promotes a rotated version", async () => {
    const fake = fakeWrapper();
    const service = await startedServiceFor(fake, { pollIntervalMs: 20 });
    const next = fake.rotate();
    await waitFor(() => service.status().keyId === keyIdOf(next));
    expect(service.encrypt(randomBytes(8), ctx()).keyId).toBe(keyIdOf(next));
    service.close();
  });

  it("keeps polling after a failed refresh", async () => {
    const fake = fakeWrapper();
    const service = await startedServiceFor(fake, { pollIntervalMs: 10 });
    fake.failNextRefreshes(2, new KmsError("UNAVAILABLE", "down"));
    await waitFor(() => fake.calls.refresh >= 5);
    expect(service.status().healthz).toBe("ok");
    service.close();
  });

  it("starts no timer before a successful start, and none fires after close", async () => {
    const fake = fakeWrapper();
    const failing = fake.withSameKeys();
    failing.failNextRefreshes(1, new KmsError("UNAVAILABLE", "down"));
    const notStarted = serviceFor(failing, { pollIntervalMs: 10, seedMaxAgeMs: 10 });
    await expectCode(() => notStarted.start(), "UNAVAILABLE");
    await tick(60);
    expect(failing.calls).toEqual({ wrap: 0, unwrap: 0, refresh: 1 });

    const running = await startedServiceFor(fake, { pollIntervalMs: 10, seedMaxAgeMs: 15 });
    await waitFor(() => fake.calls.refresh >= 3 && fake.calls.wrap >= 2);
    running.close();
    const after = { ...fake.calls };
    await tick(80);
    expect(fake.calls).toEqual(after);
    await running.poll(); // resolves, does nothing
    expect(fake.calls).toEqual(after);
  });

  it("zeroes a seed whose wrap lands after close", async () => {
    const fake = fakeWrapper();
    const service = await startedServiceFor(fake);
    fake.rotate();
    fake.latencyMs = 20; // refresh answers at 20 ms, the wrap at 40 ms
    const polling = service.poll();
    await tick(30);
    service.close();
    await polling;
    expect(fake.wrappedSeeds).toHaveLength(2);
    expect(fake.wrappedSeeds.every(isZero)).toBe(true);
    expect(service.status().healthz).not.toBe("ok");
  });
});
