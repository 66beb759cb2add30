/**
 * The operator ports' protections, on real loopback sockets: one request in flight
 * per connection (two pipelined requests get one answer and a closed connection; a flood loses
 * the connection at once and costs at most one rendering),
 * concurrent scrapes share a rendering, and the connection bound admits newcomers by closing the
 * least recently active idle connection, or refuses them when every connection is busy.
 */
import { once } from "node:events";
import { connect, type Socket } from "node:net";
import { createGuardedServer } from "../../../src/http/guarded-server.js";
import { createMetricsServer } from "../../../src/http/index.js";

async function open(port: number): Promise<Socket> {
  const socket = connect({ port, host: "127.0.0.1" });
  await once(socket, "connect");
  return socket;
}

function collect(socket: Socket): { text: () => string; closed: Promise<void> } {
  let text = "";
  socket.on("data", (d: Buffer) => (text += d.toString()));
  socket.on("error", () => undefined);
  // Not events.once: it rejects on 'error', and a reset is one of the ways the server closes.
  const closed = new Promise<void>((resolve) => {
    socket.once("close", () => {
      resolve();
    });
  });
  return { text: () => text, closed };
}

const scrape = "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n";

describe("the metrics port", () => {
  it("answers the first of two pipelined scrapes, then closes the connection", async () => {
    let renders = 0;
    const server = createMetricsServer(
      { host: "127.0.0.1", port: 0 },
      {
        contentType: "text/plain",
        metrics: () => {
          renders++;
          return Promise.resolve("x".repeat(50_000));
        },
      },
    );
    const { port } = await server.listen();
    try {
      const socket = await open(port);
      const seen = collect(socket);
      socket.write(scrape.repeat(2));
      await seen.closed;
      expect(renders).toBe(1);
      expect(seen.text().match(/HTTP\/1\.1 200/g)).toHaveLength(1);
      expect(seen.text()).toMatch(/connection: close/i);
    } finally {
      await server.close();
    }
  });

  it("drops a connection that keeps pipelining while its answer is pending: one request handled", async () => {
    let handled = 0;
    const server = createGuardedServer(
      { name: "test", address: { host: "127.0.0.1", port: 0 }, maxConnections: 4 },
      (_req, res) => {
        handled++;
        setTimeout(() => res.end("late"), 2_000).unref();
      },
    );
    const { port } = await server.listen();
    try {
      const socket = await open(port);
      const seen = collect(socket);
      const flood = Buffer.from(scrape.repeat(2000));
      const writer = setInterval(() => {
        if (socket.writable) socket.write(flood, () => undefined);
      }, 5);
      try {
        await seen.closed;
      } finally {
        clearInterval(writer);
      }
      expect(handled).toBe(1);
      expect(seen.text()).toBe("");
    } finally {
      await server.close();
    }
  });

  it("shares one rendering among concurrent scrapes", async () => {
    let renders = 0;
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const server = createMetricsServer(
      { host: "127.0.0.1", port: 0 },
      {
        contentType: "text/plain",
        metrics: async () => {
          renders++;
          await gate;
          return "x_total 1\n";
        },
      },
    );
    const { port } = await server.listen();
    try {
      const scrapes = Array.from({ length: 20 }, () => fetch(`http://127.0.0.1:${port}/metrics`));
      await new Promise((resolve) => setTimeout(resolve, 100));
      release();
      const bodies = await Promise.all(scrapes.map(async (r) => (await r).text()));
      expect(bodies).toEqual(Array<string>(20).fill("x_total 1\n"));
      expect(renders).toBe(1);
    } finally {
      await server.close();
    }
  });
});

describe("the connection bound", () => {
  it("closes the least recently active idle connection for a newcomer, which is served", async () => {
    const server = createGuardedServer(
      { name: "test", address: { host: "127.0.0.1", port: 0 }, maxConnections: 4 },
      (_req, res) => res.end("ok"),
    );
    const { port } = await server.listen();
    try {
      const idle = await Promise.all([0, 1, 2, 3].map(() => open(port)));
      const closed = idle.map((s, i) => (i === 0 ? Promise.resolve() : collect(s).closed));
      // The oldest one shows activity, so the second oldest is the one to go.
      const first = collect(idle[0]!);
      idle[0]!.write(scrape);
      while (!first.text().endsWith("ok")) await new Promise((resolve) => setTimeout(resolve, 10));
      const answer = await fetch(`http://127.0.0.1:${port}/metrics`);
      expect(await answer.text()).toBe("ok");
      await closed[1];
      expect(idle.map((s) => s.destroyed)).toEqual([false, true, false, false]);
      for (const s of idle) s.destroy();
    } finally {
      await server.close();
    }
  });

  it("refuses a newcomer while every connection has a request in flight", async () => {
    const held: (() => void)[] = [];
    const server = createGuardedServer(
      { name: "test", address: { host: "127.0.0.1", port: 0 }, maxConnections: 2 },
      (_req, res) => held.push(() => res.end("late")),
    );
    const { port } = await server.listen();
    try {
      const busy = await Promise.all([0, 1].map(() => open(port)));
      const seen = busy.map(collect);
      for (const s of busy) s.write(scrape);
      while (held.length < 2) await new Promise((resolve) => setTimeout(resolve, 10));
      const newcomer = collect(await open(port));
      await newcomer.closed;
      expect(newcomer.text()).toBe("");
      for (const release of held) release();
      await new Promise((resolve) => setTimeout(resolve, 100));
      expect(seen.map((s) => /late$/.test(s.text()))).toEqual([true, true]);
      for (const s of busy) s.destroy();
    } finally {
      await server.close();
    }
  });
});
