import {
  createPrivateKey,
  createPublicKey,
  generateKeyPair,
  randomBytes,
  type KeyObject,
} from "node:crypto";
import { promisify } from "node:util";
import { badParameter, KeyVaultError } from "./http-io.js";
import type { EmulatorKeyType } from "./types.js";

const generateRsa = promisify(generateKeyPair);

export const KEY_TYPES: readonly EmulatorKeyType[] = ["RSA", "RSA-HSM", "oct-HSM"];
const KEY_NAME = /^[0-9a-zA-Z-]{1,127}$/;
const RSA_SIZES = [2048, 3072, 4096];
const OCT_SIZES = [128, 192, 256];
const RSA_OPS = ["encrypt", "decrypt", "sign", "verify", "wrapKey", "unwrapKey"];
const OCT_OPS = ["encrypt", "decrypt", "wrapKey", "unwrapKey"];
const RECOVERABLE_DAYS = 90;

export type KeyMaterial =
  | { kind: "rsa"; privateKey: KeyObject; publicKey: KeyObject; n: string; e: string }
  | { kind: "oct"; secret: Buffer };

export interface KeyAttributes {
  enabled: boolean;
  nbf?: number;
  exp?: number;
  created: number;
  updated: number;
}

export interface KeyVersion {
  readonly name: string;
  readonly version: string;
  readonly kty: EmulatorKeyType;
  readonly size: number;
  keyOps: string[];
  attributes: KeyAttributes;
  tags: Record<string, string>;
  readonly material: KeyMaterial;
}

export interface DeletedKey {
  /** Versions in creation order; the last one is "latest". */
  readonly versions: KeyVersion[];
  readonly deletedDate: number;
  readonly scheduledPurgeDate: number;
}

export interface CreateParams {
  kty: string;
  size?: number;
  publicExponent?: number;
  keyOps?: string[];
  tags?: Record<string, string>;
  enabled?: boolean;
  nbf?: number;
  exp?: number;
}

export interface UpdateParams {
  enabled?: boolean;
  nbf?: number | null;
  exp?: number | null;
  keyOps?: string[];
  tags?: Record<string, string>;
}

export interface PersistedKeyVersion {
  version: string;
  kty: EmulatorKeyType;
  size: number;
  keyOps: string[];
  attributes: KeyAttributes;
  tags: Record<string, string>;
  privateKeyPem?: string;
  secret?: string;
}

export interface PersistedKey {
  name: string;
  versions: PersistedKeyVersion[];
  deleted?: { deletedDate: number; scheduledPurgeDate: number };
}

export const nowSeconds = (): number => Math.floor(Date.now() / 1000);

export function keyNotFound(name: string, version?: string): KeyVaultError {
  const id = version === undefined || version === "" ? name : `${name}/${version}`;
  return new KeyVaultError(
    404,
    "KeyNotFound",
    `A key with (name/id) ${id} was not found in this key vault. If you recently deleted this key you may be able to recover it using the correct recovery command. For help resolving this issue, please see https://go.microsoft.com/fwlink/?linkid=2125182`,
  );
}

export function isKeyName(name: string): boolean {
  return KEY_NAME.test(name);
}

/**
 * All keys of one vault, by name; each name holds its versions in creation order. Names and
 * versions are case-insensitive (Key Vault object names are; learn.microsoft.com/azure/key-vault/
 * general/about-keys-secrets-certificates, "Object identifiers"), so the maps are keyed by the
 * lower-case name, and kids keep the spelling the key was created with.
 */
export class KeyStore {
  private readonly live = new Map<string, KeyVersion[]>();
  private readonly deleted = new Map<string, DeletedKey>();

  constructor(private readonly onChange: () => void) {}

  has(name: string): boolean {
    return this.live.has(id(name));
  }

