/**
 * The `:authority` values kube-apiserver's KMS clients send (docs/kms-contract.md §3.1, §7.1),
 * through the real plugin's socket: `localhost` (v2 client, 1.32+), the percent-encoded socket
 * path (grpc-go ≥ 1.57: 1.29–1.31, and the v1 client since), and the raw socket path (grpc-go
 * 1.47–1.56: 1.25–1.28), which Node's HTTP/2 layer would reset unless the plugin rewrites it.
 * Each form is sent by two clients: grpc-js (nghttp2's encoder) and a hand-rolled HTTP/2 client
 * that sends exactly what grpc-go sends (HPACK-indexed headers, waits for the server's SETTINGS).
 */
import {
  create,
  fromBinary,
  toBinary,
  type DescMessage,
  type MessageInitShape,
} from "@bufbuild/protobuf";
import { randomBytes, randomUUID } from "node:crypto";
import { createServer } from "node:http2";
import { join } from "node:path";
import * as v1 from "../../src/gen/v1beta1/api_pb.js";
import * as v2 from "../../src/gen/v2/api_pb.js";
import * as v2alpha1 from "../../src/gen/v2alpha1/api_pb.js";
import { RawGrpcClient } from "../unit/grpc/support/raw-grpc-client.js";
import {
  ApiserverKmsV1,
  ApiserverKmsV2,
  APISERVER_1_25_1_26,
  APISERVER_1_27_1_28,
  validateEncryptedObject,
  type EncryptedObject,
  type KmsV1LikeClient,
  type KmsV2LikeClient,
} from "../helpers/apiserver-kms.js";
import { createClient } from "../helpers/grpc-client.js";
import { startPluginHarness, type PluginHarness } from "../helpers/plugin-harness.js";

let h: PluginHarness;
const closers: (() => void)[] = [];

beforeAll(async () => {
  h = await startPluginHarness({ args: ["--status-version", "v2beta1"] });
});
afterEach(() => {
  for (const close of closers.splice(0)) close();
});
afterAll(async () => {
  await h.close();
});

// The three forms kube-apiserver sends, and one it never sends but a client may: userinfo ("@"),
// which Node 24's HTTP/2 layer refuses and Node 20's accepted.
type AuthorityForm =
  "localhost" | "percent-encoded socket path" | "raw socket path" | "userinfo (@)";
const forms: AuthorityForm[] = [
  "localhost",
  "percent-encoded socket path",
  "raw socket path",
  "userinfo (@)",
];

function authority(form: AuthorityForm): string {
  switch (form) {
    case "localhost":
      return "localhost";
    case "percent-encoded socket path":
      return encodeURIComponent(h.socketPath);
    case "raw socket path":
      return h.socketPath;
    case "userinfo (@)":
      return "kube-apiserver@localhost";
  }
}

/** A unary call over the grpc-go-like client; rejects with the gRPC status on failure. */
async function rawUnary<I extends DescMessage, O extends DescMessage>(
  client: RawGrpcClient,
  path: string,
  input: I,
  output: O,
  request: MessageInitShape<I>,
) {
  const res = await client.call(path, Buffer.from(toBinary(input, create(input, request))));
  if (res.status !== 0) throw new Error(`${path}: grpc-status ${res.status} ${res.message}`);
  return fromBinary(output, res.body);
}

async function grpcGoLike(form: AuthorityForm): Promise<RawGrpcClient> {
  const client = await RawGrpcClient.connect(h.socketPath, { authority: authority(form) });
  closers.push(() => {
    client.destroy();
  });
  return client;
}

/** A KMS v2 (or v2alpha1) client of the given kind, for the simulated apiserver. */
async function v2Client(
  kind: "grpc-js" | "grpc-go-like",
  form: AuthorityForm,
  service: "v2" | "v2alpha1",
): Promise<KmsV2LikeClient> {
  const desc = service === "v2" ? v2.KeyManagementService : v2alpha1.KeyManagementService;
  if (kind === "grpc-js") {
    const client = createClient(desc, h.socketPath, { authority: authority(form) });
    closers.push(() => {
      client.close();
    });
    return client;
  }
  const raw = await grpcGoLike(form);
  const m = (name: string) => `/${service}.KeyManagementService/${name}`;
  const s = desc.method;
  return {
    status: () => rawUnary(raw, m("Status"), s.status.input, s.status.output, {}),
    encrypt: (r) => rawUnary(raw, m("Encrypt"), s.encrypt.input, s.encrypt.output, r),
    decrypt: (r) => rawUnary(raw, m("Decrypt"), s.decrypt.input, s.decrypt.output, r),
  };
}

