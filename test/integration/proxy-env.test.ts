/**
 * HTTPS_PROXY / NO_PROXY are honoured by the Azure SDK's proxy policy, which reads them once per
 * process when the first client is built: set them before any client exists (this file only).
 */
import { randomBytes } from "node:crypto";
import { createServer, type Server } from "node:http";
import { connect, type AddressInfo } from "node:net";
import { createEmulator, type Emulator } from "@keyvault-kms/emulator";
import { createCredential, createKeyVaultWrapper } from "../../src/keyvault/index.js";

let emu: Emulator;
let proxy: Server;
const connects: string[] = [];
const saved = { https: process.env["HTTPS_PROXY"], no: process.env["NO_PROXY"] };

beforeAll(async () => {
  // A CONNECT proxy that records where it was asked to tunnel.
  proxy = createServer((_req, res) => {
    res.writeHead(405).end();
  });
  proxy.on("connect", (req, socket, head) => {
    connects.push(req.url ?? "");
    const [host, port] = (req.url ?? "").split(":");
    const upstream = connect(Number(port), host ?? "", () => {
      socket.write("HTTP/1.1 200 Connection Established\r\n\r\n");
      upstream.write(head);
      upstream.pipe(socket);
      socket.pipe(upstream);
    });
    upstream.on("error", () => socket.destroy());
    socket.on("error", () => upstream.destroy());
  });
  await new Promise<void>((resolve) => proxy.listen(0, "127.0.0.1", resolve));
  process.env["HTTPS_PROXY"] = `http://127.0.0.1:${(proxy.address() as AddressInfo).port}`;
  process.env["NO_PROXY"] = "127.0.0.1";
  emu = await createEmulator({ keys: [{ name: "kek", kty: "RSA" }] });
});
afterAll(async () => {
  await emu.close();
  proxy.closeAllConnections();
  await new Promise<void>((resolve) => {
    proxy.close(() => {
      resolve();
    });
  });
  if (saved.https === undefined) delete process.env["HTTPS_PROXY"];
  else process.env["HTTPS_PROXY"] = saved.https;
  if (saved.no === undefined) delete process.env["NO_PROXY"];
  else process.env["NO_PROXY"] = saved.no;
});

function wrapper(host: string) {
  const base = `https://${host}:${emu.port}`;
  const vaultHost = `${host}:${emu.port}`;
  return createKeyVaultWrapper({
    vaultUrl: base,
    vaultHost,
    keyName: "kek",
    keyVersion: "",
    credential: createCredential({
      identity: {
        kind: "client-secret",
        tenantId: emu.tenantId,
        clientId: emu.clientId,
        clientSecret: emu.clientSecret,
      },
      authorityHost: base,
      caPem: emu.caPem,
    }),
    caPem: emu.caPem,
    userAgent: "keyvault-kms-test",
    isAllowed: (ref) => ref.vaultHost === vaultHost,
  });
}

describe("HTTPS_PROXY and NO_PROXY", () => {
  it("NO_PROXY excludes the emulator: wrap and unwrap go direct", async () => {
    const w = wrapper("127.0.0.1");
    const { current } = await w.refresh();
    const seed = randomBytes(32);
    const wrapped = await w.wrap(seed, current!);
    expect(Buffer.from(await w.unwrap(wrapped))).toEqual(seed);
    expect(connects).toEqual([]);
  });

  it("a host not in NO_PROXY is tunnelled through HTTPS_PROXY", async () => {
    // localhost is the same emulator under a name NO_PROXY does not list. Through a proxy the SDK
    // drops custom TLS settings (the emulator's CA), so the call itself fails on the certificate.
    await expect(wrapper("localhost").refresh()).rejects.toThrow();
    expect(connects).toContain(`localhost:${emu.port}`);
  });
});
