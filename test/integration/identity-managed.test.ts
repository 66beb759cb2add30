import { createCredential } from "../../src/keyvault/index.js";
import {
  identityConfig,
  kmsCode,
  startIdentityBench,
  wrapRoundTrip,
  type IdentityBench,
} from "../helpers/emulator-identity.js";

// msal-node picks the IMDS endpoint from AZURE_POD_IDENTITY_AUTHORITY_HOST at the first managed
// identity token request and keeps it for the whole process (a static), so every test in this
// file shares one emulator, and the variable is set before the first request.
let bench: IdentityBench;
let userAssigned: string;
const saved = process.env["AZURE_POD_IDENTITY_AUTHORITY_HOST"];

beforeAll(async () => {
  bench = await startIdentityBench();
  userAssigned = bench.emu.addUserAssignedIdentity();
  process.env["AZURE_POD_IDENTITY_AUTHORITY_HOST"] = bench.emu.imdsUrl;
});

afterAll(async () => {
  if (saved === undefined) delete process.env["AZURE_POD_IDENTITY_AUTHORITY_HOST"];
  else process.env["AZURE_POD_IDENTITY_AUTHORITY_HOST"] = saved;
  await bench.close();
});

beforeEach(() => {
  bench.emu.resetCounters();
});

it("system-assigned managed identity (useManagedIdentityExtension) logs in through IMDS", async () => {
  const config = await identityConfig(bench, {
    cloud: "AzurePublicCloud",
    useManagedIdentityExtension: true,
  });
  expect(config.identity).toEqual({ kind: "managed-identity" });
  await wrapRoundTrip(bench, config);
  expect(bench.emu.counters()).toMatchObject({ imds: 1, token: 0, unwrapkey: 1 });
});

it("user-assigned managed identity (userAssignedIdentityID) logs in through IMDS", async () => {
  const config = await identityConfig(bench, {
    UseManagedIdentityExtension: "true",
    userAssignedIdentityID: ` ${userAssigned} `,
  });
  expect(config.identity).toEqual({ kind: "managed-identity", clientId: userAssigned });
  await wrapRoundTrip(bench, config);
  expect(bench.emu.counters()).toMatchObject({ imds: 1, token: 0 });
});

it("managed identity wins over a client secret in the same azure.json", async () => {
  const config = await identityConfig(bench, {
    useManagedIdentityExtension: true,
    tenantId: bench.emu.tenantId,
    aadClientId: bench.emu.clientId,
    aadClientSecret: bench.emu.clientSecret,
  });
  expect(config.identity.kind).toBe("managed-identity");
  await wrapRoundTrip(bench, config);
  // No client-secret login; msal-node's managed identity token cache is process-wide, so the
  // system-assigned token of the first test may be reused (no second IMDS request).
  expect(bench.emu.counters()).toMatchObject({ token: 0, unwrapkey: 1 });
});

it("an unknown user-assigned identity gets no token", async () => {
  const config = await identityConfig(bench, {
    useManagedIdentityExtension: true,
    userAssignedIdentityID: "00000000-0000-0000-0000-00000000dead",
  });
  const code = await kmsCode(wrapRoundTrip(bench, config));
  expect(["UNAUTHENTICATED", "UNAVAILABLE"]).toContain(code);
  expect(bench.emu.counters()["unwrapkey"]).toBe(0);
});

it("refuses to let AZURE_FEDERATED_TOKEN_FILE & co. turn managed identity into workload identity", async () => {
  const trap = {
    AZURE_FEDERATED_TOKEN_FILE: "/var/run/secrets/azure/tokens/azure-identity-token",
    AZURE_CLIENT_ID: "c",
    AZURE_TENANT_ID: "t",
  };
  await expect(identityConfig(bench, { useManagedIdentityExtension: true }, trap)).rejects.toThrow(
    /AZURE_FEDERATED_TOKEN_FILE/,
  );
  // The same variables appearing later in the process: the credential refuses too.
  const credential = createCredential({
    identity: { kind: "managed-identity" },
    authorityHost: bench.emu.authorityHost,
  });
  const before = { ...process.env };
  Object.assign(process.env, trap);
  try {
    await expect(credential.getToken("https://vault.azure.net/.default")).rejects.toThrow(
      /workload identity/,
    );
  } finally {
    for (const name of ["AZURE_FEDERATED_TOKEN_FILE", "AZURE_CLIENT_ID", "AZURE_TENANT_ID"]) {
      const value = before[name];
      if (value === undefined) Reflect.deleteProperty(process.env, name);
      else process.env[name] = value;
    }
  }
  expect(bench.emu.counters()).toMatchObject({ imds: 0, token: 0 });
});
