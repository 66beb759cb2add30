/**
 * Who makes room at the bound, on real loopback sockets: connections that never
 * carried a request go first; a proven connection active within protectActiveMs is never
 * closed, and when only such connections are left the newcomer is refused.
 */
import { once } from "node:events";
import { connect, createServer, type Server, type Socket } from "node:net";
import { ConnectionLimit } from "../../../src/net/connection-limit.js";

let server: Server;
let port: number;
const accepted: Socket[] = [];
const clients: Socket[] = [];

beforeAll(async () => {
  server = createServer((socket) => {
    socket.on("error", () => undefined);
    socket.on("data", () => undefined);
    accepted.push(socket);
  });
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  port = (server.address() as { port: number }).port;
});

afterEach(() => {
  for (const s of [...accepted, ...clients]) s.destroy();
  accepted.length = 0;
  clients.length = 0;
});

afterAll(async () => {
  await new Promise((resolve) => server.close(resolve));
});

/** A server-side socket of a fresh loopback connection. */
async function accept(): Promise<Socket> {
  const before = accepted.length;
  const client = connect({ port, host: "127.0.0.1" });
  client.on("error", () => undefined);
  clients.push(client);
  await once(client, "connect");
  while (accepted.length === before) await new Promise((r) => setImmediate(r));
  return accepted[accepted.length - 1]!;
}

/** Makes the server side read a byte, so its byte counter moves. */
async function activity(socket: Socket): Promise<void> {
  const client = clients[accepted.indexOf(socket)]!;
  const before = socket.bytesRead;
  client.write("x");
  while (socket.bytesRead === before) await new Promise((r) => setImmediate(r));
}

describe("ConnectionLimit", () => {
  it("closes silent connections before a proven one, oldest first", async () => {
    const proven = new Set<Socket>();
    let evictions = 0;
    const limit = new ConnectionLimit({
      max: 3,
      isProven: (s) => proven.has(s),
      onEvict: () => evictions++,
    });
    const apiserver = await accept();
    proven.add(apiserver);
    const silent1 = await accept();
    const silent2 = await accept();
    for (const s of [apiserver, silent1, silent2]) expect(limit.admit(s)).toBe(true);

    expect(limit.admit(await accept())).toBe(true);
    expect(silent1.destroyed).toBe(true);
    expect(limit.admit(await accept())).toBe(true);
    expect(silent2.destroyed).toBe(true);
    expect(apiserver.destroyed).toBe(false);
    expect(evictions).toBe(2);
    expect(limit.size).toBe(3);
  });

  it("never closes a proven connection active within protectActiveMs: refuses the newcomer", async () => {
    const proven = new Set<Socket>();
    const limit = new ConnectionLimit({
      max: 2,
      isProven: (s) => proven.has(s),
      protectActiveMs: 60_000,
    });
    const a = await accept();
    const b = await accept();
    proven.add(a).add(b);
    limit.admit(a);
    limit.admit(b);
    await activity(a);
    await activity(b);

    const newcomer = await accept();
    expect(limit.admit(newcomer)).toBe(false);
    expect(a.destroyed || b.destroyed).toBe(false);
  });

  it("closes a proven connection that has gone quiet for longer than protectActiveMs", async () => {
    const limit = new ConnectionLimit({ max: 2, isProven: () => true, protectActiveMs: 30 });
    const quiet = await accept();
    const busy = await accept();
    limit.admit(quiet);
    limit.admit(busy);
    await activity(quiet);
    await activity(busy);
    // The first sample at the bound marks both active now; after protectActiveMs, only the one
    // that moved again is protected.
    expect(limit.admit(await accept())).toBe(false);
    await new Promise((r) => setTimeout(r, 50));
    await activity(busy);
    expect(limit.admit(await accept())).toBe(true);
    expect(quiet.destroyed).toBe(true);
    expect(busy.destroyed).toBe(false);
  });

  it("never closes a busy connection", async () => {
    const busy = new Set<Socket>();
    const limit = new ConnectionLimit({ max: 1, isBusy: (s) => busy.has(s) });
    const a = await accept();
    busy.add(a);
    limit.admit(a);
    expect(limit.admit(await accept())).toBe(false);
    busy.clear();
    expect(limit.admit(await accept())).toBe(true);
    expect(a.destroyed).toBe(true);
  });
});
