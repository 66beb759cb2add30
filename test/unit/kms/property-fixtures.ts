/**
 * Shared set-up of the hostile-input properties: an in-process service over a fake Key Vault
 * that records every key it is asked about, valid envelopes with what they encrypt, and the
 * invariants every outcome must satisfy.
 */
import { randomBytes } from "node:crypto";
import fc from "fast-check";
import { KeyAllowlist } from "../../../src/kms/allowlist.js";
import { KmsError, type KmsErrorCode } from "../../../src/kms/errors.js";
import { keyIdOf } from "../../../src/kms/key-id.js";
import type {
  KeyReference,
  KeyState,
  KeyWrapper,
  LegacyAlgorithm,
  UnwrapOptions,
  WrappedSeed,
} from "../../../src/kms/key-wrapper.js";
import { createKmsService, type ManagedKmsService } from "../../../src/kms/service.js";
import type { KmsApi } from "../../../src/kms/service-types.js";
import { FakeKeyWrapper, sharedKeyPair } from "../../helpers/fake-key-wrapper.js";
import { ctx } from "./fixtures.js";

/** The architecture's "Errors → gRPC status" table. */
export const TABLE_CODES: readonly KmsErrorCode[] = [
  "INVALID_ARGUMENT",
  "FAILED_PRECONDITION",
  "UNAUTHENTICATED",
  "PERMISSION_DENIED",
  "UNAVAILABLE",
  "DEADLINE_EXCEEDED",
  "CANCELLED",
  "INTERNAL",
];

/** A KeyWrapper that forwards to a fake and records every key a request would go to. */
export class RecordingWrapper implements KeyWrapper {
  readonly asked: KeyReference[] = [];
  constructor(readonly fake: FakeKeyWrapper) {}
  refresh(): Promise<KeyState> {
    return this.fake.refresh();
  }
  wrap(seed: Uint8Array, key: KeyReference): Promise<WrappedSeed> {
    this.asked.push(key);
    return this.fake.wrap(seed, key);
  }
  unwrap(wrapped: WrappedSeed, options?: UnwrapOptions): Promise<Uint8Array> {
    this.asked.push(wrapped.key);
    return this.fake.unwrap(wrapped, options);
  }
  decryptLegacy(
    key: KeyReference,
    algorithm: LegacyAlgorithm,
    ciphertext: Uint8Array,
    options?: UnwrapOptions,
  ): Promise<Uint8Array> {
    this.asked.push(key);
    return this.fake.decryptLegacy(key, algorithm, ciphertext, options);
  }
}

export interface Sample {
  readonly plaintext: Buffer;
  readonly ciphertext: Buffer;
  readonly keyId: string;
}

export interface PropertyWorld {
  readonly fake: FakeKeyWrapper;
  /** Decrypts with a cache of 2 seeds, so unwraps keep happening. */
  readonly reader: ManagedKmsService;
  readonly wrapper: RecordingWrapper;
  readonly allowlist: KeyAllowlist;
  readonly key: KeyReference;
  readonly keyId: string;
  /** Envelopes of several seeds (the reader's own current one included) and plaintext sizes. */
  readonly samples: readonly Sample[];
  /** Genuine Azure/kubernetes-kms v2 ciphertexts (Key Vault RSA-OAEP-256 of 32 bytes). */
  readonly legacy: readonly Sample[];
}

const SIZES = [1, 16, 32, 100, 400, 600];

export async function propertyWorld(): Promise<PropertyWorld> {
  const fake = new FakeKeyWrapper({ keyPair: sharedKeyPair() });
  const key = fake.currentKey();
  const allowlist = new KeyAllowlist(key);
  const samples: Sample[] = [];
  // Two writers (two seeds) whose envelopes the reader must unwrap; plus the reader's own.
  for (let w = 0; w < 2; w++) {
    const writer = createKmsService({ wrapper: fake.withSameKeys(), allowlist, pollIntervalMs: 0 });
    await writer.start();
    for (const size of SIZES) {
      const plaintext = randomBytes(size);
      const r = writer.encrypt(plaintext, ctx());
      samples.push({ plaintext, ciphertext: Buffer.from(r.ciphertext), keyId: r.keyId });
    }
    writer.close();
  }
  const wrapper = new RecordingWrapper(fake.withSameKeys());
  const reader = createKmsService({ wrapper, allowlist, pollIntervalMs: 0, cacheSize: 2 });
  await reader.start();
  for (const size of SIZES.slice(0, 3)) {
    const plaintext = randomBytes(size);
    const r = reader.encrypt(plaintext, ctx());
    samples.push({ plaintext, ciphertext: Buffer.from(r.ciphertext), keyId: r.keyId });
  }
  const keyId = keyIdOf(key);
  const legacy: Sample[] = [];
  for (let i = 0; i < 3; i++) {
    const plaintext = randomBytes(32);
    const raw = fake.legacyEncrypt(key, "RSA-OAEP-256", plaintext);
    legacy.push({ plaintext, ciphertext: Buffer.from(raw.toString("base64url"), "latin1"), keyId });
  }
  return { fake, reader, wrapper, allowlist, key, keyId, samples, legacy };
}

