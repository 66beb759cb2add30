import { execFileSync } from "node:child_process";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { describeConfig } from "../../src/config/index.js";
import type { ClientCertificateInfo } from "@keyvault-kms/emulator";
import {
  identityConfig,
  kmsCode,
  startIdentityBench,
  wrapRoundTrip,
  type IdentityBench,
} from "../helpers/emulator-identity.js";

let bench: IdentityBench;
let withPassword: ClientCertificateInfo;
let noPassword: ClientCertificateInfo;
let unknown: ClientCertificateInfo;
const PASSWORD = "pfx pass wörd";

beforeAll(async () => {
  bench = await startIdentityBench();
  withPassword = await bench.emu.createClientCertificate({ name: "with", password: PASSWORD });
  noPassword = await bench.emu.createClientCertificate({ name: "without" });
  unknown = await bench.emu.createClientCertificate({ name: "unknown", register: false });
});

afterAll(async () => {
  await bench.close();
});

const sp = () => ({
  cloud: "AzurePublicCloud",
  tenantId: bench.emu.tenantId,
  aadClientId: bench.emu.clientId,
});

describe("service principal identities from azure.json log in and wrap/unwrap", () => {
  it("client secret", async () => {
    const config = await identityConfig(bench, {
      ...sp(),
      aadClientSecret: bench.emu.clientSecret,
    });
    expect(config.identity.kind).toBe("client-secret");
    bench.emu.resetCounters();
    await wrapRoundTrip(bench, config);
    expect(bench.emu.counters()).toMatchObject({ token: 1, unwrapkey: 1 });
  });

  it("PKCS#12 with a password (certificate client assertion)", async () => {
    const config = await identityConfig(bench, {
      ...sp(),
      aadClientCertPath: withPassword.pfxFile,
      aadClientCertPassword: PASSWORD,
    });
    expect(config.identity).toMatchObject({
      kind: "client-certificate",
      certificatePath: withPassword.pfxFile,
    });
    bench.emu.resetCounters();
    await wrapRoundTrip(bench, config);
    expect(bench.emu.counters()).toMatchObject({ token: 1, unwrapkey: 1 });
  });

  it("PKCS#12 without a password (the Go plugin refused these)", async () => {
    const config = await identityConfig(bench, { ...sp(), aadClientCertPath: noPassword.pfxFile });
    await wrapRoundTrip(bench, config);
  });

  it("PEM with the private key and the certificate", async () => {
    const config = await identityConfig(bench, {
      ...sp(),
      aadClientCertPath: withPassword.pemFile,
    });
    await wrapRoundTrip(bench, config);
  });

  const openssl = ["/usr/bin/openssl", "/usr/local/bin/openssl"].find((p) => existsSync(p));
  (openssl === undefined ? it.skip : it)(
    "PKCS#12 made by openssl: current defaults (AES-256, SHA-256 MAC) and -legacy-style 3DES",
    async () => {
      const run = (file: string, extra: string[]) => {
        execFileSync(openssl ?? "openssl", [
          "pkcs12",
          "-export",
          "-inkey",
          withPassword.pemFile,
          "-in",
          withPassword.pemFile,
          "-out",
          file,
          "-passout",
          `pass:${PASSWORD}`,
          ...extra,
        ]);
        return file;
      };
      const modern = run(join(bench.dir, "openssl-modern.pfx"), []);
      const legacy = run(join(bench.dir, "openssl-3des.pfx"), [
        "-keypbe",
        "PBE-SHA1-3DES",
        "-certpbe",
        "PBE-SHA1-3DES",
        "-macalg",
        "sha1",
      ]);
      for (const file of [modern, legacy]) {
        const config = await identityConfig(bench, {
          ...sp(),
          aadClientCertPath: file,
          aadClientCertPassword: PASSWORD,
        });
        await wrapRoundTrip(bench, config);
      }
    },
  );
});

describe("service principal identities from the environment (no azure.json)", () => {
  it("AZURE_CLIENT_ID + AZURE_TENANT_ID + AZURE_CLIENT_SECRET", async () => {
    const config = await identityConfig(bench, undefined, {
      AZURE_CLIENT_ID: bench.emu.clientId,
      AZURE_TENANT_ID: bench.emu.tenantId,
      AZURE_CLIENT_SECRET: bench.emu.clientSecret,
    });
    expect(config.identity).toMatchObject({ kind: "client-secret", source: "environment" });
    await wrapRoundTrip(bench, config);
  });

  it("AZURE_CLIENT_CERTIFICATE_PATH + AZURE_CLIENT_CERTIFICATE_PASSWORD", async () => {
    const config = await identityConfig(bench, undefined, {
      AZURE_CLIENT_ID: bench.emu.clientId,
      AZURE_TENANT_ID: bench.emu.tenantId,
      AZURE_CLIENT_CERTIFICATE_PATH: withPassword.pfxFile,
      AZURE_CLIENT_CERTIFICATE_PASSWORD: PASSWORD,
    });
    expect(config.identity).toMatchObject({ kind: "client-certificate", source: "environment" });
    await wrapRoundTrip(bench, config);
  });
});

describe("refused certificates are UNAUTHENTICATED", () => {
  it("a wrong PKCS#12 password", async () => {
    const config = await identityConfig(bench, {
      ...sp(),
      aadClientCertPath: withPassword.pfxFile,
      aadClientCertPassword: "not the password",
    });
    expect(await kmsCode(wrapRoundTrip(bench, config))).toBe("UNAUTHENTICATED");
  });

  it("a certificate not registered on the app", async () => {
    const config = await identityConfig(bench, { ...sp(), aadClientCertPath: unknown.pfxFile });
    bench.emu.resetCounters();
    expect(await kmsCode(wrapRoundTrip(bench, config))).toBe("UNAUTHENTICATED");
    expect(bench.emu.counters()["token"]).toBeGreaterThan(0);
  });

  it("a certificate file that does not exist", async () => {
    const config = await identityConfig(bench, {
      ...sp(),
      aadClientCertPath: join(bench.dir, "missing.pfx"),
    });
    expect(await kmsCode(wrapRoundTrip(bench, config))).toBe("UNAUTHENTICATED");
  });
});

it("describeConfig names the identity but no secret, password or key", async () => {
  const configs = [
    await identityConfig(bench, { ...sp(), aadClientSecret: bench.emu.clientSecret }),
    await identityConfig(bench, {
      ...sp(),
      aadClientCertPath: withPassword.pfxFile,
      aadClientCertPassword: PASSWORD,
    }),
  ];
  for (const config of configs) {
    const text = JSON.stringify(describeConfig(config));
    expect(text).toContain(bench.emu.clientId);
    expect(text).not.toContain(bench.emu.clientSecret);
    expect(text).not.toContain(PASSWORD);
    expect(text).not.toContain("PRIVATE KEY");
  }
});
