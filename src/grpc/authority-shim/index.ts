/**
 * The HTTP/2 `:authority` shim, behind one entry point: `prepareConnection` reads a connection's
 * first request and hands Node's HTTP/2 server either the socket itself or a connection whose
 * header blocks are rewritten so that an `:authority` Node would refuse (the raw socket path that
 * kube-apiserver 1.25–1.28 sends) reaches grpc-js as `localhost` (docs/architecture.md).
 */
export { prepareConnection, type PrepareConnectionOptions } from "./authority-rewrite.js";
