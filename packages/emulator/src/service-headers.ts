/**
 * The headers Key Vault and Managed HSM put on every keys-API answer, as recorded by the Azure
 * SDK teams (Azure/azure-sdk-for-net sdk/keyvault/…/SessionRecords: KeyClientLiveTests/
 * GetKeyNonExisting.json for a vault, ManagedHsmCryptographyClientLiveTests/
 * AesKwWrapUnwrapRoundTrip(A256KW).json for Managed HSM). Managed HSM sends no Date and no
 * x-ms-keyvault-service-version; its request ids are time-based UUIDs (a random one here: no
 * client reads them).
 */
import { randomUUID } from "node:crypto";
import type { ServerResponse } from "node:http";
import type { EmulatorFlavor } from "./types.js";

const COMMON = {
  "cache-control": "no-cache",
  "strict-transport-security": "max-age=31536000; includeSubDomains",
  "x-content-type-options": "nosniff",
  "x-ms-keyvault-network-info": "conn_type=Ipv4;addr=127.0.0.1;act_addr_fam=InterNetwork;",
  "x-ms-keyvault-region": "emulator",
};

export function setServiceHeaders(
  res: ServerResponse,
  flavor: EmulatorFlavor,
  clientRequestId: string | undefined,
): void {
  const headers: Record<string, string> =
    flavor === "managedhsm"
      ? {
          ...COMMON,
          "content-security-policy": "default-src 'self'",
          "x-frame-options": "SAMEORIGIN",
          "x-ms-server-latency": "0",
        }
      : {
          ...COMMON,
          expires: "-1",
          pragma: "no-cache",
          "x-ms-keyvault-service-version": "1.9.2455.1",
        };
  headers["x-ms-request-id"] = randomUUID();
  if (flavor !== "managedhsm" && clientRequestId !== undefined && clientRequestId !== "") {
    headers["x-ms-client-request-id"] = clientRequestId;
  }
  for (const [name, value] of Object.entries(headers)) res.setHeader(name, value);
  // Node adds a Date header on its own; Managed HSM sends none.
  res.sendDate = flavor !== "managedhsm";
}
