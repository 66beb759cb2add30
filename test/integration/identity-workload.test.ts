import { join } from "node:path";
import { describeConfig } from "../../src/config/index.js";
import {
  identityConfig,
  kmsCode,
  startIdentityBench,
  wrapRoundTrip,
  type IdentityBench,
} from "../helpers/emulator-identity.js";

let bench: IdentityBench;
const SUBJECT = "system:serviceaccount:kube-system:keyvault-kms";

beforeAll(async () => {
  bench = await startIdentityBench();
});

afterAll(async () => {
  await bench.close();
});

function workloadEnv(tokenFile: string, clientId = bench.emu.clientId): NodeJS.ProcessEnv {
  return {
    AZURE_FEDERATED_TOKEN_FILE: tokenFile,
    AZURE_CLIENT_ID: clientId,
    AZURE_TENANT_ID: bench.emu.tenantId,
  };
}

it("workload identity: no azure.json, a projected service account token exchanged for a token", async () => {
  const file = join(bench.dir, "sa-token");
  bench.emu.issueFederatedToken({ subject: SUBJECT, file });
  const config = await identityConfig(bench, undefined, {
    ...workloadEnv(file),
    // Workload identity wins over environment client secrets.
    AZURE_CLIENT_SECRET: "not used",
  });
  expect(config.identity).toEqual({
    kind: "workload-identity",
    tenantId: bench.emu.tenantId,
    clientId: bench.emu.clientId,
    tokenFilePath: file,
  });
  expect(JSON.stringify(describeConfig(config))).not.toContain("not used");
  bench.emu.resetCounters();
  await wrapRoundTrip(bench, config);
  expect(bench.emu.counters()).toMatchObject({ token: 1, imds: 0, unwrapkey: 1 });
});

it("workload identity with a user-assigned managed identity's client ID", async () => {
  const file = join(bench.dir, "sa-token-mi");
  bench.emu.issueFederatedToken({ subject: SUBJECT, file });
  const mi = bench.emu.addUserAssignedIdentity();
  await wrapRoundTrip(bench, await identityConfig(bench, undefined, workloadEnv(file, mi)));
});

it.each([
  ["an expired service account token", { lifetimeSeconds: -60 }],
  ["a token for another audience", { audience: "https://kubernetes.default.svc" }],
])("%s is UNAUTHENTICATED", async (_name, options) => {
  const file = join(bench.dir, `sa-bad-${Math.random().toString(36).slice(2)}`);
  bench.emu.issueFederatedToken({ subject: SUBJECT, file, ...options });
  const config = await identityConfig(bench, undefined, workloadEnv(file));
  expect(await kmsCode(wrapRoundTrip(bench, config))).toBe("UNAUTHENTICATED");
});

it("an app the directory does not know is UNAUTHENTICATED", async () => {
  const file = join(bench.dir, "sa-token-unknown");
  bench.emu.issueFederatedToken({ subject: SUBJECT, file });
  const config = await identityConfig(
    bench,
    undefined,
    workloadEnv(file, "11111111-2222-3333-4444-555555555555"),
  );
  expect(await kmsCode(wrapRoundTrip(bench, config))).toBe("UNAUTHENTICATED");
});