  async create(name: string, params: CreateParams): Promise<KeyVersion> {
    if (!isKeyName(name)) {
      throw badParameter(`Key name '${name}' is invalid: use 1-127 characters 0-9, a-z, A-Z, -.`);
    }
    this.ensureNotDeleted(name);
    const kty = parseKeyType(params.kty);
    const octKey = kty === "oct-HSM";
    const size = params.size ?? (octKey ? 256 : 2048);
    if (!(octKey ? OCT_SIZES : RSA_SIZES).includes(size)) {
      throw badParameter(`Key size ${size} is not supported for key type ${kty}.`);
    }
    const keyOps = params.keyOps ?? (octKey ? OCT_OPS : RSA_OPS);
    checkKeyOps(kty, keyOps);
    const material = octKey ? octMaterial(size) : await rsaMaterial(size, params.publicExponent);
    this.ensureNotDeleted(name); // the RSA generation above yields to other requests
    const now = nowSeconds();
    const attributes: KeyAttributes = {
      enabled: params.enabled ?? true,
      created: now,
      updated: now,
    };
    if (params.nbf !== undefined) attributes.nbf = params.nbf;
    if (params.exp !== undefined) attributes.exp = params.exp;
    const key: KeyVersion = {
      name: this.live.get(id(name))?.[0]?.name ?? name,
      version: randomBytes(16).toString("hex"),
      kty,
      size,
      keyOps: [...keyOps],
      attributes,
      tags: { ...params.tags },
      material,
    };
    const versions = this.live.get(id(name)) ?? [];
    versions.push(key);
    this.live.set(id(name), versions);
    this.onChange();
    return key;
  }

  /** A new version with the same type, size, operations and tags as the latest one. */
  async rotate(name: string): Promise<KeyVersion> {
    const latest = this.get(name);
    return this.create(name, {
      kty: latest.kty,
      size: latest.size,
      keyOps: latest.keyOps,
      tags: latest.tags,
    });
  }

  /** version "" or undefined means the latest (most recently created) version. */
  get(name: string, version?: string): KeyVersion {
    const versions = this.live.get(id(name));
    const key =
      version === undefined || version === ""
        ? versions?.at(-1)
        : versions?.find((v) => v.version === version.toLowerCase());
    if (key === undefined) throw keyNotFound(name, version);
    return key;
  }

  /** Every version of a live key; none for a missing or deleted one. */
  versions(name: string): readonly KeyVersion[] {
    return this.live.get(id(name)) ?? [];
  }

  update(name: string, version: string, patch: UpdateParams): KeyVersion {
    const key = this.get(name, version);
    if (patch.keyOps !== undefined) checkKeyOps(key.kty, patch.keyOps);
    const attributes = { ...key.attributes };
    if (patch.enabled !== undefined) attributes.enabled = patch.enabled;
    if (patch.nbf === null) delete attributes.nbf;
    else if (patch.nbf !== undefined) attributes.nbf = patch.nbf;
    if (patch.exp === null) delete attributes.exp;
    else if (patch.exp !== undefined) attributes.exp = patch.exp;
    attributes.updated = nowSeconds();
    key.attributes = attributes;
    if (patch.keyOps !== undefined) key.keyOps = [...patch.keyOps];
    if (patch.tags !== undefined) key.tags = { ...patch.tags };
    this.onChange();
    return key;
  }

  delete(name: string): DeletedKey {
    const versions = this.live.get(id(name));
    if (versions === undefined) throw keyNotFound(name);
    const now = nowSeconds();
    const entry: DeletedKey = {
      versions,
      deletedDate: now,
      scheduledPurgeDate: now + RECOVERABLE_DAYS * 86_400,
    };
    this.live.delete(id(name));
    this.deleted.set(id(name), entry);
    this.onChange();
    return entry;
  }

  getDeleted(name: string): DeletedKey {
    const entry = this.deleted.get(id(name));
    if (entry === undefined) throw deletedKeyNotFound(name);
    return entry;
  }

  purge(name: string): void {
    if (!this.deleted.delete(id(name))) throw deletedKeyNotFound(name);
    this.onChange();
  }

  recover(name: string): KeyVersion {
    const entry = this.getDeleted(name);
    this.deleted.delete(id(name));
    this.live.set(id(name), entry.versions);
    this.onChange();
    return this.get(name);
  }

