import { createPrivateKey, randomBytes, webcrypto, X509Certificate } from "node:crypto";
import { ensureReflectMetadata } from "./reflect-metadata.js";

/** The emulator's own CA (persisted) and the server certificate it signs at every start. */

export interface CaMaterial {
  certPem: string;
  keyPem: string;
}

export interface ServerCertificate {
  certPem: string;
  keyPem: string;
}

type X509 = typeof import("@peculiar/x509");

const EC = { name: "ECDSA", namedCurve: "P-256", hash: "SHA-256" } as const;
const DAY_MS = 86_400_000;
const CA_LIFETIME_DAYS = 730;
const SERVER_LIFETIME_DAYS = 365;
const RENEW_BEFORE_DAYS = 30;

let x509Module: Promise<X509> | undefined;

// A devDependency: loaded only when an emulator starts, never by the plugin itself.
export async function loadX509(): Promise<X509> {
  ensureReflectMetadata();
  x509Module ??= import("@peculiar/x509").then(
    (m) => {
      const mod = m as X509 & { default?: X509 };
      return typeof mod.X509CertificateGenerator === "function" ? mod : (mod.default ?? mod);
    },
    (err: unknown) => {
      throw new Error(
        "the emulator needs the development dependencies (@peculiar/x509): run `npm ci` in the keyvault-kms repository",
        { cause: err },
      );
    },
  );
  return x509Module;
}

const crypto = webcrypto;

function serial(): string {
  const bytes = randomBytes(16);
  bytes[0] = (bytes[0] ?? 0) & 0x7f; // positive
  return bytes.toString("hex");
}

async function exportKeyPem(key: webcrypto.CryptoKey): Promise<string> {
  const der = Buffer.from(await crypto.subtle.exportKey("pkcs8", key));
  return createPrivateKey({ key: der, format: "der", type: "pkcs8" })
    .export({ type: "pkcs8", format: "pem" })
    .toString();
}

export async function createCa(): Promise<CaMaterial> {
  const x509 = await loadX509();
  const keys = await crypto.subtle.generateKey(EC, true, ["sign", "verify"]);
  const now = Date.now();
  const cert = await x509.X509CertificateGenerator.createSelfSigned(
    {
      serialNumber: serial(),
      name: `CN=keyvault-kms emulator CA ${randomBytes(4).toString("hex")}`,
      notBefore: new Date(now - 3_600_000),
      notAfter: new Date(now + CA_LIFETIME_DAYS * DAY_MS),
      keys,
      signingAlgorithm: EC,
      extensions: [
        new x509.BasicConstraintsExtension(true, 0, true),
        new x509.KeyUsagesExtension(
          x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign,
          true,
        ),
        await x509.SubjectKeyIdentifierExtension.create(keys.publicKey, false, crypto),
      ],
    },
    crypto,
  );
  return { certPem: cert.toString("pem"), keyPem: await exportKeyPem(keys.privateKey) };
}

/** True when the CA is unreadable or expires within RENEW_BEFORE_DAYS. */
export function caNeedsRenewal(ca: CaMaterial): boolean {
  try {
    const cert = new X509Certificate(ca.certPem);
    return new Date(cert.validTo).getTime() - Date.now() < RENEW_BEFORE_DAYS * DAY_MS;
  } catch {
    return true;
  }
}

/** A leaf for 127.0.0.1, ::1 and localhost, signed by the CA. */
export async function issueServerCertificate(ca: CaMaterial): Promise<ServerCertificate> {
  const x509 = await loadX509();
  const caCert = new x509.X509Certificate(ca.certPem);
  const caDer = createPrivateKey(ca.keyPem).export({ type: "pkcs8", format: "der" });
  const caKey = await crypto.subtle.importKey("pkcs8", caDer, EC, false, ["sign"]);
  const keys = await crypto.subtle.generateKey(EC, true, ["sign", "verify"]);
  const now = Date.now();
  const notAfter = Math.min(now + SERVER_LIFETIME_DAYS * DAY_MS, caCert.notAfter.getTime());
  const cert = await x509.X509CertificateGenerator.create(
    {
      serialNumber: serial(),
      subject: "CN=localhost",
      issuer: caCert.subject,
      notBefore: new Date(now - 3_600_000),
      notAfter: new Date(notAfter),
      publicKey: keys.publicKey,
      signingKey: caKey,
      signingAlgorithm: EC,
      extensions: [
        new x509.BasicConstraintsExtension(false, undefined, true),
        new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
        new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth]),
        new x509.SubjectAlternativeNameExtension([
          { type: "ip", value: "127.0.0.1" },
          { type: "ip", value: "::1" },
          { type: "dns", value: "localhost" },
        ]),
        await x509.SubjectKeyIdentifierExtension.create(keys.publicKey, false, crypto),
        await x509.AuthorityKeyIdentifierExtension.create(caCert.publicKey, false, crypto),
      ],
    },
    crypto,
  );
  return { certPem: cert.toString("pem"), keyPem: await exportKeyPem(keys.privateKey) };
}
