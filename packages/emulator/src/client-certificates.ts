import { createHash, createPrivateKey, randomBytes, webcrypto, X509Certificate } from "node:crypto";
import { chmodSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { join } from "node:path";
import { loadX509 } from "./certificates.js";

/** A client certificate for an Entra app, as a tenant admin would make and upload one. */
export interface ClientCertificateMaterial {
  readonly certPem: string;
  /** Unencrypted PKCS#8. */
  readonly keyPem: string;
  /** base64url SHA-256 of the certificate (the x5t#S256 header of assertions). */
  readonly x5tS256: string;
}

export interface ClientCertificateFiles extends ClientCertificateMaterial {
  /** Private key then certificate, unencrypted. */
  readonly pemFile: string;
  /** PKCS#12 protected by `password` ("" = a password-less PFX). */
  readonly pfxFile: string;
  readonly password: string;
}

const RSA = {
  name: "RSASSA-PKCS1-v1_5",
  hash: "SHA-256",
  modulusLength: 2048,
  publicExponent: new Uint8Array([1, 0, 1]),
} as const;

/** A 2048-bit RSA key and a self-signed certificate for it (Entra takes self-signed ones). */
export async function generateClientCertificate(
  subject = "CN=keyvault-kms emulator client",
): Promise<ClientCertificateMaterial> {
  const x509 = await loadX509();
  const keys = await webcrypto.subtle.generateKey(RSA, true, ["sign", "verify"]);
  const now = Date.now();
  const serial = randomBytes(16);
  serial[0] = (serial[0] ?? 0) & 0x7f;
  const cert = await x509.X509CertificateGenerator.createSelfSigned(
    {
      serialNumber: serial.toString("hex"),
      name: subject,
      notBefore: new Date(now - 3_600_000),
      notAfter: new Date(now + 365 * 86_400_000),
      keys,
      signingAlgorithm: RSA,
      extensions: [new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true)],
    },
    webcrypto,
  );
  const der = Buffer.from(await webcrypto.subtle.exportKey("pkcs8", keys.privateKey));
  const keyPem = createPrivateKey({ key: der, format: "der", type: "pkcs8" })
    .export({ type: "pkcs8", format: "pem" })
    .toString();
  const certPem = cert.toString("pem");
  return { certPem, keyPem, x5tS256: thumbprint(certPem) };
}

export function thumbprint(certPem: string): string {
  return createHash("sha256").update(new X509Certificate(certPem).raw).digest("base64url");
}

/** The node-forge calls that build a PKCS#12 (it ships no types). */
interface Forge {
  pki: {
    privateKeyFromPem(pem: string): unknown;
    certificateFromPem(pem: string): unknown;
  };
  pkcs12: {
    toPkcs12Asn1(
      key: unknown,
      certs: unknown[],
      password: string | null,
      options: { algorithm: string; generateLocalKeyId: boolean; friendlyName: string },
    ): unknown;
  };
  asn1: { toDer(obj: unknown): { getBytes(): string } };
}

/** PKCS#12 with AES-256 (PBES2); a null password leaves the key bag unencrypted. */
export function toPkcs12(material: ClientCertificateMaterial, password: string | null): Buffer {
  const forge = createRequire(import.meta.url)("node-forge") as Forge;
  const asn1 = forge.pkcs12.toPkcs12Asn1(
    forge.pki.privateKeyFromPem(material.keyPem),
    [forge.pki.certificateFromPem(material.certPem)],
    password,
    { algorithm: "aes256", generateLocalKeyId: true, friendlyName: "keyvault-kms client" },
  );
  return Buffer.from(forge.asn1.toDer(asn1).getBytes(), "binary");
}

/** Writes NAME.pem (key + certificate) and NAME.pfx into dir, both mode 0600. */
export function writeClientCertificateFiles(
  dir: string,
  name: string,
  material: ClientCertificateMaterial,
  password: string,
): ClientCertificateFiles {
  const pemFile = join(dir, `${name}.pem`);
  const pfxFile = join(dir, `${name}.pfx`);
  writePrivate(pemFile, `${material.keyPem.trimEnd()}\n${material.certPem.trimEnd()}\n`);
  writePrivate(pfxFile, toPkcs12(material, password === "" ? null : password));
  return { ...material, pemFile, pfxFile, password };
}

function writePrivate(file: string, data: string | Buffer): void {
  writeFileSync(file, data, { mode: 0o600 });
  chmodSync(file, 0o600);
}
