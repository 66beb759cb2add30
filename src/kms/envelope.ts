/**
 * The ciphertext format (docs/architecture.md, "The envelope"). Binary, big-endian, version 1:
 *
 * | offset | size     | field                                                            |
 * |--------|----------|------------------------------------------------------------------|
 * | 0      | 1        | format version = 0x01 (never an ASCII base64url character)       |
 * | 1      | 1        | number of wrapped copies = 1 (room for a second vault later)     |
 * |        |          | wrap block, repeated `count` times:                              |
 * | +0     | 1        |   wrap algorithm: 1 = RSA-OAEP-256, 2 = A256KW                   |
 * | +1     | 1        |   H = vault host length (1..253), lowercase DNS name / IP        |
 * | +2     | H        |   vault host                                                     |
 * |        | 2        |   vault port (0 = none, i.e. 443)                                |
 * |        | 1        |   N = key name length (1..127), `[0-9a-zA-Z-]`                   |
 * |        | N        |   key name                                                       |
 * |        | 1        |   V: bit 7 = packed hex, bits 0..6 = stored length               |
 * |        | V & 0x7f |   key version: text `[0-9a-zA-Z]{1,64}`, or lowercase hex packed |
 * |        |          |   to bytes (Key Vault's 32-char versions take 16 bytes)          |
 * |        | 2        |   W = wrapped seed length (RSA: 256..512, A256KW: 40)            |
 * |        | W        |   wrapped seed                                                   |
 * |        | 32       | HKDF salt (fresh per Encrypt)                                    |
 * |        | 12       | AES-GCM nonce (fresh per Encrypt)                                |
 * |        | 2        | P = ciphertext length (1..65535, = plaintext length)             |
 * |        | P        | AES-256-GCM ciphertext                                           |
 * |        | 16       | AES-GCM tag                                                      |
 * |        | 4        | check value: SHA-256(all preceding bytes)[0..4]                  |
 *
 * The header (every byte before the ciphertext) is the AES-GCM additional data.
 * Size = 76 + H + N + stored(V) + W + P. With the longest names (H 253, N 127), a Key Vault
 * version (32 hex → 16 bytes), RSA-4096 (W 512) and a 32-byte plaintext that is 1016 ≤ 1024.
 * A 32-char version that is not lowercase hex would be stored as text (+16 bytes, 1032).
 *
 * The check value catches accidental corruption at parse time, before any Key Vault call; GCM
 * (keyed by the seed) is what catches deliberate tampering.
 */
import { createHash } from "node:crypto";
import { KmsError } from "./errors.js";
import type { KeyReference, WrapAlgorithm, WrappedSeed } from "./key-wrapper.js";

export const ENVELOPE_FORMAT_VERSION = 0x01;
export const SALT_LENGTH = 32;
export const NONCE_LENGTH = 12;
export const TAG_LENGTH = 16;
export const CHECK_LENGTH = 4;
export const MAX_HOST_LENGTH = 253;
export const MAX_KEY_NAME_LENGTH = 127;
export const MAX_KEY_VERSION_LENGTH = 64;
export const MAX_WRAPPED_LENGTH = 512;
export const MAX_BODY_LENGTH = 0xffff;
/** Bytes after the wrap blocks besides the ciphertext itself: salt, nonce, length, tag, check. */
export const ENVELOPE_TAIL_OVERHEAD = SALT_LENGTH + NONCE_LENGTH + 2 + TAG_LENGTH + CHECK_LENGTH;
/** Bytes of a wrap block besides host, name, stored version and wrapped seed. */
export const WRAP_BLOCK_OVERHEAD = 1 + 1 + 2 + 1 + 1 + 2;
/** Today's envelopes carry exactly one wrapped copy of the seed. */
export const MAX_WRAPS = 1;

const ALGORITHM_IDS: Readonly<Record<WrapAlgorithm, number>> = { "RSA-OAEP-256": 1, A256KW: 2 };
const ALGORITHMS: readonly (WrapAlgorithm | undefined)[] = [undefined, "RSA-OAEP-256", "A256KW"];
const PACKED_VERSION = 0x80;
const A256KW_WRAPPED_LENGTH = 40; // 32-byte seed + 8-byte integrity block (RFC 3394)
const RSA_MIN_WRAPPED_LENGTH = 256; // Key Vault's smallest RSA key is 2048 bits

