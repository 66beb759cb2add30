/**
 * The health endpoints on a real plugin (emulator, Key Vault wrapper, gRPC socket) over real HTTP:
 * /livez, /readyz and the Go plugin's /healthz never make a Key Vault request, /livez does not care
 * about Key Vault, and /readyz reports Key Vault as the plugin's own calls found it.
 */
import { once } from "node:events";
import { unlink } from "node:fs/promises";
import { createServer, type AddressInfo } from "node:net";
import { contractLine } from "../../src/commands/emulator.js";
import { parseConfig, UsageError } from "../../src/config/index.js";
import { KeyManagementService as V2 } from "../../src/gen/v2/api_pb.js";
import { eventually } from "../helpers/eventually.js";
import { createClient } from "../helpers/grpc-client.js";
import { startPluginHarness, type PluginHarness } from "../helpers/plugin-harness.js";
import { totalRequests } from "../helpers/emulator-counters.js";

interface ReadyBody {
  ready: boolean;
  reason: string;
  keyId: string;
  keyVault: {
    healthy: boolean | null;
    lastSuccessAt: string | null;
    lastFailureAt: string | null;
    lastError: string | null;
    consecutiveFailures: number;
  };
}

const paths = ["/livez", "/readyz", "/healthz"] as const;

function healthUrl(h: PluginHarness): string {
  const url = h.plugin.healthUrl;
  if (url === undefined) throw new Error("health endpoints not served");
  return url;
}

async function get(h: PluginHarness, path: string): Promise<{ status: number; text: string }> {
  const res = await fetch(`${healthUrl(h)}${path}`);
  return { status: res.status, text: await res.text() };
}

async function readyz(h: PluginHarness): Promise<{ status: number; body: ReadyBody }> {
  const { status, text } = await get(h, "/readyz");
  return { status, body: JSON.parse(text) as ReadyBody };
}

function keyVaultRequests(h: PluginHarness): number {
  return totalRequests(h.emu.counters());
}

describe("health endpoints with Key Vault up", () => {
  let h: PluginHarness;
  beforeAll(async () => {
    h = await startPluginHarness();
  });
  afterAll(async () => {
    await h.close();
  });

  it("binds 127.0.0.1 on the port given (0: a free one)", () => {
    expect(healthUrl(h)).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    expect(healthUrl(h)).not.toMatch(/:0$/);
  });

  it("answers every probe path 200 times without a single Key Vault request", async () => {
    h.emu.resetCounters();
    for (const path of paths) {
      for (let i = 0; i < 200; i++) {
        const { status } = await get(h, path);
        expect(status).toBe(200);
      }
      // Concurrent probes too (they share one self-check).
      const burst = await Promise.all(
        Array.from({ length: 50 }, () => fetch(`${healthUrl(h)}${path}`)),
      );
      expect(burst.map((r) => r.status)).toEqual(Array<number>(50).fill(200));
      const head = await fetch(`${healthUrl(h)}${path}`, { method: "HEAD" });
      expect([head.status, await head.text()]).toEqual([200, ""]);
    }
    expect(h.emu.counters()).toEqual(
      Object.fromEntries(Object.keys(h.emu.counters()).map((k) => [k, 0])),
    );
    expect(keyVaultRequests(h)).toBe(0);
  });

  it("/readyz reports the current key_id and Key Vault's last calls; /healthz says ok", async () => {
    const client = createClient(V2, h.socketPath);
    const { keyId } = await client.status({});
    client.close();
    const { status, body } = await readyz(h);
    expect(status).toBe(200);
    expect(body).toEqual({
      ready: true,
      reason: "ok",
      keyId,
      keyVault: {
        healthy: true,
        lastSuccessAt: expect.stringMatching(/^\d{4}-\d\d-\d\dT/) as unknown,
        lastFailureAt: null,
        lastError: null,
        consecutiveFailures: 0,
      },
    });
    expect(await get(h, "/healthz")).toEqual({ status: 200, text: "ok" });
    expect(JSON.parse((await get(h, "/livez")).text)).toEqual({ live: true });
  });

  it("404 for other paths, 405 for other methods", async () => {
    for (const path of ["/", "/metrics", "/healthz/x", "/live"]) {
      expect((await get(h, path)).status).toBe(404);
    }
    for (const path of paths) {
      for (const method of ["POST", "PUT", "DELETE"]) {
        const res = await fetch(`${healthUrl(h)}${path}`, { method });
        expect(res.status).toBe(405);
        expect(res.headers.get("allow")).toBe("GET, HEAD");
      }
    }
    // A query string does not change the answer (kubelet may add one).
    expect((await get(h, "/readyz?verbose")).status).toBe(200);
  });
});

