import { throughFirstRequestGate } from "../../../src/keyvault/first-request-gate.js";
import { KmsError } from "../../../src/kms/index.js";

function deferred<T>() {
  let resolve!: (v: T) => void;
  let reject!: (e: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

describe("throughFirstRequestGate", () => {
  it("holds requests on a client until its first one completes, then lets all through", async () => {
    const client = {};
    const first = deferred<string>();
    let sent = 0;
    const a = throughFirstRequestGate(client, () => (sent++, first.promise));
    const b = throughFirstRequestGate(client, () => (sent++, Promise.resolve("b")));
    const c = throughFirstRequestGate(client, () => (sent++, Promise.resolve("c")));
    await Promise.resolve();
    expect(sent).toBe(1);
    first.resolve("a");
    expect(await Promise.all([a, b, c])).toEqual(["a", "b", "c"]);
    expect(sent).toBe(3);
    // Open from now on: sent at once.
    void throughFirstRequestGate(client, () => (sent++, Promise.resolve("d")));
    expect(sent).toBe(4);
  });

  it("a failed first request opens the gate too (waiters are not serialized behind failures)", async () => {
    const client = {};
    const first = deferred<string>();
    const a = throughFirstRequestGate(client, () => first.promise);
    const b = throughFirstRequestGate(client, () => Promise.resolve("b"));
    first.reject(new Error("503"));
    await expect(a).rejects.toThrow("503");
    expect(await b).toBe("b");
  });

  it("a waiter whose signal aborts leaves with the abort reason and sends nothing", async () => {
    const client = {};
    const first = deferred<string>();
    const a = throughFirstRequestGate(client, () => first.promise);
    const controller = new AbortController();
    let sent = false;
    const b = throughFirstRequestGate(
      client,
      () => ((sent = true), Promise.resolve("b")),
      controller.signal,
    );
    controller.abort(new KmsError("DEADLINE_EXCEEDED", "deadline exceeded"));
    await expect(b).rejects.toMatchObject({ code: "DEADLINE_EXCEEDED" });
    first.resolve("a");
    expect(await a).toBe("a");
    expect(sent).toBe(false);
  });

  it("clients are gated independently", async () => {
    const first = deferred<string>();
    void throughFirstRequestGate({}, () => first.promise);
    let sent = false;
    await throughFirstRequestGate({}, () => ((sent = true), Promise.resolve("x")));
    expect(sent).toBe(true);
    first.resolve("done");
  });
});
