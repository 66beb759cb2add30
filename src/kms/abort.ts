/**
 * How a caller's cancellation becomes a KmsError. The grpc layer aborts a request's signal with
 * one of the reasons made here, so the domain can tell a passed deadline from a cancellation.
 */
import { KmsError, toKmsError } from "./errors.js";

export function deadlineExceededReason(message = "deadline exceeded"): KmsError {
  return new KmsError("DEADLINE_EXCEEDED", message);
}

export function cancelledReason(message = "request cancelled by the caller"): KmsError {
  return new KmsError("CANCELLED", message);
}

/** The KmsError to throw for an aborted signal's `reason`. */
export function abortError(reason: unknown): KmsError {
  if (reason instanceof KmsError) return reason;
  // AbortSignal.timeout() aborts with a DOMException named TimeoutError (checked by name: it
  // may come from another realm, where instanceof fails).
  if (
    typeof reason === "object" &&
    reason !== null &&
    (reason as { name?: unknown }).name === "TimeoutError"
  ) {
    return new KmsError("DEADLINE_EXCEEDED", "deadline exceeded", { cause: reason });
  }
  return new KmsError("CANCELLED", "request cancelled by the caller", { cause: reason });
}

/**
 * Settles with `work` unless `signal` aborts first. `work` keeps running either way (it may be
 * shared with other callers); its later rejection is absorbed here.
 */
export function raceAbort<T>(work: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) {
    work.catch(() => undefined);
    return Promise.reject(abortError(signal.reason));
  }
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => {
      reject(abortError(signal.reason));
    };
    signal.addEventListener("abort", onAbort, { once: true });
    work.then(
      (value) => {
        signal.removeEventListener("abort", onAbort);
        resolve(value);
      },
      (error: unknown) => {
        signal.removeEventListener("abort", onAbort);
        reject(error instanceof Error ? error : toKmsError(error, "an awaited operation"));
      },
    );
  });
}
