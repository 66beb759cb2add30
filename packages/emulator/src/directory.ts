import { createHash, randomUUID, X509Certificate } from "node:crypto";

/** Identities beyond the one app with a client secret; persisted with the emulator's state. */
export interface PersistedDirectory {
  /** Certificates registered on apps (by client ID), for client-assertion logins. */
  clientCertificates: { clientId: string; certPem: string }[];
  /** Client ID of the machine's system-assigned managed identity; absent = none. */
  systemAssignedClientId?: string;
  userAssignedClientIds: string[];
}

export interface RegisteredCertificate {
  readonly clientId: string;
  readonly certificate: X509Certificate;
  /** base64url SHA-1 and SHA-256 of the DER, as in the x5t / x5t#S256 assertion headers. */
  readonly x5t: string;
  readonly x5tS256: string;
}

export class IdentityDirectory {
  private readonly certificates: RegisteredCertificate[] = [];

  constructor(
    private readonly data: PersistedDirectory,
    private readonly onChange: () => void,
  ) {
    for (const { clientId, certPem } of data.clientCertificates) {
      this.certificates.push(registered(clientId, certPem));
    }
  }

  static initial(systemAssigned: boolean): PersistedDirectory {
    return {
      clientCertificates: [],
      ...(systemAssigned ? { systemAssignedClientId: randomUUID() } : {}),
      userAssignedClientIds: [],
    };
  }

  addClientCertificate(clientId: string, certPem: string): RegisteredCertificate {
    const entry = registered(clientId, certPem);
    const known = this.certificates.find(
      (c) => c.clientId === clientId && c.x5tS256 === entry.x5tS256,
    );
    if (known !== undefined) return known;
    this.certificates.push(entry);
    this.data.clientCertificates.push({ clientId, certPem: entry.certificate.toString() });
    this.onChange();
    return entry;
  }

  certificatesOf(clientId: string): readonly RegisteredCertificate[] {
    return this.certificates.filter((c) => c.clientId === clientId);
  }

  get systemAssignedClientId(): string | undefined {
    return this.data.systemAssignedClientId;
  }

  get userAssignedClientIds(): readonly string[] {
    return this.data.userAssignedClientIds;
  }

  addUserAssigned(clientId: string): void {
    const id = clientId.toLowerCase();
    if (this.data.userAssignedClientIds.includes(id)) return;
    this.data.userAssignedClientIds.push(id);
    this.onChange();
  }

  isUserAssigned(clientId: string): boolean {
    return this.data.userAssignedClientIds.includes(clientId.toLowerCase());
  }

  toJSON(): PersistedDirectory {
    return this.data;
  }
}

function registered(clientId: string, certPem: string): RegisteredCertificate {
  let certificate: X509Certificate;
  try {
    certificate = new X509Certificate(certPem);
  } catch (err) {
    throw new Error("not a PEM X.509 certificate", { cause: err });
  }
  if (certificate.publicKey.asymmetricKeyType !== "rsa") {
    throw new Error("Entra accepts only RSA client certificates");
  }
  return {
    clientId,
    certificate,
    x5t: createHash("sha1").update(certificate.raw).digest("base64url"),
    x5tS256: createHash("sha256").update(certificate.raw).digest("base64url"),
  };
}
