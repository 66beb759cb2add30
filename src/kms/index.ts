/** The domain's public API (docs/architecture.md, "Modules"). */
export { abortError, cancelledReason, deadlineExceededReason, raceAbort } from "./abort.js";
export { KeyAllowlist, type AllowedKey } from "./allowlist.js";
export { annotationKeyProblem, MAX_ANNOTATIONS_SIZE, validateAnnotations } from "./annotations.js";
export {
  encodeEnvelope,
  ENVELOPE_FORMAT_VERSION,
  envelopeSize,
  keyReferenceProblem,
  parseEnvelope,
  wrappedSeedProblem,
  type Envelope,
  type EnvelopeParts,
} from "./envelope.js";
export { isKmsError, KmsError, toKmsError, type KmsErrorCode } from "./errors.js";
export { handOver, isHandedOver } from "./handoff.js";
export { keyIdFromUrl, keyIdNames, keyIdOf, keyUrl } from "./key-id.js";
export type {
  KeyReference,
  KeyState,
  KeyWrapper,
  LegacyAlgorithm,
  RevocationReason,
  UnwrapOptions,
  WrapAlgorithm,
  WrappedSeed,
} from "./key-wrapper.js";
export { decodeLegacyCiphertext, looksLikeLegacyCiphertext } from "./legacy-ciphertext.js";
export { MAX_LEGACY_V1_VERSIONS } from "./legacy-decrypt.js";
export { MAX_V1_CIPHERTEXT, MAX_V1_PLAINTEXT, MAX_V2_CIPHERTEXT } from "./limits.js";
export type { KmsObserver, SeedCause } from "./observer.js";
export { DEFAULT_CACHE_SIZE, DEFAULT_UNWRAP_TIMEOUT_MS } from "./seed-cache.js";
export { DEFAULT_POLL_INTERVAL_MS, DEFAULT_SEED_MAX_AGE_MS } from "./seed-keeper.js";
export {
  createKmsService,
  type KmsServiceOptions,
  type KmsStats,
  type ManagedKmsService,
} from "./service.js";
export type {
  CallContext,
  DecryptInput,
  EncryptResult,
  KmsApi,
  KmsService,
  StatusResult,
} from "./service-types.js";
