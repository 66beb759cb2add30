/** The gRPC layer's public API (docs/architecture.md, "Modules"). */
export { prepareConnection, type PrepareConnectionOptions } from "./authority-shim/index.js";
export {
  addService,
  MalformedRequest,
  serviceDefinition,
  type AnyGenService,
  type RequestOf,
  type ServiceHandlers,
  type UnaryHandler,
} from "./bridge.js";
export {
  addKmsServices,
  createKmsHandlers,
  runtimeName,
  type KmsHandlers,
  type KmsHandlersOptions,
} from "./handlers.js";
export {
  createKmsClient,
  type ClientApi,
  type DecryptRequestFields,
  type EncryptAnswer,
  type KmsClient,
  type KmsClientOptions,
  type StatusAnswer,
} from "./kms-client.js";
export {
  ListenAddressError,
  MAX_SOCKET_PATH_BYTES,
  parseListenAddress,
  type ListenAddressProblem,
} from "./listen-address.js";
export {
  createPromiseClient,
  KmsClientError,
  type PromiseCallOptions,
  type PromiseClient,
  type PromiseClientOptions,
} from "./promise-client.js";
export { probeSocket } from "./unix-socket.js";
export {
  createKmsServer,
  defaultSocketMode,
  grpcServerOptions,
  type KmsServer,
  type KmsServerOptions,
} from "./server.js";
export { grpcStatusFromKmsCode, type CallCode } from "./status-codes.js";
export {
  internalErrorMessage,
  type CallObserver,
  type GrpcLogger,
  type KmsMethod,
} from "./unary.js";