const HOST_PATTERN =
  /^(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)*|\[[0-9a-f:.]{2,45}\])$/;
const PORT_PATTERN = /^[1-9][0-9]{0,4}$/;
const KEY_NAME_PATTERN = /^[0-9a-zA-Z-]{1,127}$/;
const KEY_VERSION_PATTERN = /^[0-9a-zA-Z]{1,64}$/;
const PACKABLE_VERSION_PATTERN = /^(?:[0-9a-f]{2}){1,32}$/;

/** A parsed envelope. Byte fields are views into the parsed input (no copies). */
export interface Envelope {
  readonly formatVersion: number;
  /** The wrapped seed and the versioned key it is wrapped under. */
  readonly seed: WrappedSeed;
  /** Canonical bytes of the wrap block: algorithm, key reference and wrapped seed. */
  readonly wrapBlock: Uint8Array;
  /** Hex SHA-256 of `wrapBlock` (computed on first use: the current seed needs no digest). */
  readonly seedCacheKey: string;
  readonly salt: Uint8Array;
  readonly nonce: Uint8Array;
  /** Every byte before the ciphertext: the AES-GCM additional data. */
  readonly header: Uint8Array;
  readonly ciphertext: Uint8Array;
  readonly tag: Uint8Array;
}

/** Slots of a freshly laid-out envelope, to be filled in place by the sealer. */
export interface EnvelopeDraft {
  readonly bytes: Buffer;
  readonly header: Buffer;
  /** Salt then nonce, adjacent so one random fill covers both. */
  readonly saltAndNonce: Buffer;
  readonly salt: Buffer;
  readonly nonce: Buffer;
  readonly bodyOffset: number;
  readonly tagOffset: number;
}

function invalid(message: string): KmsError {
  return new KmsError("INVALID_ARGUMENT", `invalid ciphertext: ${message}`);
}

interface HostPort {
  readonly host: string;
  readonly port: number;
}

function splitHost(vaultHost: string): HostPort | undefined {
  const colon = vaultHost.lastIndexOf(":");
  // An unbracketed IPv6 address has colons but no port; it is rejected by HOST_PATTERN below.
  const hasPort = colon > 0 && (vaultHost.startsWith("[") ? vaultHost[colon - 1] === "]" : true);
  const host = hasPort ? vaultHost.slice(0, colon) : vaultHost;
  if (host.length > MAX_HOST_LENGTH || !HOST_PATTERN.test(host)) return undefined;
  if (!hasPort) return { host, port: 0 };
  const portText = vaultHost.slice(colon + 1);
  const port = Number(portText);
  if (!PORT_PATTERN.test(portText) || port > 0xffff) return undefined;
  return { host, port };
}

function storedVersionLength(version: string): number {
  return PACKABLE_VERSION_PATTERN.test(version) ? version.length / 2 : version.length;
}

/**
 * Why `ref` cannot be written into an envelope, or undefined when it can. The message names the
 * offending field, never key material.
 */
export function keyReferenceProblem(ref: KeyReference): string | undefined {
  if (splitHost(ref.vaultHost) === undefined) {
    return `vault host ${JSON.stringify(ref.vaultHost.slice(0, 300))} is not a lowercase host name of at most ${MAX_HOST_LENGTH} characters with an optional :port`;
  }
  if (!KEY_NAME_PATTERN.test(ref.keyName)) {
    return `key name ${JSON.stringify(ref.keyName.slice(0, 200))} is not 1..${MAX_KEY_NAME_LENGTH} characters of [0-9a-zA-Z-]`;
  }
  if (!KEY_VERSION_PATTERN.test(ref.keyVersion)) {
    return `key version ${JSON.stringify(ref.keyVersion.slice(0, 100))} is not 1..${MAX_KEY_VERSION_LENGTH} characters of [0-9a-zA-Z]`;
  }
  return undefined;
}

function wrappedLengthProblem(algorithm: WrapAlgorithm, length: number): string | undefined {
  switch (algorithm) {
    case "RSA-OAEP-256":
      return length >= RSA_MIN_WRAPPED_LENGTH && length <= MAX_WRAPPED_LENGTH
        ? undefined
        : `an RSA-OAEP-256 wrapped seed is ${RSA_MIN_WRAPPED_LENGTH}..${MAX_WRAPPED_LENGTH} bytes, got ${length}`;
    case "A256KW":
      return length === A256KW_WRAPPED_LENGTH
        ? undefined
        : `an A256KW wrapped seed is ${A256KW_WRAPPED_LENGTH} bytes, got ${length}`;
  }
}

