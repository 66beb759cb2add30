export { createEmulator } from "./emulator.js";
export { KEY_PERMISSIONS, parseKeyPermissions } from "./access-policy.js";
export { KNOWN_API_VERSIONS } from "./api-versions.js";
export { OPERATIONS } from "./counters.js";
export { startProxyFront, PROXY_TARGET_HEADER } from "./proxy-front.js";
export type { ProxyFront, ProxyFrontOptions, ProxiedRequest } from "./proxy-front.js";
export type {
  ClientCertificateInfo,
  ClientCertificateOptions,
  Emulator,
  EmulatorFlavor,
  EmulatorKeySpec,
  EmulatorKeyType,
  EmulatorOptions,
  FaultKind,
  FaultSpec,
  FederatedTokenOptions,
  KeyVersionRef,
  KeyVersionUpdate,
} from "./types.js";
