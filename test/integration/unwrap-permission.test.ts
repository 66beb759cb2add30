/**
 * An identity that loses unwrapKey while the plugin runs (a role removed, an access policy edited):
 * the poll's proof of the current seed sees it within one poll, /readyz says so and names the
 * permission, the metric an alert fires on is set, and Status and Encrypt go on; restoring the
 * permission clears it within one poll.
 */
import { randomBytes, randomUUID } from "node:crypto";
import { KeyManagementService as V2 } from "../../src/gen/v2/api_pb.js";
import { KEY_PERMISSIONS } from "@keyvault-kms/emulator";
import { eventually } from "../helpers/eventually.js";
import { createClient } from "../helpers/grpc-client.js";
import { startPluginHarness } from "../helpers/plugin-harness.js";
import { scrapeText } from "../helpers/scrape.js";
import { report } from "../helpers/report.js";

const pollMs = 300;

describe("a lost unwrapKey permission", () => {
  it("turns /readyz non-200 naming it within one poll, and back when restored; Status and Encrypt never fail", async () => {
    const h = await startPluginHarness({
      args: ["--rotation-poll-interval", `${pollMs}ms`],
      captureLogs: true,
      emulator: { keyPermissions: [...KEY_PERMISSIONS] },
    });
    const client = createClient(V2, h.socketPath, { timeoutMs: 3_000 });
    const run = { stop: false };
    const failures: string[] = [];
    // kube-apiserver all along: Status and Encrypt.
    const traffic = (async () => {
      while (!run.stop) {
        try {
          const status = await client.status({});
          if (status.healthz !== "ok") failures.push(`Status ${status.healthz}`);
          await client.encrypt({ plaintext: randomBytes(32), uid: randomUUID() });
        } catch (error) {
          failures.push(String(error));
        }
        await new Promise((r) => setTimeout(r, 20));
      }
    })();
    const readyz = async () => {
      const res = await fetch(`${h.plugin.healthUrl!}/readyz`);
      return { status: res.status, body: (await res.json()) as { ready: boolean; reason: string } };
    };
    const metric = async () =>
      /^azurekms_unwrap_refused (\d)$/m.exec(await scrapeText(h.plugin.metricsUrl))?.[1];
    try {
      expect((await readyz()).status).toBe(200);
      expect(await metric()).toBe("0");
      h.emu.setKeyPermissions(KEY_PERMISSIONS.filter((p) => p !== "unwrapKey"));
      const lostAt = Date.now();
      const refused = await eventually(
        async () => {
          const r = await readyz();
          return r.status === 200 ? undefined : r;
        },
        // One poll (with its jitter) and the proof's answer.
        pollMs * 1.1 + 1_000,
        "/readyz to fail",
      );
      report(
        `unwrap permission: /readyz ${refused.status} after ${Date.now() - lostAt} ms: ${refused.body.reason}`,
      );
      expect(refused.status).toBe(503);
      expect(refused.body.ready).toBe(false);
      expect(refused.body.reason).toMatch(
        /^PERMISSION_DENIED: Key Vault no longer unwraps the current seed/,
      );
      expect(refused.body.reason).toMatch(/"unwrapKey" permission/);
      expect(await metric()).toBe("1");

      h.emu.setKeyPermissions(undefined);
      await eventually(
        async () => ((await readyz()).status === 200 ? true : undefined),
        pollMs * 1.1 + 1_000,
        "/readyz to recover",
      );
      expect(await metric()).toBe("0");
    } finally {
      run.stop = true;
      await traffic;
      client.close();
      await h.close();
    }
    expect(failures).toEqual([]);
    const lines = h.logs.filter((l) => /no longer unwraps the current seed/.test(String(l["msg"])));
    expect(lines).toHaveLength(1); // logged once, not once per poll
    expect(h.logs.some((l) => /unwraps the current seed again/.test(String(l["msg"])))).toBe(true);
  });
});