/** The Go plugin's five v2 annotations (two checked, three informational). */
export function legacyAnnotations(): Map<string, Uint8Array> {
  return new Map<string, Uint8Array>([
    ["version.azure.akv.io", Buffer.from("1")],
    ["algorithm.azure.akv.io", Buffer.from("RSA-OAEP-256")],
    ["date.azure.akv.io", Buffer.from(new Date().toUTCString())],
    ["x-ms-request-id.azure.akv.io", Buffer.from("8d1bd8c5-0000-0000-0000-000000000000")],
    ["x-ms-keyvault-region.azure.akv.io", Buffer.from("westeurope")],
  ]);
}

export const apis = fc.constantFrom<KmsApi>("v2", "v2alpha1", "v1beta1");

/** Annotation keys of every charset and length. */
export const annotationKey = fc.oneof(
  fc.string({ maxLength: 300 }),
  fc.string({ unit: "binary", maxLength: 80 }),
  fc.string({ unit: "grapheme", maxLength: 40 }),
  fc.domain(),
  fc.domain().map((d) => `${d}.`),
  fc.domain().map((d) => d.toUpperCase()),
  fc.constantFrom(
    "version.azure.akv.io",
    "algorithm.azure.akv.io",
    "date.azure.akv.io",
    "a.b",
    "",
    ".",
    "x".repeat(254),
    `${"a".repeat(64)}.io`,
  ),
  fc
    .array(fc.stringMatching(/^[a-z0-9]([-a-z0-9]{0,70}[a-z0-9])?$/), {
      minLength: 1,
      maxLength: 6,
    })
    .map((labels) => labels.join(".")),
);

/** Values: small, RSA-sized text, or huge (past the 32 KiB total). */
export const annotationValue = fc.oneof(
  { weight: 6, arbitrary: fc.uint8Array({ maxLength: 64 }) },
  {
    weight: 2,
    arbitrary: fc.constantFrom("1", "RSA-OAEP-256", "2", "").map((s) => Buffer.from(s)),
  },
  {
    weight: 1,
    arbitrary: fc.integer({ min: 30_000, max: 40_000 }).map((n) => Buffer.alloc(n, 0x61)),
  },
);

/** Annotation maps of every shape: empty, a few, many entries, huge values. */
export const annotationMaps = fc.oneof(
  { weight: 2, arbitrary: fc.constant(new Map<string, Uint8Array>()) },
  {
    weight: 6,
    arbitrary: fc
      .array(fc.tuple(annotationKey, annotationValue), { minLength: 1, maxLength: 6 })
      .map((e) => new Map(e)),
  },
  {
    weight: 1,
    arbitrary: fc
      .array(fc.tuple(annotationKey, fc.uint8Array({ maxLength: 300 })), {
        minLength: 50,
        maxLength: 300,
      })
      .map((e) => new Map(e)),
  },
  {
    weight: 2,
    arbitrary: fc.array(fc.tuple(annotationKey, annotationValue), { maxLength: 3 }).map((e) => {
      const m = legacyAnnotations();
      for (const [k, v] of e) m.set(k, v);
      return m;
    }),
  },
);

/** key_ids: the real one, hex of the right length, and arbitrary text. */
export function keyIds(real: string): fc.Arbitrary<string> {
  return fc.oneof(
    fc.constant(real),
    fc.constant(""),
    fc.stringMatching(/^[0-9a-f]{64}$/),
    fc.string({ maxLength: 100 }),
    fc.string({ unit: "binary", maxLength: 200 }),
    fc.constant("x".repeat(5000)),
  );
}

