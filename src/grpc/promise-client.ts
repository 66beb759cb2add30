import { create } from "@bufbuild/protobuf";
import type { MessageInitShape, MessageShape } from "@bufbuild/protobuf";
import { credentials, makeGenericClientConstructor, Metadata, status } from "@grpc/grpc-js";
import type { CallOptions as GrpcCallOptions, Client, ServiceError } from "@grpc/grpc-js";
import { serviceDefinition } from "./bridge.js";
import type { AnyGenService } from "./bridge.js";

export interface PromiseClientOptions {
  /** HTTP/2 `:authority` to send (`grpc.default_authority`); grpc-js sends "localhost" if unset. */
  readonly authority?: string | undefined;
  /** Default per-call deadline, in ms from the call's start. */
  readonly timeoutMs?: number | undefined;
}

export interface PromiseCallOptions {
  /** Deadline for this call, in ms; overrides the client's. */
  readonly timeoutMs?: number | undefined;
  /** Cancels the call (the server sees CANCELLED). */
  readonly signal?: AbortSignal | undefined;
}

/** One promise-returning method per RPC, typed from the service descriptor. */
export type PromiseClient<Svc extends AnyGenService> = {
  readonly [K in keyof Svc["method"]]: (
    request: MessageInitShape<Svc["method"][K]["input"]>,
    options?: PromiseCallOptions,
  ) => Promise<MessageShape<Svc["method"][K]["output"]>>;
} & {
  /** The underlying grpc-js client (for waitForReady, getChannel…). */
  readonly grpcClient: Client;
  close(): void;
};

/** A failed call: the gRPC status code, its name, and the server's message. */
export class KmsClientError extends Error {
  override name = "KmsClientError";
  readonly code: status;
  readonly codeName: string;
  readonly details: string;

  constructor(error: ServiceError) {
    const codeName = status[error.code];
    super(`${codeName}: ${error.details}`, { cause: error });
    this.code = error.code;
    this.codeName = codeName;
    this.details = error.details;
  }
}

/** A typed promise client for `service` on the unix socket at `socketPath`. */
export function createPromiseClient<Svc extends AnyGenService>(
  service: Svc,
  socketPath: string,
  options: PromiseClientOptions = {},
): PromiseClient<Svc> {
  const definition = serviceDefinition(service);
  const Constructor = makeGenericClientConstructor(definition, service.typeName);
  const channelOptions =
    options.authority === undefined ? {} : { "grpc.default_authority": options.authority };
  const client = new Constructor(
    `unix://${socketPath}`,
    credentials.createInsecure(),
    channelOptions,
  );
  const methods: Record<string, unknown> = {
    grpcClient: client,
    close: () => {
      client.close();
    },
  };
  for (const method of service.methods) {
    const def = definition[method.localName];
    if (def === undefined) continue;
    methods[method.localName] = (
      request: MessageInitShape<typeof method.input>,
      callOptions: PromiseCallOptions = {},
    ) =>
      new Promise((resolve, reject) => {
        const timeoutMs = callOptions.timeoutMs ?? options.timeoutMs;
        const grpcOptions: GrpcCallOptions =
          timeoutMs === undefined ? {} : { deadline: Date.now() + timeoutMs };
        const call = client.makeUnaryRequest(
          def.path,
          def.requestSerialize,
          def.responseDeserialize,
          create(method.input, request),
          new Metadata(),
          grpcOptions,
          (error: ServiceError | null, response: unknown) => {
            if (error === null) resolve(response);
            else reject(new KmsClientError(error));
          },
        );
        const signal = callOptions.signal;
        if (signal !== undefined) {
          if (signal.aborted) call.cancel();
          else {
            signal.addEventListener(
              "abort",
              () => {
                call.cancel();
              },
              { once: true },
            );
          }
        }
      });
  }
  return methods as PromiseClient<Svc>;
}
