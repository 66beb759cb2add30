import { Server, ServerCredentials } from "@grpc/grpc-js";
import type { ServerOptions } from "@grpc/grpc-js";
import { createServer } from "node:net";
import type { Socket } from "node:net";
import type { Duplex } from "node:stream";
import type { KmsService } from "../kms/index.js";
import { ConnectionLimit, OccurrenceLog } from "../net/index.js";
import { addKmsServices } from "./handlers.js";
import { parseListenAddress } from "./listen-address.js";
import type { CallObserver, GrpcLogger } from "./unary.js";
import { clearSocketPath, listenOnSocketPath, removeSocketFile } from "./unix-socket.js";
import type { SocketIdentity } from "./unix-socket.js";

export interface KmsServerOptions {
  /** `--listen-addr`, e.g. unix:///opt/azurekms.socket (parsed by parseListenAddress). */
  readonly listenAddr: string;
  /** Permissions of the socket file; default 0o600. */
  readonly socketMode?: number | undefined;
  readonly service: KmsService;
  /** The plugin's version, for v1beta1 VersionResponse.runtime_version. */
  readonly runtimeVersion: string;
  readonly observer?: CallObserver | undefined;
  /** Sees every accepted connection before grpc-js does (e.g. an `:authority` rewriter). */
  readonly wrapConnection?: ((socket: Socket) => Promise<Duplex> | Duplex) | undefined;
  readonly logger?: GrpcLogger | undefined;
  /** Connections held at once (`--max-connections`); default defaultMaxConnections. */
  readonly maxConnections?: number | undefined;
}

export interface KmsServer {
  /** Creates the socket (see unix-socket.ts) and starts accepting; rejects with ListenAddressError. */
  listen(): Promise<void>;
  /**
   * Stops accepting, lets in-flight calls finish for up to `graceMs`, then closes what is left
   * and removes the socket file. Idempotent: later calls return the same promise.
   */
  shutdown(graceMs: number): Promise<void>;
  readonly socketPath: string;
}

export const defaultSocketMode = 0o600;

/**
 * kube-apiserver holds one connection per KMS provider; probes and `client` add a few. At the
 * bound a silent or idle connection goes, never one that made a call within the last minute (see
 * ConnectionLimit), so this is far above what legitimate clients hold and far below any fd limit.
 */
export const defaultMaxConnections = 128;

/** kube-apiserver calls Status at least every minute, so only other clients go idle this long. */
const maxConnectionIdleMs = 5 * 60 * 1000;

/** Requests are at most ~64 KiB (32 KiB of annotations plus ciphertext); 1 MiB bounds memory. */
const maxMessageBytes = 1 << 20;

export const grpcServerOptions: ServerOptions = {
  "grpc.max_receive_message_length": maxMessageBytes,
  "grpc.max_send_message_length": maxMessageBytes,
  // grpc-go's server defaults: ping an idle connection every 2 h, drop it after 20 s of silence.
  "grpc.keepalive_time_ms": 2 * 60 * 60 * 1000,
  "grpc.keepalive_timeout_ms": 20_000,
  // Nothing reads channelz; tracking it costs every call.
  "grpc.enable_channelz": 0,
  // A connection with no call for this long is closed (GOAWAY); its client reconnects when needed.
  "grpc.max_connection_idle_ms": maxConnectionIdleMs,
};

/**
 * The KMS gRPC server on a unix socket. The socket is a node:net server this owns (grpc-js
 * bindAsync cannot set permissions atomically or check for a live peer); each connection is
 * handed to grpc-js through a connection injector, through `wrapConnection` when given.
 */
