/** The domain's API as the gRPC layer sees it: plain values, no protobuf, no grpc-js. */

/** Which kube-apiserver API a request came in on; it decides limits (v2: ciphertext ≤ 1024 B). */
export type KmsApi = "v2" | "v2alpha1" | "v1beta1";

export interface StatusResult {
  /** The configured v2 version string ("v2" | "v2beta1"); the v2alpha1 handler overrides it. */
  readonly version: string;
  /** "ok" while a current seed is ready; otherwise a short reason. */
  readonly healthz: string;
  /** key_id of the current seed; empty while none is ready. */
  readonly keyId: string;
}

export interface EncryptResult {
  readonly ciphertext: Uint8Array;
  /** key_id of the seed actually used. */
  readonly keyId: string;
  readonly annotations: ReadonlyMap<string, Uint8Array>;
}

export interface DecryptInput {
  readonly ciphertext: Uint8Array;
  /** Empty on v1beta1 (that API carries no key_id). */
  readonly keyId: string;
  readonly annotations: ReadonlyMap<string, Uint8Array>;
}

export interface CallContext {
  readonly api: KmsApi;
  /** kube-apiserver's request uid, for logs only. */
  readonly uid: string;
  /** Fires when the caller cancels or its deadline passes. */
  readonly signal?: AbortSignal;
  /** When the caller stops waiting (epoch ms), if it said: work that cannot finish by then fails fast. */
  readonly deadline?: number | undefined;
}

export interface KmsService {
  /**
   * From memory. Throws KmsError once Key Vault leaves no usable key version (or no seed could be
   * made under the new one): healthz alone would not stop kube-apiserver's writes.
   */
  status(): StatusResult;
  encrypt(plaintext: Uint8Array, ctx: CallContext): EncryptResult;
  /** A plaintext marked by handOver (handoff.ts) is the caller's to zero once it has sent it. */
  decrypt(input: DecryptInput, ctx: CallContext): Promise<Uint8Array>;
}
