import { createPrivateKey, X509Certificate, type KeyObject } from "node:crypto";
import { readFile } from "node:fs/promises";
import { createRequire } from "node:module";

/** The identity's own setup (not Entra) keeps it from logging in: the operator must act. */
export class IdentitySetupError extends Error {
  override name = "IdentitySetupError";
}

/** The client certificate file could not be turned into a usable key and certificate. */
export class ClientCertificateError extends IdentitySetupError {
  override name = "ClientCertificateError";
}

/** The few node-forge calls used here (it ships no types). */
interface ForgeBuffer {
  getBytes(): string;
}
interface ForgeBag {
  key?: unknown;
  cert?: unknown;
  asn1?: unknown;
}
interface Forge {
  util: { createBuffer(bytes: string, encoding?: "raw"): ForgeBuffer };
  asn1: {
    fromDer(input: ForgeBuffer, strict?: boolean): unknown;
    toDer(obj: unknown): ForgeBuffer;
  };
  pkcs12: {
    pkcs12FromAsn1(
      obj: unknown,
      strict: boolean,
      password?: string,
    ): { getBags(filter: { bagType: string }): Record<string, ForgeBag[] | undefined> };
  };
  pki: {
    oids: Record<string, string>;
    privateKeyToAsn1(key: unknown): unknown;
    wrapRsaPrivateKey(rsaKey: unknown): unknown;
    certificateToAsn1(cert: unknown): unknown;
  };
}

// node:crypto cannot read PKCS#12; node-forge is CommonJS without types, hence require.
let forgeModule: Forge | undefined;
function forge(): Forge {
  forgeModule ??= createRequire(import.meta.url)("node-forge") as Forge;
  return forgeModule;
}

const CERT_PEM = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g;
const KEY_PEM = /-----BEGIN ((?:ENCRYPTED |RSA |EC )?PRIVATE KEY)-----[\s\S]+?-----END \1-----/;

/**
 * Reads a client certificate (PKCS#12, with or without a password, or PEM holding the private
 * key and the certificate) and returns one PEM: the unencrypted PKCS#8 key, the certificate that
 * matches it, then any other certificates (the chain). Everything stays in memory.
 */
export async function loadClientCertificate(path: string, password: string): Promise<string> {
  let data: Buffer;
  try {
    data = await readFile(path);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? "error";
    throw new ClientCertificateError(`cannot read the client certificate ${path} (${code})`);
  }
  let parts: CertificateParts;
  try {
    const text = data.toString("latin1");
    parts = text.includes("-----BEGIN ")
      ? fromPem(text, path, password)
      : fromPkcs12(data, path, password);
  } finally {
    // The file's bytes may hold the key in the clear (PEM, password-less PFX); the KeyObject is
    // what is used from here. (Strings made on the way, and the PEM the SDK needs, cannot be
    // zeroed: JavaScript strings are immutable.)
    data.fill(0);
  }
  return assemble(parts, path);
}

interface CertificateParts {
  key: KeyObject;
  certificates: X509Certificate[];
}

function fromPem(text: string, path: string, password: string): CertificateParts {
  const keyPem = KEY_PEM.exec(text)?.[0];
  if (keyPem === undefined) throw new ClientCertificateError(`${path} holds no private key`);
  let key: KeyObject;
  try {
    key = createPrivateKey(password === "" ? keyPem : { key: keyPem, passphrase: password });
  } catch {
    throw new ClientCertificateError(
      `cannot read the private key in ${path}: wrong or missing password?`,
    );
  }
  const certificates = (text.match(CERT_PEM) ?? []).map((pem) => certificate(pem, path));
  return { key, certificates };
}