/** Why `wrapped` cannot be written into an envelope, or undefined when it can. */
export function wrappedSeedProblem(wrapped: WrappedSeed): string | undefined {
  if (!Object.hasOwn(ALGORITHM_IDS, wrapped.algorithm)) {
    return `unknown wrap algorithm ${JSON.stringify(wrapped.algorithm.slice(0, 40))}`;
  }
  return (
    keyReferenceProblem(wrapped.key) ??
    wrappedLengthProblem(wrapped.algorithm, wrapped.wrapped.length)
  );
}

function wrapBlockLength(wrapped: WrappedSeed): number {
  const { host } = splitHost(wrapped.key.vaultHost) ?? { host: wrapped.key.vaultHost };
  return (
    WRAP_BLOCK_OVERHEAD +
    host.length +
    wrapped.key.keyName.length +
    storedVersionLength(wrapped.key.keyVersion) +
    wrapped.wrapped.length
  );
}

/** Envelope size in bytes for a plaintext of `plaintextLength` sealed under `wrapped`. */
export function envelopeSize(plaintextLength: number, wrapped: WrappedSeed): number {
  return 2 + wrapBlockLength(wrapped) + ENVELOPE_TAIL_OVERHEAD + plaintextLength;
}

/** Canonical bytes of one wrap block; throws KmsError INVALID_ARGUMENT if not representable. */
export function encodeWrapBlock(wrapped: WrappedSeed): Buffer {
  const problem = wrappedSeedProblem(wrapped);
  if (problem !== undefined) {
    throw new KmsError(
      "INVALID_ARGUMENT",
      `cannot write key reference into an envelope: ${problem}`,
    );
  }
  const { host, port } = splitHost(wrapped.key.vaultHost) as HostPort;
  const { keyName, keyVersion } = wrapped.key;
  const packed = PACKABLE_VERSION_PATTERN.test(keyVersion);
  const out = Buffer.allocUnsafe(wrapBlockLength(wrapped));
  let at = out.writeUInt8(ALGORITHM_IDS[wrapped.algorithm], 0);
  at = out.writeUInt8(host.length, at);
  at += out.write(host, at, "latin1");
  at = out.writeUInt16BE(port, at);
  at = out.writeUInt8(keyName.length, at);
  at += out.write(keyName, at, "latin1");
  if (packed) {
    at = out.writeUInt8(PACKED_VERSION | (keyVersion.length / 2), at);
    at += out.write(keyVersion, at, "hex");
  } else {
    at = out.writeUInt8(keyVersion.length, at);
    at += out.write(keyVersion, at, "latin1");
  }
  at = out.writeUInt16BE(wrapped.wrapped.length, at);
  out.set(wrapped.wrapped, at);
  return out;
}

/** Cache key of a wrapped seed: hex SHA-256 of its canonical wrap block. */
export function wrapBlockDigest(block: Uint8Array): string {
  return createHash("sha256").update(block).digest("hex");
}

/**
 * The bytes every envelope sealed by one seed starts with (version, count, wrap block): a seed
 * encodes them once, so Encrypt only copies them.
 */
export function encodeEnvelopePrefix(wrapped: WrappedSeed): Buffer {
  const block = encodeWrapBlock(wrapped);
  const out = Buffer.allocUnsafe(2 + block.length);
  out[0] = ENVELOPE_FORMAT_VERSION;
  out[1] = 1;
  out.set(block, 2);
  return out;
}

/** Lays out an envelope after `prefix`; the caller fills salt, nonce, body and tag, then `finishEnvelope`. */
export function draftEnvelope(prefix: Uint8Array, plaintextLength: number): EnvelopeDraft {
  if (
    !Number.isInteger(plaintextLength) ||
    plaintextLength < 1 ||
    plaintextLength > MAX_BODY_LENGTH
  ) {
    throw new KmsError(
      "INVALID_ARGUMENT",
      `plaintext must be 1..${MAX_BODY_LENGTH} bytes, got ${plaintextLength}`,
    );
  }
  const saltOffset = prefix.length;
  const nonceOffset = saltOffset + SALT_LENGTH;
  const lengthOffset = nonceOffset + NONCE_LENGTH;
  const bodyOffset = lengthOffset + 2;
  const tagOffset = bodyOffset + plaintextLength;
  const bytes = Buffer.allocUnsafe(tagOffset + TAG_LENGTH + CHECK_LENGTH);
  bytes.set(prefix, 0);
  bytes.writeUInt16BE(plaintextLength, lengthOffset);
  return {
    bytes,
    header: bytes.subarray(0, bodyOffset),
    saltAndNonce: bytes.subarray(saltOffset, lengthOffset),
    salt: bytes.subarray(saltOffset, nonceOffset),
    nonce: bytes.subarray(nonceOffset, lengthOffset),
    bodyOffset,
    tagOffset,
  };
}

