export { createKeyVaultWrapper } from "./key-vault-wrapper.js";
export type { KeyVaultWrapper, KeyVaultWrapperOptions } from "./key-vault-wrapper.js";
export { createCredential, describeIdentity } from "./credentials.js";
export type { IdentitySettings } from "./credentials.js";
export { kmsErrorFromAzure } from "./errors.js";
export { isLoopbackHost } from "./client-options.js";
export { readKeyDetails } from "./key-details.js";
export type { KeyDetails, KeyDetailsInput } from "./key-details.js";
export {
  keyVaultOperations,
  keyVaultOutcomes,
  operationFromRequest,
  outcomeFromError,
  outcomeFromStatus,
} from "./metrics-policy.js";
export type { KeyVaultCallObserver, KeyVaultOperation, KeyVaultOutcome } from "./metrics-policy.js";
export { azureLogLevelFromVerbosity, routeAzureLogs, scrubSecrets } from "./azure-logging.js";