function fromPkcs12(data: Buffer, path: string, password: string): CertificateParts {
  const f = forge();
  let asn1: unknown;
  try {
    asn1 = f.asn1.fromDer(f.util.createBuffer(data.toString("binary"), "raw"), false);
  } catch {
    throw new ClientCertificateError(`${path} is neither PEM nor PKCS#12`);
  }
  // A password-less PFX is keyed by either an empty password or none at all, depending on the
  // tool that made it (RFC 7292 leaves it open); try both.
  const attempts: [unknown, string | undefined][] =
    password === ""
      ? [
          [asn1, ""],
          [asn1, undefined],
        ]
      : [[asn1, password]];
  // PBES2 (OpenSSL 3's default) keys with the UTF-8 bytes while the MAC uses UTF-16, and forge
  // uses one string for both: for a non-ASCII password, decrypt with the UTF-8 bytes and without
  // the MAC (integrity then rests on the decryption and on the key matching its certificate).
  if (/[^\x20-\x7e]/.test(password)) {
    attempts.push([withoutMac(asn1), Buffer.from(password, "utf8").toString("binary")]);
  }
  let p12: ReturnType<Forge["pkcs12"]["pkcs12FromAsn1"]> | undefined;
  for (const [candidate, attempt] of attempts) {
    try {
      p12 = f.pkcs12.pkcs12FromAsn1(candidate, false, attempt);
      break;
    } catch {
      // next attempt
    }
  }
  if (p12 === undefined) {
    throw new ClientCertificateError(`cannot open the PKCS#12 file ${path}: wrong password?`);
  }
  const bags = (type: string): ForgeBag[] =>
    p12.getBags({ bagType: f.pki.oids[type] ?? type })[f.pki.oids[type] ?? type] ?? [];
  const keyBag = [...bags("pkcs8ShroudedKeyBag"), ...bags("keyBag")][0];
  if (keyBag === undefined) throw new ClientCertificateError(`${path} holds no private key`);
  // forge decodes RSA keys; anything else stays as its PrivateKeyInfo.
  const keyInfo =
    keyBag.key !== undefined && keyBag.key !== null
      ? f.pki.wrapRsaPrivateKey(f.pki.privateKeyToAsn1(keyBag.key))
      : keyBag.asn1;
  const keyDer = der(f, keyInfo);
  let key: KeyObject;
  try {
    key = createPrivateKey({ key: keyDer, format: "der", type: "pkcs8" });
  } finally {
    keyDer.fill(0); // the unencrypted private key; OpenSSL holds its own copy now
  }
  const certificates = bags("certBag").map((bag) => {
    const asn1Cert =
      bag.cert !== undefined && bag.cert !== null ? f.pki.certificateToAsn1(bag.cert) : bag.asn1;
    return certificate(der(f, asn1Cert), path);
  });
  return { key, certificates };
}

/** The PFX SEQUENCE { version, authSafe, macData } without its macData. */
function withoutMac(asn1: unknown): unknown {
  const pfx = asn1 as { value?: unknown };
  return Array.isArray(pfx.value) ? { ...pfx, value: pfx.value.slice(0, 2) } : asn1;
}

function der(f: Forge, asn1: unknown): Buffer {
  return Buffer.from(f.asn1.toDer(asn1).getBytes(), "binary");
}

function certificate(data: string | Buffer, path: string): X509Certificate {
  try {
    return new X509Certificate(data);
  } catch {
    throw new ClientCertificateError(`${path} holds an unreadable certificate`);
  }
}

function assemble({ key, certificates }: CertificateParts, path: string): string {
  // Entra signs client assertions with RS256/PS256 only.
  if (key.asymmetricKeyType !== "rsa") {
    throw new ClientCertificateError(
      `the private key in ${path} is ${key.asymmetricKeyType ?? "unknown"}, not RSA`,
    );
  }
  const leaf = certificates.find((c) => c.checkPrivateKey(key));
  if (leaf === undefined) {
    throw new ClientCertificateError(`${path} holds no certificate for its private key`);
  }
  // The SDK takes the first certificate's thumbprint for the assertion header: the leaf first.
  const chain = [leaf, ...certificates.filter((c) => c !== leaf)];
  const keyPem = key.export({ type: "pkcs8", format: "pem" }).toString();
  return [keyPem.trimEnd(), ...chain.map((c) => c.toString().trimEnd())].join("\n") + "\n";
}