function checkValue(bytes: Uint8Array, end: number): Buffer {
  return createHash("sha256").update(bytes.subarray(0, end)).digest();
}

/** Writes the check value over everything before it. */
export function finishEnvelope(bytes: Buffer): Buffer {
  const end = bytes.length - CHECK_LENGTH;
  checkValue(bytes, end).copy(bytes, end, 0, CHECK_LENGTH);
  return bytes;
}

/** Parts of an envelope whose AEAD output is already known (tests, tools). */
export interface EnvelopeParts {
  readonly seed: WrappedSeed;
  readonly salt: Uint8Array;
  readonly nonce: Uint8Array;
  readonly ciphertext: Uint8Array;
  readonly tag: Uint8Array;
}

/** Encodes a whole envelope from its parts. The sealer uses draftEnvelope to avoid copies. */
export function encodeEnvelope(parts: EnvelopeParts): Buffer {
  if (parts.salt.length !== SALT_LENGTH || parts.nonce.length !== NONCE_LENGTH) {
    throw new KmsError("INVALID_ARGUMENT", "salt must be 32 bytes and nonce 12 bytes");
  }
  if (parts.tag.length !== TAG_LENGTH) {
    throw new KmsError("INVALID_ARGUMENT", "AES-GCM tag must be 16 bytes");
  }
  const draft = draftEnvelope(encodeEnvelopePrefix(parts.seed), parts.ciphertext.length);
  draft.salt.set(parts.salt);
  draft.nonce.set(parts.nonce);
  draft.bytes.set(parts.ciphertext, draft.bodyOffset);
  draft.bytes.set(parts.tag, draft.tagOffset);
  return finishEnvelope(draft.bytes);
}

/** Smallest well-formed envelope: 1-char host and name, A256KW, 1-byte ciphertext. */
const MIN_ENVELOPE_LENGTH =
  2 + WRAP_BLOCK_OVERHEAD + 1 + 1 + 1 + A256KW_WRAPPED_LENGTH + ENVELOPE_TAIL_OVERHEAD + 1;

/** Reads fields with a bounds check on every step, so a bad length can never read past the end. */
class Reader {
  at = 0;
  constructor(readonly bytes: Buffer) {}

  take(length: number, what: string): Buffer {
    const end = this.at + length;
    if (end > this.bytes.length) throw invalid(`truncated in ${what}`);
    const out = this.bytes.subarray(this.at, end);
    this.at = end;
    return out;
  }

  u8(what: string): number {
    return this.take(1, what)[0] as number;
  }

  u16(what: string): number {
    return this.take(2, what).readUInt16BE(0);
  }
}

