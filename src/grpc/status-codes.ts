import { status } from "@grpc/grpc-js";
import type { KmsErrorCode } from "../kms/index.js";

/** The code a call ended with, as the observer and logs name it. */
export type CallCode = "OK" | KmsErrorCode;

/** KmsError code → gRPC status (docs/architecture.md, "Errors → gRPC status"). */
export function grpcStatusFromKmsCode(code: KmsErrorCode): status {
  switch (code) {
    case "INVALID_ARGUMENT":
      return status.INVALID_ARGUMENT;
    case "FAILED_PRECONDITION":
      return status.FAILED_PRECONDITION;
    case "UNAUTHENTICATED":
      return status.UNAUTHENTICATED;
    case "PERMISSION_DENIED":
      return status.PERMISSION_DENIED;
    case "UNAVAILABLE":
      return status.UNAVAILABLE;
    case "DEADLINE_EXCEEDED":
      return status.DEADLINE_EXCEEDED;
    case "CANCELLED":
      return status.CANCELLED;
    case "INTERNAL":
      return status.INTERNAL;
    case "UNKNOWN":
      return status.UNKNOWN;
  }
}