describe("health endpoints with Key Vault down", () => {
  it("with a seed in memory: /livez and /readyz stay 200, /readyz reports the outage, then the recovery", async () => {
    const h = await startPluginHarness({ args: ["--rotation-poll-interval", "200ms"] });
    try {
      h.emu.addFault({ operation: "*", kind: "503" });
      const outage = await eventually(
        async () => {
          const r = await readyz(h);
          return r.body.keyVault.healthy === false ? r : undefined;
        },
        15_000,
        "/readyz to report the failing poll",
      );
      // Encryption goes on from the seed in memory, so the plugin stays ready; the body says why.
      expect(outage.status).toBe(200);
      expect(outage.body.ready).toBe(true);
      expect(outage.body.keyVault.lastError).toBe("UNAVAILABLE");
      expect(outage.body.keyVault.lastFailureAt).not.toBeNull();
      expect(outage.body.keyVault.consecutiveFailures).toBeGreaterThan(0);
      for (let i = 0; i < 20; i++) expect((await get(h, "/livez")).status).toBe(200);

      h.emu.clearFaults();
      const healed = await eventually(
        async () => {
          const r = await readyz(h);
          return r.body.keyVault.healthy === true ? r : undefined;
        },
        15_000,
        "/readyz to report Key Vault answering again",
      );
      expect(healed.status).toBe(200);
      expect(healed.body.keyVault.lastError).toBe("UNAVAILABLE"); // the last failure stays visible
      expect(healed.body.keyVault.consecutiveFailures).toBe(0);
      expect(Date.parse(healed.body.keyVault.lastSuccessAt!)).toBeGreaterThan(
        Date.parse(healed.body.keyVault.lastFailureAt!),
      );
    } finally {
      await h.close();
    }
  });

  it("from start-up: /livez 200, /readyz and /healthz 503 with the outage; ready without a restart once Key Vault answers", async () => {
    const h = await startPluginHarness({
      waitReady: false,
      beforeStart: (emu) => {
        emu.addFault({ operation: "*", kind: "503" });
      },
    });
    try {
      const down = await eventually(
        async () => {
          const r = await readyz(h);
          return r.body.keyVault.lastError !== null ? r : undefined;
        },
        15_000,
        "/readyz to report the failed key load",
      );
      expect(down.status).toBe(503);
      expect(down.body).toMatchObject({
        ready: false,
        keyId: "",
        keyVault: { healthy: false, lastSuccessAt: null, lastError: "UNAVAILABLE" },
      });
      expect(down.body.reason).toMatch(/^not ready/);
      const healthz = await get(h, "/healthz");
      expect(healthz.status).toBe(503);
      expect((JSON.parse(healthz.text) as ReadyBody).ready).toBe(false);
      for (let i = 0; i < 20; i++) {
        const live = await get(h, "/livez");
        expect([live.status, live.text]).toEqual([200, '{"live":true}\n']);
      }

      h.emu.clearFaults();
      await h.plugin.ready;
      const up = await readyz(h);
      expect(up.status).toBe(200);
      expect(up.body).toMatchObject({ ready: true, reason: "ok", keyVault: { healthy: true } });
      expect(await get(h, "/healthz")).toEqual({ status: 200, text: "ok" });
    } finally {
      await h.close();
    }
  });

  it("before the first seed: /readyz 503 'not ready' and nothing known about Key Vault yet", async () => {
    const h = await startPluginHarness({
      waitReady: false,
      beforeStart: (emu) => {
        // Key Vault slow, not failing: the first key load is still in flight while we probe.
        emu.addFault({ operation: "*", kind: "latency", ms: 3_000 });
      },
    });
    try {
      const { status, body } = await readyz(h);
      expect(status).toBe(503);
      expect(body).toEqual({
        ready: false,
        reason: "not ready: no seed yet",
        keyId: "",
        keyVault: {
          healthy: null,
          lastSuccessAt: null,
          lastFailureAt: null,
          lastError: null,
          consecutiveFailures: 0,
        },
      });
      expect((await get(h, "/livez")).status).toBe(200);
      h.emu.clearFaults();
    } finally {
      await h.close();
    }
  });
});

describe("health server lifecycle", () => {
  it("/livez fails once the socket file is gone (kube-apiserver could not connect)", async () => {
    const h = await startPluginHarness();
    try {
      expect((await get(h, "/livez")).status).toBe(200);
      await unlink(h.socketPath);
      const { status, text } = await get(h, "/livez");
      expect(status).toBe(503);
      expect(JSON.parse(text)).toEqual({ live: false, reason: "the socket file is gone" });
    } finally {
      await h.close();
    }
  });

  it("stop() closes the health port", async () => {
    const h = await startPluginHarness();
    const url = healthUrl(h);
    expect((await fetch(`${url}/livez`)).status).toBe(200);
    await h.close();
    await expect(fetch(`${url}/livez`)).rejects.toThrow();
  });

  it("a busy health port is logged, and the plugin still serves KMS", async () => {
    const blocker = createServer();
    blocker.listen(0, "127.0.0.1");
    await once(blocker, "listening");
    const { port } = blocker.address() as AddressInfo;
    const h = await startPluginHarness({ args: ["--healthz-port", String(port)] });
    try {
      expect(h.plugin.healthUrl).toBeUndefined();
      expect(h.plugin.metricsUrl).toBeDefined();
      const client = createClient(V2, h.socketPath);
      expect((await client.status({})).healthz).toBe("ok");
      client.close();
    } finally {
      await h.close();
      blocker.close();
    }
  });

  it("--healthz-addr takes an IP address; the default is loopback", async () => {
    const h = await startPluginHarness({ waitReady: false });
    try {
      const contract = contractLine(h.emu, "kek");
      const parse = (args: string[]) =>
        parseConfig([...contract.serveArgs, ...args], contract.serveEnv);
      expect((await parse([])).healthzHost).toBe("127.0.0.1");
      expect((await parse(["--healthz-addr", "0.0.0.0"])).healthzHost).toBe("0.0.0.0");
      expect((await parse(["--healthz-addr", "[::]"])).healthzHost).toBe("::");
      await expect(parse(["--healthz-addr", "node.example"])).rejects.toThrow(UsageError);
      await expect(parse(["--healthz-addr", "127.0.0.1:8787"])).rejects.toThrow(/healthz-addr/);
    } finally {
      await h.close();
    }
  });
});