async function v1Client(
  kind: "grpc-js" | "grpc-go-like",
  form: AuthorityForm,
): Promise<KmsV1LikeClient> {
  if (kind === "grpc-js") {
    const client = createClient(v1.KeyManagementService, h.socketPath, {
      authority: authority(form),
    });
    closers.push(() => {
      client.close();
    });
    return client;
  }
  const raw = await grpcGoLike(form);
  const m = (name: string) => `/v1beta1.KeyManagementService/${name}`;
  return {
    version: (r) =>
      rawUnary(raw, m("Version"), v1.VersionRequestSchema, v1.VersionResponseSchema, r),
    encrypt: (r) =>
      rawUnary(raw, m("Encrypt"), v1.EncryptRequestSchema, v1.EncryptResponseSchema, r),
    decrypt: (r) =>
      rawUnary(raw, m("Decrypt"), v1.DecryptRequestSchema, v1.DecryptResponseSchema, r),
  };
}

it("premise: Node's own HTTP/2 server resets a stream whose :authority is the raw socket path", async () => {
  const path = join(h.dir, "plain-http2.sock");
  const server = createServer((_req, res) => {
    res.end();
  });
  await new Promise<void>((resolve) => server.listen(path, resolve));
  try {
    const raw = await RawGrpcClient.connect(path, { authority: path });
    await expect(raw.call("/v2.KeyManagementService/Status", Buffer.alloc(0))).rejects.toThrow(
      "RST_STREAM with code 1", // PROTOCOL_ERROR, before any handler runs
    );
    raw.destroy();
  } finally {
    await new Promise((resolve) => server.close(resolve));
  }
});

const kinds = ["grpc-js", "grpc-go-like"] as const;
const matrix = forms.flatMap((form) => kinds.map((kind) => [form, kind] as const));

describe("§3.1 v2: the probe, writes and parallel reads work with every :authority form", () => {
  it.each(matrix)("%s (%s client)", async (form, kind) => {
    const client = await v2Client(kind, form, "v2");
    // 1.25–1.28 sent the raw path; 1.27/1.28 are the v2 callers among them (v2beta1).
    const api = new ApiserverKmsV2(client, APISERVER_1_27_1_28);
    for (let i = 0; i < 3; i++) await api.probe();
    expect(api.encryptCalls).toBe(1);
    const { stored, seed } = api.state!;
    expect(validateEncryptedObject(stored)).toBeUndefined();
    const reads = await Promise.all(Array.from({ length: 20 }, () => api.decryptObject(stored)));
    for (const r of reads) expect(r.equals(seed)).toBe(true);
  });
});

describe("§3.1 v2alpha1 (1.25/1.26, which sent the raw socket path): every :authority form", () => {
  it.each(matrix)("%s (%s client)", async (form, kind) => {
    const client = await v2Client(kind, form, "v2alpha1");
    const api = new ApiserverKmsV2(client, APISERVER_1_25_1_26);
    expect((await api.probe()).version).toBe("v2alpha1");
    for (let i = 0; i < 5; i++) {
      const dek = randomBytes(32);
      const stored = await api.encryptObject(dek, randomUUID());
      expect((await api.decryptObject(stored)).equals(dek)).toBe(true);
    }
  });
});

describe("§2.4 v1beta1 (never sets an authority: raw path before grpc-go 1.57, percent-encoded after)", () => {
  it.each(matrix)("%s (%s client)", async (form, kind) => {
    const api = new ApiserverKmsV1(await v1Client(kind, form));
    await api.healthCheck();
    const dek = randomBytes(32);
    expect((await api.decrypt(await api.encrypt(dek))).equals(dek)).toBe(true);
    expect(api.versionCalls).toBe(1);
  });
});

it("§3.1 one raw-path connection serves many sequential and concurrent calls (HPACK state kept)", async () => {
  const client = await v2Client("grpc-go-like", "raw socket path", "v2");
  const api = new ApiserverKmsV2(client, APISERVER_1_27_1_28);
  await api.probe();
  const objects: { dek: Buffer; stored: EncryptedObject }[] = [];
  for (let i = 0; i < 50; i++) {
    const dek = randomBytes(32);
    objects.push({ dek, stored: await api.encryptObject(dek) });
    await api.probe();
  }
  const out = await Promise.all(objects.map((o) => api.decryptObject(o.stored)));
  out.forEach((p, i) => {
    expect(p.equals(objects[i]!.dek)).toBe(true);
  });
});
