import { createServer } from "node:net";
import { once } from "node:events";
import type { AddressInfo } from "node:net";
import { KeyManagementService as V2 } from "../../src/gen/v2/api_pb.js";
import { createMetricsServer } from "../../src/http/index.js";
import { createClient } from "../helpers/grpc-client.js";
import { startPluginHarness } from "../helpers/plugin-harness.js";

describe("the /metrics endpoint", () => {
  it("serves only GET/HEAD /metrics", async () => {
    const server = createMetricsServer(
      { host: "127.0.0.1", port: 0 },
      { contentType: "text/plain; version=0.0.4", metrics: () => Promise.resolve("x_total 1\n") },
    );
    const { port } = await server.listen();
    try {
      const base = `http://127.0.0.1:${port}`;
      const ok = await fetch(`${base}/metrics`);
      expect([ok.status, await ok.text()]).toEqual([200, "x_total 1\n"]);
      expect((await fetch(`${base}/other`)).status).toBe(404);
      expect((await fetch(`${base}/metrics`, { method: "POST" })).status).toBe(405);
    } finally {
      await server.close();
    }
  });

  it("a busy metrics port is logged, and the plugin still serves KMS", async () => {
    const blocker = createServer();
    blocker.listen(0, "127.0.0.1");
    await once(blocker, "listening");
    const { port } = blocker.address() as AddressInfo;
    const h = await startPluginHarness({ args: ["--metrics-addr", `127.0.0.1:${port}`] });
    try {
      expect(h.plugin.metricsUrl).toBeUndefined();
      const client = createClient(V2, h.socketPath);
      expect((await client.status({})).healthz).toBe("ok");
      client.close();
    } finally {
      await h.close();
      blocker.close();
    }
  });
});