export function createKmsServer(options: KmsServerOptions): KmsServer {
  const socketPath = parseListenAddress(options.listenAddr);
  const mode = options.socketMode ?? defaultSocketMode;
  if (!Number.isInteger(mode) || mode < 0 || mode > 0o777) {
    throw new RangeError(`socketMode must be a permission mode between 0 and 0o777, got ${mode}`);
  }
  const { logger, wrapConnection } = options;

  const grpcServer = new Server(grpcServerOptions);
  addKmsServices(grpcServer, {
    service: options.service,
    runtimeVersion: options.runtimeVersion,
    observer: options.observer,
    logger,
  });
  const injector = grpcServer.createConnectionInjector(ServerCredentials.createInsecure());
  const sockets = new Set<Socket>();
  const netServer = createServer();
  let listening: Promise<void> | undefined;
  let closing: Promise<void> | undefined;
  let bound: SocketIdentity | undefined;

  const maxConnections = options.maxConnections ?? defaultMaxConnections;
  const acceptErrors = new OccurrenceLog(logger, "the KMS socket cannot accept connections");
  const atLimit = new OccurrenceLog(
    logger,
    `the KMS socket is at its limit of ${maxConnections} connections (--max-connections): closing a silent or idle one, or refusing the newcomer`,
  );
  const dropped = new OccurrenceLog(logger, "dropped a connection: wrapConnection failed");
  /** Whether a connection has carried a request; unknown until it has been wrapped. */
  const proven = new WeakMap<Socket, () => boolean>();
  const limit = new ConnectionLimit({
    max: maxConnections,
    isProven: (socket) => proven.get(socket)?.() ?? false,
    // kube-apiserver calls Status at least every minute: its connection is never the one to go.
    protectActiveMs: 60_000,
    onEvict: () => {
      atLimit.note();
    },
  });
  // After listen() succeeded, errors are accept errors (EMFILE and the like).
  netServer.on("error", (err: NodeJS.ErrnoException) => {
    if (netServer.listening) acceptErrors.note({ code: err.code, err: err.message, socketPath });
  });
  netServer.on("connection", (socket: Socket) => {
    if (closing !== undefined) {
      socket.destroy();
      return;
    }
    if (!limit.admit(socket)) {
      atLimit.note();
      socket.destroy();
      return;
    }
    sockets.add(socket);
    // Errors also close the socket, which is all this layer needs to know.
    socket.on("error", ignore);
    socket.once("close", () => sockets.delete(socket));
    if (wrapConnection === undefined) {
      proven.set(socket, () => true);
      injector.injectConnection(socket);
      return;
    }
    let wrapped: Promise<Duplex> | Duplex;
    try {
      wrapped = wrapConnection(socket);
    } catch (err) {
      dropConnection(socket, err);
      return;
    }
    if (wrapped instanceof Promise) {
      wrapped.then(
        (duplex) => {
          if (closing !== undefined || socket.destroyed) {
            duplex.destroy();
            socket.destroy();
            return;
          }
          proven.set(socket, () => madeRequest(duplex, socket));
          injector.injectConnection(duplex);
        },
        (err: unknown) => {
          dropConnection(socket, err);
        },
      );
    } else {
      const duplex = wrapped;
      proven.set(socket, () => madeRequest(duplex, socket));
      injector.injectConnection(duplex);
    }
  });

  // Once per minute at most: a flood of bad connections must not flood the log.
  function dropConnection(socket: Socket, err: unknown): void {
    dropped.note({ err });
    socket.destroy();
  }

  async function start(): Promise<void> {
    await clearSocketPath(socketPath, logger);
    bound = await listenOnSocketPath(netServer, socketPath, mode);
  }

  async function stop(graceMs: number): Promise<void> {
    if (listening !== undefined) await listening.catch(ignore);
    acceptErrors.close();
    atLimit.close();
    dropped.close();
    // Stop accepting; the callback runs once every accepted connection has closed.
    const allClosed = new Promise<void>((resolve) => {
      netServer.close(() => {
        resolve();
      });
    });
    // GOAWAY to every connection: calls in flight finish, new ones go elsewhere.
    injector.drain(graceMs);
    let timer: NodeJS.Timeout | undefined;
    const graceOver = new Promise<void>((resolve) => {
      timer = setTimeout(resolve, graceMs);
    });
    await Promise.race([allClosed, graceOver]);
    clearTimeout(timer);
    injector.destroy();
    for (const socket of sockets) socket.destroy();
    await allClosed;
    grpcServer.forceShutdown();
    if (bound !== undefined) await removeSocketFile(socketPath, bound);
  }

  return {
    socketPath,
    listen() {
      if (closing !== undefined) return Promise.reject(new Error("the KMS server is shut down"));
      if (listening !== undefined) return Promise.reject(new Error("listen() was already called"));
      listening = start();
      return listening;
    },
    shutdown(graceMs) {
      closing ??= stop(graceMs);
      return closing;
    },
  };
}

/**
 * The socket itself comes back from the sniff only after a request was seen; a rewriting
 * connection says whether one has been (RewritingConnection.sawRequest).
 */
function madeRequest(duplex: Duplex, socket: Socket): boolean {
  if (duplex === socket) return true;
  return "sawRequest" in duplex ? duplex.sawRequest === true : true;
}

function ignore(): void {
  // Deliberately empty: see the call sites.
}
