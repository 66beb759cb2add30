/**
 * Tenant IDs are case-insensitive, but Key Vault's challenge names the tenant in lower case and
 * @azure/identity compared it with the configured one case-sensitively: an upper-case tenantId
 * was refused with CredentialUnavailableError before any token request. Every identity the
 * plugin supports that takes a tenant, with the tenant in upper case, through the real credential
 * and the real Key Vault wrapper.
 */
import { join } from "node:path";
import type { ClientCertificateInfo } from "@keyvault-kms/emulator";
import {
  identityConfig,
  startIdentityBench,
  wrapRoundTrip,
  type IdentityBench,
} from "../helpers/emulator-identity.js";

let bench: IdentityBench;
let certificate: ClientCertificateInfo;
let upper: string;

beforeAll(async () => {
  bench = await startIdentityBench();
  certificate = await bench.emu.createClientCertificate({ name: "tenant-case" });
  upper = bench.emu.tenantId.toUpperCase();
  expect(upper).not.toBe(bench.emu.tenantId);
});

afterAll(async () => {
  await bench.close();
});

async function roundTrip(config: Awaited<ReturnType<typeof identityConfig>>) {
  bench.emu.resetCounters();
  await wrapRoundTrip(bench, config);
  expect(bench.emu.counters()).toMatchObject({ token: 1, unwrapkey: 1 });
}

it("azure.json tenantId in upper case, client secret", async () => {
  const config = await identityConfig(bench, {
    cloud: "AzurePublicCloud",
    tenantId: upper,
    aadClientId: bench.emu.clientId,
    aadClientSecret: bench.emu.clientSecret,
  });
  expect(config.identity).toMatchObject({ kind: "client-secret", tenantId: upper });
  await roundTrip(config);
});

it("azure.json tenantId in upper case, client certificate", async () => {
  const config = await identityConfig(bench, {
    cloud: "AzurePublicCloud",
    tenantId: upper,
    aadClientId: bench.emu.clientId,
    aadClientCertPath: certificate.pfxFile,
  });
  expect(config.identity).toMatchObject({ kind: "client-certificate", tenantId: upper });
  await roundTrip(config);
});

it("AZURE_TENANT_ID in upper case, client secret from the environment", async () => {
  const config = await identityConfig(bench, undefined, {
    AZURE_CLIENT_ID: bench.emu.clientId,
    AZURE_TENANT_ID: upper,
    AZURE_CLIENT_SECRET: bench.emu.clientSecret,
  });
  expect(config.identity).toMatchObject({ kind: "client-secret", tenantId: upper });
  await roundTrip(config);
});

it("AZURE_TENANT_ID in mixed case, workload identity", async () => {
  const file = join(bench.dir, "sa-token");
  bench.emu.issueFederatedToken({ subject: "system:serviceaccount:kube-system:kms", file });
  const mixed = bench.emu.tenantId.replace(/[a-f]/g, (c, i: number) =>
    i % 2 ? c.toUpperCase() : c,
  );
  const config = await identityConfig(bench, undefined, {
    AZURE_FEDERATED_TOKEN_FILE: file,
    AZURE_CLIENT_ID: bench.emu.clientId,
    AZURE_TENANT_ID: mixed,
  });
  expect(config.identity).toMatchObject({ kind: "workload-identity", tenantId: mixed });
  await roundTrip(config);
});
