import { lstat } from "node:fs/promises";
import * as v1beta1 from "../gen/v1beta1/api_pb.js";
import { createPromiseClient } from "../grpc/index.js";

export type LivenessResult =
  { readonly live: true } | { readonly live: false; readonly reason: string };

/**
 * Whether a new client can reach our gRPC server through the socket path, as kube-apiserver would:
 * the socket file is still there (a deleted file keeps serving old connections but takes no new
 * ones), and v1beta1 Version, answered from constants, comes back within `timeoutMs`. Never a
 * Key Vault call, and nothing about Key Vault or seeds can make it fail.
 */
export async function checkSocketLiveness(
  socketPath: string,
  timeoutMs: number,
): Promise<LivenessResult> {
  // "@name" is a Linux abstract socket: there is no file to look at.
  if (!socketPath.startsWith("@")) {
    try {
      if (!(await lstat(socketPath)).isSocket()) {
        return { live: false, reason: "the socket path is no longer a socket" };
      }
    } catch {
      return { live: false, reason: "the socket file is gone" };
    }
  }
  // A fresh client per check: a kept channel would keep working over a deleted or replaced path.
  const client = createPromiseClient(v1beta1.KeyManagementService, socketPath, { timeoutMs });
  try {
    await client.version({ version: "v1beta1" });
    return { live: true };
  } catch {
    return { live: false, reason: "the KMS gRPC server did not answer Version on its socket" };
  } finally {
    client.close();
  }
}