function readWrapBlock(r: Reader): WrappedSeed {
  const algorithm = ALGORITHMS[r.u8("wrap algorithm")];
  if (algorithm === undefined) throw invalid("unknown wrap algorithm");

  const hostLength = r.u8("vault host length");
  if (hostLength < 1 || hostLength > MAX_HOST_LENGTH) {
    throw invalid(`vault host length ${hostLength} is outside 1..${MAX_HOST_LENGTH}`);
  }
  const host = r.take(hostLength, "vault host").toString("latin1");
  if (!HOST_PATTERN.test(host)) throw invalid("vault host is not a lowercase host name");
  const port = r.u16("vault port");

  const nameLength = r.u8("key name length");
  if (nameLength < 1 || nameLength > MAX_KEY_NAME_LENGTH) {
    throw invalid(`key name length ${nameLength} is outside 1..${MAX_KEY_NAME_LENGTH}`);
  }
  const keyName = r.take(nameLength, "key name").toString("latin1");
  if (!KEY_NAME_PATTERN.test(keyName)) throw invalid("key name is not [0-9a-zA-Z-]");

  const versionByte = r.u8("key version length");
  const versionLength = versionByte & ~PACKED_VERSION;
  let keyVersion: string;
  if ((versionByte & PACKED_VERSION) !== 0) {
    if (versionLength < 1 || versionLength > MAX_KEY_VERSION_LENGTH / 2) {
      throw invalid(`packed key version length ${versionLength} is outside 1..32`);
    }
    keyVersion = r.take(versionLength, "key version").toString("hex");
  } else {
    if (versionLength < 1 || versionLength > MAX_KEY_VERSION_LENGTH) {
      throw invalid(`key version length ${versionLength} is outside 1..${MAX_KEY_VERSION_LENGTH}`);
    }
    keyVersion = r.take(versionLength, "key version").toString("latin1");
    if (!KEY_VERSION_PATTERN.test(keyVersion)) throw invalid("key version is not [0-9a-zA-Z]");
    // One encoding per key reference, so the wrap block digest is a stable cache key.
    if (PACKABLE_VERSION_PATTERN.test(keyVersion)) throw invalid("key version is not packed");
  }

  const wrappedLength = r.u16("wrapped seed length");
  const problem = wrappedLengthProblem(algorithm, wrappedLength);
  if (problem !== undefined) throw invalid(problem);
  const wrapped = r.take(wrappedLength, "wrapped seed");

  const vaultHost = port === 0 ? host : `${host}:${port}`;
  return { key: { vaultHost, keyName, keyVersion }, algorithm, wrapped };
}

class ParsedEnvelope implements Envelope {
  readonly formatVersion = ENVELOPE_FORMAT_VERSION;
  #seedCacheKey: string | undefined;

  constructor(
    readonly seed: WrappedSeed,
    readonly wrapBlock: Uint8Array,
    readonly salt: Uint8Array,
    readonly nonce: Uint8Array,
    readonly header: Uint8Array,
    readonly ciphertext: Uint8Array,
    readonly tag: Uint8Array,
  ) {}

  get seedCacheKey(): string {
    this.#seedCacheKey ??= wrapBlockDigest(this.wrapBlock);
    return this.#seedCacheKey;
  }
}

function asBuffer(bytes: Uint8Array): Buffer {
  return Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length);
}

/**
 * Parses and checks an envelope. Throws only KmsError INVALID_ARGUMENT, whose message names the
 * problem and never contains key material. Decrypt's size limits (per API) are the caller's.
 */
export function parseEnvelope(input: Uint8Array): Envelope {
  const bytes = asBuffer(input);
  if (bytes.length === 0) throw invalid("empty");
  if (bytes[0] !== ENVELOPE_FORMAT_VERSION) {
    throw invalid(
      `unknown envelope format version 0x${(bytes[0] as number).toString(16).padStart(2, "0")}`,
    );
  }
  if (bytes.length < MIN_ENVELOPE_LENGTH) {
    throw invalid(`${bytes.length} bytes is shorter than any envelope (${MIN_ENVELOPE_LENGTH})`);
  }
  const checkAt = bytes.length - CHECK_LENGTH;
  if (!checkValue(bytes, checkAt).subarray(0, CHECK_LENGTH).equals(bytes.subarray(checkAt))) {
    throw invalid("check value mismatch: the ciphertext was corrupted or truncated");
  }

  const r = new Reader(bytes.subarray(0, checkAt));
  r.at = 1;
  const count = r.u8("wrap count");
  if (count < 1 || count > MAX_WRAPS) {
    throw invalid(
      `envelope carries ${count} wrapped seeds; this version reads exactly ${MAX_WRAPS}`,
    );
  }
  const blockStart = r.at;
  const seed = readWrapBlock(r);
  const wrapBlock = bytes.subarray(blockStart, r.at);

  const salt = r.take(SALT_LENGTH, "salt");
  const nonce = r.take(NONCE_LENGTH, "nonce");
  const bodyLength = r.u16("ciphertext length");
  if (bodyLength === 0) throw invalid("ciphertext length is 0");
  const header = bytes.subarray(0, r.at);
  const ciphertext = r.take(bodyLength, "ciphertext");
  const tag = r.take(TAG_LENGTH, "tag");
  if (r.at !== checkAt) throw invalid(`${checkAt - r.at} trailing bytes`);

  return new ParsedEnvelope(seed, wrapBlock, salt, nonce, header, ciphertext, tag);
}