  toJSON(): PersistedKey[] {
    const out: PersistedKey[] = [];
    for (const versions of this.live.values()) {
      out.push({ name: nameOf(versions), versions: versions.map(persist) });
    }
    for (const entry of this.deleted.values()) {
      out.push({
        name: nameOf(entry.versions),
        versions: entry.versions.map(persist),
        deleted: { deletedDate: entry.deletedDate, scheduledPurgeDate: entry.scheduledPurgeDate },
      });
    }
    return out;
  }

  /** Replaces the contents with persisted keys (from our own state file). */
  load(keys: readonly PersistedKey[]): void {
    this.live.clear();
    this.deleted.clear();
    for (const key of keys) {
      const versions = key.versions.map((v) => restore(key.name, v));
      if (key.deleted === undefined) this.live.set(id(key.name), versions);
      else this.deleted.set(id(key.name), { versions, ...key.deleted });
    }
  }

  private ensureNotDeleted(name: string): void {
    if (this.deleted.has(id(name))) {
      throw new KeyVaultError(
        409,
        "Conflict",
        `Key ${name} is currently in a deleted but recoverable state, and its name cannot be reused; in this state, the key can only be recovered or purged.`,
        "ObjectIsDeletedButRecoverable",
      );
    }
  }
}

const id = (name: string): string => name.toLowerCase();
const nameOf = (versions: readonly KeyVersion[]): string => versions[0]?.name ?? "";

function deletedKeyNotFound(name: string): KeyVaultError {
  return new KeyVaultError(404, "KeyNotFound", `Deleted Key not found: ${name}`);
}

function parseKeyType(kty: string): EmulatorKeyType {
  const found = KEY_TYPES.find((t) => t === kty);
  if (found === undefined) {
    throw badParameter(`Key type '${kty}' is not supported by the emulator.`);
  }
  return found;
}

function checkKeyOps(kty: EmulatorKeyType, keyOps: readonly string[]): void {
  const allowed = kty === "oct-HSM" ? OCT_OPS : [...RSA_OPS, "import", "export"];
  for (const op of keyOps) {
    if (!allowed.includes(op)) {
      throw badParameter(`Key operation '${op}' is not supported for key type ${kty}.`);
    }
  }
}

function octMaterial(bits: number): KeyMaterial {
  return { kind: "oct", secret: randomBytes(bits / 8) };
}

async function rsaMaterial(bits: number, publicExponent = 65537): Promise<KeyMaterial> {
  if (!Number.isSafeInteger(publicExponent) || publicExponent < 3 || publicExponent % 2 === 0) {
    throw badParameter(`Public exponent ${publicExponent} is not supported.`);
  }
  const { privateKey } = await generateRsa("rsa", { modulusLength: bits, publicExponent });
  return rsaFromPrivate(privateKey);
}

function rsaFromPrivate(privateKey: KeyObject): KeyMaterial {
  const publicKey = createPublicKey(privateKey);
  const jwk = publicKey.export({ format: "jwk" });
  if (jwk.n === undefined || jwk.e === undefined) throw new Error("RSA public key without n/e");
  return { kind: "rsa", privateKey, publicKey, n: jwk.n, e: jwk.e };
}

function persist(key: KeyVersion): PersistedKeyVersion {
  const out: PersistedKeyVersion = {
    version: key.version,
    kty: key.kty,
    size: key.size,
    keyOps: key.keyOps,
    attributes: key.attributes,
    tags: key.tags,
  };
  if (key.material.kind === "rsa") {
    out.privateKeyPem = key.material.privateKey.export({ type: "pkcs8", format: "pem" }).toString();
  } else {
    out.secret = key.material.secret.toString("base64");
  }
  return out;
}

function restore(name: string, v: PersistedKeyVersion): KeyVersion {
  let material: KeyMaterial;
  if (v.privateKeyPem !== undefined) material = rsaFromPrivate(createPrivateKey(v.privateKeyPem));
  else if (v.secret !== undefined)
    material = { kind: "oct", secret: Buffer.from(v.secret, "base64") };
  else throw new Error(`state file: key ${name}/${v.version} has no material`);
  return {
    name,
    version: v.version,
    kty: parseKeyType(v.kty),
    size: v.size,
    keyOps: [...v.keyOps],
    attributes: { ...v.attributes },
    tags: { ...v.tags },
    material,
  };
}
