// A real grpc-go client (test/grpc-go/kmsprobe) against the whole plugin, dialing the way
// kube-apiserver's KMS client does, in the three :authority forms it has sent over the years:
// the raw socket path (1.25–1.28; also KMS v1 clients built with grpc-go < 1.57), the
// percent-encoded path (1.29–1.31) and "localhost" (1.32+), and one with userinfo ("@"). Optional: needs Go and Debian's
// grpc-go sources (scripts/install-grpc-go.sh); without them the suite is skipped and says why.
import * as grpc from "@grpc/grpc-js";
import { execFile, spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, readFileSync } from "node:fs";
import { mkdir, mkdtemp, rename, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { startPluginHarness, type PluginHarness } from "../helpers/plugin-harness.js";
import { report } from "../helpers/report.js";

const probeDir = fileURLToPath(new URL("../grpc-go/kmsprobe", import.meta.url));
const probeSource = readFileSync(join(probeDir, "main.go"));
/** Debian's GOPATH tree (golang-google-grpc-dev, golang-google-protobuf-dev); overridable. */
const debianGopath = process.env.GRPC_GO_GOPATH ?? "/usr/share/gocode";
const needed = [
  "google.golang.org/grpc/clientconn.go",
  "google.golang.org/protobuf/encoding/protowire",
];

/** Builds offline in GOPATH mode against Debian's sources: no module proxy, no toolchain download. */
const goEnv = (gopath: string): NodeJS.ProcessEnv => ({
  ...process.env,
  GO111MODULE: "off",
  GOPATH: `${debianGopath}:${gopath}`,
  GOPROXY: "off",
  GOFLAGS: "",
  GOTOOLCHAIN: "local",
  GOCACHE: join(tmpdir(), "kvkms-go-build-cache"),
});

function goVersion(): string | undefined {
  const r = spawnSync("go", ["version"], { encoding: "utf8", env: goEnv(tmpdir()) });
  return r.status === 0 ? r.stdout.trim() : undefined;
}

const version = goVersion();
const missing = needed.filter((p) => !existsSync(join(debianGopath, "src", p)));
const skipReason =
  version === undefined
    ? "`go` is not installed"
    : missing.length > 0
      ? `grpc-go/protobuf sources missing under ${debianGopath}/src (${missing.join(", ")})`
      : undefined;
if (skipReason !== undefined) {
  report(
    `grpc-go-client.test.ts skipped: ${skipReason}; run scripts/install-grpc-go.sh to enable it`,
  );
}

interface ProbeResult {
  grpcGo: string;
  mode: string;
  authority: string;
  calls: number;
  failed: number;
  errors: Record<string, number>;
  ok: boolean;
  keyId: string;
  statusVersion: string;
}

const run = (
  file: string,
  args: readonly string[],
  timeoutMs: number,
  options: { env?: NodeJS.ProcessEnv; cwd?: string } = {},
): Promise<{ code: number; stdout: string; stderr: string }> =>
  new Promise((resolve) => {
    // Asynchronous on purpose: the plugin under test runs in this process's event loop.
    execFile(
      file,
      args,
      { ...options, timeout: timeoutMs, maxBuffer: 1 << 24 },
      (err, stdout, stderr) => {
        const code = err === null ? 0 : typeof err.code === "number" ? err.code : -1;
        resolve({ code, stdout, stderr: err !== null && stderr === "" ? err.message : stderr });
      },
    );
  });

/** Builds the probe once per (source, go version); later runs reuse the binary in tmpdir. */
async function buildProbe(): Promise<string> {
  const key = createHash("sha256")
    .update(probeSource)
    .update(version ?? "")
    .digest("hex")
    .slice(0, 16);
  const dir = join(tmpdir(), `kvkms-kmsprobe-${key}`);
  const binary = join(dir, "kmsprobe");
  if (existsSync(binary)) return binary;
  await mkdir(dir, { recursive: true });
  const work = await mkdtemp(join(dir, "build-"));
  try {
    const out = join(work, "kmsprobe");
    const built = await run("go", ["build", "-o", out, "."], 170_000, {
      env: goEnv(work),
      cwd: probeDir,
    });
    if (built.code !== 0) throw new Error(`go build failed (${built.code}):\n${built.stderr}`);
    await rename(out, binary); // atomic: a parallel build of the same source just wins or loses
  } finally {
    await rm(work, { recursive: true, force: true });
  }
  return binary;
}

const probe = async (
  binary: string,
  socketPath: string,
  mode: string,
  extra: readonly string[] = [],
): Promise<{ result: ProbeResult | undefined; code: number; stderr: string; stdout: string }> => {
  const r = await run(binary, ["-socket", socketPath, "-mode", mode, ...extra], 60_000);
  const line = r.stdout.trim().split("\n").pop() ?? "";
  let result: ProbeResult | undefined;
  try {
    result = JSON.parse(line) as ProbeResult;
  } catch {
    result = undefined;
  }
  return { result, code: r.code, stderr: r.stderr, stdout: r.stdout };
};

const suite = skipReason === undefined ? describe : describe.skip;

suite(`grpc-go client${skipReason === undefined ? "" : ` (skipped: ${skipReason})`}`, () => {
  let binary: string;
  let h: PluginHarness | undefined;

  beforeAll(async () => {
    binary = await buildProbe();
    h = await startPluginHarness();
  }, 180_000);

  afterAll(async () => {
    await h?.close();
  });

  // 1 v2 Status + 1 pair, v2alpha1 Status + 1 pair, v1beta1 Version + 1 pair, then 200 sequential
  // and 50 concurrent v2 pairs on the same connection.
  const calls = 3 + 6 + 2 * (200 + 50);
  const keyIds = new Set<string | undefined>();

  it.each([
    ["raw", "the raw socket path (kube-apiserver 1.25–1.28)"],
    ["percent", "the percent-encoded path (kube-apiserver 1.29–1.31)"],
    ["localhost", '"localhost" (kube-apiserver 1.32+)'],
    ["userinfo", "with userinfo, refused by Node 24's HTTP/2 layer (never sent by kube-apiserver)"],
  ])("serves :authority %s: %s", async (mode) => {
    const { result, code, stderr, stdout } = await probe(binary, h!.socketPath, mode);
    expect({ result, stderr: result === undefined ? `${stderr}\n${stdout}` : "" }).toMatchObject({
      result: { ok: true, errors: {}, failed: 0, calls, mode, statusVersion: "v2" },
      stderr: "",
    });
    expect(code).toBe(0);
    const authority = {
      raw: h!.socketPath,
      localhost: "localhost",
      userinfo: "kube-apiserver@localhost",
    }[mode];
    if (authority !== undefined) expect(result?.authority).toBe(authority);
    else expect(result?.authority).not.toContain("/");
    // The probe already requires Encrypt's key_id to equal Status's; all modes see one key.
    expect(result?.keyId).not.toBe("");
    keyIds.add(result?.keyId);
    expect(keyIds.size).toBe(1);
  });

  // Keeps the suite honest: this grpc-go really sends the path, which stock grpc-js refuses.
  it("control: a plain grpc-js server resets the raw-path authority from the same client", async () => {
    const server = new grpc.Server();
    const socketPath = join(h!.dir, "stock.sock");
    await new Promise<void>((resolve, reject) => {
      server.bindAsync(`unix:${socketPath}`, grpc.ServerCredentials.createInsecure(), (err) => {
        if (err) reject(err);
        else resolve();
      });
    });
    try {
      const { result, code } = await probe(binary, socketPath, "raw", ["-n", "0", "-c", "0"]);
      expect(code).toBe(1);
      // grpc-go 1.33: "rpc error: code = Internal desc = stream terminated by RST_STREAM with
      // error code: PROTOCOL_ERROR".
      expect(Object.keys(result?.errors ?? {})).toContainEqual(
        expect.stringMatching(/^\/v2\.KeyManagementService\/Status: .*PROTOCOL_ERROR/),
      );
    } finally {
      server.forceShutdown();
    }
  });
});
