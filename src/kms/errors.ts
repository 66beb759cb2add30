/**
 * Error classes the domain raises; grpc/ maps each to a gRPC status (docs/architecture.md,
 * "Errors → gRPC status").
 */
export type KmsErrorCode =
  | "INVALID_ARGUMENT"
  | "FAILED_PRECONDITION"
  | "UNAUTHENTICATED"
  | "PERMISSION_DENIED"
  | "UNAVAILABLE"
  | "DEADLINE_EXCEEDED"
  | "CANCELLED"
  | "INTERNAL"
  | "UNKNOWN";

/**
 * The one error type that crosses module boundaries. `message` is short, stable, safe to send to
 * the caller and never contains key material; `cause` is kept for logs only.
 */
export class KmsError extends Error {
  override name = "KmsError";
  readonly code: KmsErrorCode;
  /**
   * Key Vault answered, and refused this input rather than failing (400 for the ciphertext, 404
   * for the version it names): the same input gets the same answer, and Key Vault is healthy.
   */
  readonly refusedInput: boolean;

  constructor(
    code: KmsErrorCode,
    message: string,
    options?: { cause?: unknown; refusedInput?: boolean },
  ) {
    super(message, options);
    this.code = code;
    this.refusedInput = options?.refusedInput === true;
  }
}

export function isKmsError(value: unknown): value is KmsError {
  return value instanceof KmsError;
}

/**
 * `error` as a KmsError: KmsErrors pass through; anything else is our own bug and becomes INTERNAL
 * with a fixed message (raw error text may hold anything), keeping the original as `cause`.
 */
export function toKmsError(error: unknown, during: string): KmsError {
  if (error instanceof KmsError) return error;
  return new KmsError("INTERNAL", `internal error during ${during}`, { cause: error });
}