/** A mutation of a byte string. */
export type Mutation =
  | { kind: "flip"; at: number; bit: number }
  | { kind: "swap"; a: number; b: number }
  | { kind: "insert"; at: number; bytes: Uint8Array }
  | { kind: "delete"; at: number; count: number }
  | { kind: "set"; at: number; value: number };

export const mutation: fc.Arbitrary<Mutation> = fc.oneof(
  fc.record({ kind: fc.constant("flip" as const), at: fc.nat(), bit: fc.nat({ max: 7 }) }),
  fc.record({ kind: fc.constant("swap" as const), a: fc.nat(), b: fc.nat() }),
  fc.record({
    kind: fc.constant("insert" as const),
    at: fc.nat(),
    bytes: fc.uint8Array({ minLength: 1, maxLength: 8 }),
  }),
  fc.record({
    kind: fc.constant("delete" as const),
    at: fc.nat(),
    count: fc.integer({ min: 1, max: 8 }),
  }),
  fc.record({
    kind: fc.constant("set" as const),
    at: fc.nat(),
    value: fc.constantFrom(0x00, 0x01, 0x02, 0x7f, 0x80, 0xff),
  }),
);

/** Applies mutations in order (positions taken modulo the current length). */
export function mutate(input: Buffer, mutations: readonly Mutation[]): Buffer {
  let out = Buffer.from(input);
  for (const m of mutations) {
    const n = out.length;
    switch (m.kind) {
      case "flip":
        if (n > 0) out[m.at % n]! ^= 1 << m.bit;
        break;
      case "swap":
        if (n > 0) {
          const a = m.a % n;
          const b = m.b % n;
          const t = out[a]!;
          out[a] = out[b]!;
          out[b] = t;
        }
        break;
      case "set":
        if (n > 0) out[m.at % n] = m.value;
        break;
      case "insert": {
        const at = m.at % (n + 1);
        out = Buffer.concat([out.subarray(0, at), m.bytes, out.subarray(at)]);
        break;
      }
      case "delete": {
        if (n === 0) break;
        const at = m.at % n;
        out = Buffer.concat([out.subarray(0, at), out.subarray(at + m.count)]);
        break;
      }
    }
  }
  return out;
}

export interface OutcomeTally {
  decrypted: number;
  byCode: Record<string, number>;
}

export function newTally(): OutcomeTally {
  return { decrypted: 0, byCode: {} };
}

/**
 * Runs one Decrypt and checks the invariants: success only with exactly `expected` (undefined:
 * the input was never a ciphertext, so success is a wrong plaintext); failure only as a KmsError
 * whose code is in the table and is not INTERNAL (all these inputs are the caller's); no request
 * for a key outside the allowlist.
 */
export async function expectDecryptOutcome(
  world: PropertyWorld,
  run: () => Promise<Uint8Array>,
  expected: Buffer | undefined,
  tally?: OutcomeTally,
): Promise<void> {
  const askedBefore = world.wrapper.asked.length;
  let result: Uint8Array | undefined;
  let error: unknown;
  try {
    result = await run();
  } catch (e) {
    error = e;
  }
  for (const key of world.wrapper.asked.slice(askedBefore)) {
    if (!world.allowlist.allows(key)) {
      throw new Error(
        `a request went to a key outside the allowlist: ${key.vaultHost}/${key.keyName}`,
      );
    }
  }
  if (result !== undefined) {
    if (expected === undefined) {
      throw new Error(`Decrypt returned ${result.length} bytes for input that was never encrypted`);
    }
    if (!Buffer.from(result).equals(expected))
      throw new Error("Decrypt returned a wrong plaintext");
    if (tally !== undefined) tally.decrypted++;
    return;
  }
  if (!(error instanceof KmsError)) {
    throw new Error(`Decrypt threw a non-KmsError: ${String(error)}`, { cause: error });
  }
  if (!TABLE_CODES.includes(error.code) || error.code === "INTERNAL") {
    throw new Error(`Decrypt failed with ${error.code} for caller input: ${error.message}`, {
      cause: error,
    });
  }
  if (tally !== undefined) tally.byCode[error.code] = (tally.byCode[error.code] ?? 0) + 1;
}
