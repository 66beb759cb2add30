import { randomBytes } from "node:crypto";
import { KmsError } from "../../../src/kms/errors.js";
import type { KmsObserver } from "../../../src/kms/observer.js";
import { FakeKeyWrapper, sharedKeyPair } from "../../helpers/fake-key-wrapper.js";
import { ctx, NONE, recordingObserver, startedServiceFor, tick } from "./fixtures.js";

const A = "a".repeat(32);
const B = "b".repeat(32);

describe("KmsObserver", () => {
  it("hears every rotation event, in order", async () => {
    const fake = new FakeKeyWrapper({ keyPair: sharedKeyPair(), keyVersion: A });
    const { observer, events } = recordingObserver();
    let clock = 0;
    const service = await startedServiceFor(fake, {
      observer,
      seedMaxAgeMs: 1000,
      now: () => clock,
    });
    expect(events).toEqual(["current aaaaaa id", "seed aaaaaa start"]);

    const take = (): string[] => events.splice(0);
    take();
    const { ciphertext, keyId } = service.encrypt(randomBytes(32), ctx());
    await service.decrypt({ ciphertext, keyId, annotations: NONE }, ctx());
    expect(take()).toEqual(["decrypt aaaaaa"]);

    fake.rotate(B);
    await service.poll();
    expect(take()).toEqual(["promote aaaaaa>bbbbbb", "current bbbbbb id", "seed bbbbbb promotion"]);

    await service.poll();
    expect(take()).toEqual([]); // nothing changed

    fake.disable(B);
    await service.poll();
    expect(take()).toEqual([
      "revoke bbbbbb disabled",
      "promote bbbbbb>aaaaaa",
      "current aaaaaa id",
      "seed aaaaaa promotion",
    ]);

    fake.enable(B);
    await service.poll();
    expect(take()).toEqual([
      "restore bbbbbb",
      "promote aaaaaa>bbbbbb",
      "current bbbbbb id",
      "seed bbbbbb promotion",
    ]);

    clock += 1000;
    await service.poll();
    expect(take()).toEqual(["seed bbbbbb max-age"]);

    fake.failNextRefreshes(1, new KmsError("PERMISSION_DENIED", "403"));
    await service.poll();
    expect(take()).toEqual(["failed PERMISSION_DENIED"]);

    fake.deleteKey();
    await service.poll();
    expect(take()).toEqual(["revoke aaaaaa deleted", "revoke bbbbbb deleted", "current - -"]);

    fake.recoverKey();
    await service.poll();
    expect(take()).toEqual([
      "restore aaaaaa",
      "restore bbbbbb",
      "promote ->bbbbbb",
      "current bbbbbb id",
      "seed bbbbbb promotion",
    ]);
    service.close();
  });

  it("cannot break the service by throwing or rejecting", async () => {
    const fake = new FakeKeyWrapper({ keyPair: sharedKeyPair() });
    const rejections: unknown[] = [];
    const onRejection = (reason: unknown): void => {
      rejections.push(reason);
    };
    process.on("unhandledRejection", onRejection);
    try {
      const boom = (): never => {
        throw new Error("observer bug");
      };
      const reject = (): Promise<never> => Promise.reject(new Error("async observer bug"));
      const throwing: KmsObserver = {
        onDecrypt: boom,
        onCurrentKey: boom,
        onPromote: boom,
        onRevoke: boom,
        onRestore: boom,
        onSeedCreated: boom,
        onRefreshFailed: boom,
      };
      // An async observer (lint forbids it, a cast lets it in): its rejections must be caught.
      const rejecting = {
        onDecrypt: reject,
        onCurrentKey: reject,
        onPromote: reject,
        onSeedCreated: reject,
        onRefreshFailed: reject,
      } as unknown as KmsObserver;
      for (const observer of [throwing, rejecting]) {
        const own = fake.withSameKeys();
        const service = await startedServiceFor(own, { observer });
        const { ciphertext, keyId } = service.encrypt(randomBytes(32), ctx());
        await service.decrypt({ ciphertext, keyId, annotations: NONE }, ctx());
        own.rotate();
        await service.poll();
        own.failNextRefreshes(1, new KmsError("UNAVAILABLE", "down"));
        await service.poll();
        expect(service.status().healthz).toBe("ok");
        await service.decrypt({ ciphertext, keyId, annotations: NONE }, ctx());
        service.close();
      }
      await tick(10);
      expect(rejections).toEqual([]);
    } finally {
      process.off("unhandledRejection", onRejection);
    }
  });
});
