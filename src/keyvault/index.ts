export { createKeyVaultWrapper } from "./key-vault-wrapper.js";
export type { KeyVaultWrapper, KeyVaultWrapperOptions } from "./key-vault-wrapper.js";
export { createCredential, describeIdentity } from "./credentials.js";
export type { IdentitySettings } from "./credentials.js";
export { kmsErrorFromAzure } from "./errors.js";
export { isLoopbackHost } from "./client-options.js";
