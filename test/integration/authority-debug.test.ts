import { ECHO_PATH, startInjectedServer, startStockServer, tempSocketPath } from "../unit/grpc/support/echo-server.js";
import { RawGrpcClient } from "../unit/grpc/support/raw-grpc-client.js";

for (const kind of ["stock", "raw", "rewrite"] as const) {
  it(`half-close ${kind}`, async () => {
    const sock = tempSocketPath();
    const srv = kind === "stock" ? await startStockServer(sock.path) : await startInjectedServer(sock.path);
    const client = await RawGrpcClient.connect(sock.path, { authority: kind === "rewrite" ? sock.path : "localhost" });
    const calls = Array.from({ length: 3 }, () => client.call(ECHO_PATH, Buffer.alloc(10)).then((r) => `ok ${r.status}`, (e: Error) => e.message));
    await new Promise((r) => setTimeout(r, 1));
    client.close();
    const t = Date.now();
    const res = await Promise.race([Promise.all(calls), new Promise((r) => setTimeout(() => r("HANG"), 3000))]);
    console.log(kind, "calls:", JSON.stringify(res), Date.now() - t, "closed:", await Promise.race([client.closed.then(() => "yes"), new Promise((r) => setTimeout(() => r("no"), 1000))]));
    client.destroy();
    await srv.stop();
  }, 10000);
  it(`shutdown in flight ${kind}`, async () => {
    const sock = tempSocketPath();
    const srv = kind === "stock" ? await startStockServer(sock.path) : await startInjectedServer(sock.path);
    const client = await RawGrpcClient.connect(sock.path, { authority: kind === "rewrite" ? sock.path : "localhost" });
    const calls = Array.from({ length: 5 }, () => client.call(ECHO_PATH, Buffer.alloc(30000)).then((r) => `ok ${r.status}`, (e: Error) => e.message));
    srv.server.forceShutdown();
    const res = await Promise.race([Promise.all(calls), new Promise((r) => setTimeout(() => r("HANG"), 3000))]);
    console.log(kind, "shutdown calls:", JSON.stringify(res), "closed:", await Promise.race([client.closed.then(() => "yes"), new Promise((r) => setTimeout(() => r("no"), 1000))]));
    client.destroy();
    await Promise.race([srv.stop(), new Promise((r) => setTimeout(r, 1000))]);
  }, 10000);
}
