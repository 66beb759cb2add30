/**
 * Key Vault refuses an api-version it does not know with 400 BadParameter, "The specified version
 * (7.3) is not recognized. Consider using the latest supported version (7.1)." (Azure Stack Hub,
 * Azure/azure-sdk-for-python#28595; US Gov and China have lagged the same way). The set is an
 * option, so that tests can play such a cloud. A request without an api-version: no recording
 * shows the answer; the emulator treats it as an unknown version.
 */
import { badParameter, type KeyVaultError } from "./http-io.js";

/** Versions of the keys data-plane API (Azure/azure-rest-api-specs, specification/keyvault). */
export const KNOWN_API_VERSIONS: readonly string[] = [
  "7.0",
  "7.1",
  "7.2",
  "7.3",
  "7.4",
  "7.5",
  "7.6",
  "2025-06-01",
  "2025-07-01",
];

/** undefined when `version` is one of `supported`; else the error to answer. */
export function apiVersionError(
  version: string | null,
  supported: readonly string[],
): KeyVaultError | undefined {
  if (version !== null && supported.includes(version)) return undefined;
  const latest = supported.at(-1) ?? "";
  return badParameter(
    `The specified version (${version ?? ""}) is not recognized. Consider using the latest supported version (${latest}).`,
  );
}
