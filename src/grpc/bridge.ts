import { fromBinary, toBinary } from "@bufbuild/protobuf";
import type { DescMessage, MessageShape } from "@bufbuild/protobuf";
import type { GenService, GenServiceMethods } from "@bufbuild/protobuf/codegenv2";
import type { MethodDefinition, Server, ServiceDefinition, handleUnaryCall } from "@grpc/grpc-js";

/**
 * What the server's deserializer yields for bytes that do not decode as the request type.
 * grpc-js answers INTERNAL when a deserializer throws; returning this instead lets the handler
 * answer INVALID_ARGUMENT, which is what a malformed request is.
 */
export class MalformedRequest {
  constructor(
    readonly typeName: string,
    readonly cause: unknown,
  ) {}
}

export type RequestOf<M extends DescMessage> = MessageShape<M> | MalformedRequest;

export type UnaryHandler<I extends DescMessage, O extends DescMessage> = handleUnaryCall<
  RequestOf<I>,
  MessageShape<O>
>;

/** Any generated service descriptor. */
export type AnyGenService = GenService<GenServiceMethods>;

/** One handler per method, checked against the descriptor's input and output messages. */
export type ServiceHandlers<Svc extends AnyGenService> = {
  readonly [K in keyof Svc["method"]]: UnaryHandler<
    Svc["method"][K]["input"],
    Svc["method"][K]["output"]
  >;
};

// Unknown fields in a request are never used; not keeping them saves an allocation per call.
const readOptions = { readUnknownFields: false } as const;

const definitions = new WeakMap<object, ServiceDefinition>();

/**
 * The grpc-js ServiceDefinition for a protobuf-es service descriptor, keyed by the methods'
 * local names (`status`, `encrypt`…), path `/${typeName}/${method.name}`. Serves both sides:
 * the server uses requestDeserialize/responseSerialize, a client the other two.
 */
export function serviceDefinition<Svc extends AnyGenService>(
  service: Svc,
): ServiceDefinition<ServiceHandlers<Svc>> {
  let definition = definitions.get(service);
  if (definition === undefined) {
    const methods: Record<string, MethodDefinition<object, object>> = {};
    for (const method of service.methods) {
      if (method.methodKind !== "unary") {
        throw new Error(`${service.typeName}.${method.name}: only unary methods are supported`);
      }
      const input = method.input;
      const output = method.output;
      methods[method.localName] = {
        path: `/${service.typeName}/${method.name}`,
        originalName: method.name,
        requestStream: false,
        responseStream: false,
        requestSerialize: serializer(input),
        requestDeserialize: (bytes: Buffer) => {
          try {
            return fromBinary(input, bytes, readOptions);
          } catch (cause) {
            return new MalformedRequest(input.typeName, cause);
          }
        },
        responseSerialize: serializer(output),
        responseDeserialize: (bytes: Buffer) => fromBinary(output, bytes),
      };
    }
    definition = methods;
    definitions.set(service, definition);
  }
  return definition as ServiceDefinition<ServiceHandlers<Svc>>;
}

/** Registers typed handlers for a service on a grpc-js server. */
export function addService<Svc extends AnyGenService>(
  server: Server,
  service: Svc,
  handlers: ServiceHandlers<Svc>,
): void {
  server.addService(serviceDefinition(service), handlers);
}

interface Wipe {
  readonly secret: Uint8Array | undefined;
  readonly encodedToo: boolean;
}

/** Secret bytes (plaintexts) to zero once the message that carries them has been serialized. */
const wipes = new WeakMap<object, Wipe>();

/**
 * Zeroes `secret` (if any) as soon as `message` has been serialized, and, if `encodedToo` (the
 * message itself carries a plaintext), the serialized bytes once grpc-js has copied them.
 * Serialization is the last read of a response's fields, so no byte on the wire changes; a
 * message never serialized (a call cancelled before its answer) only drops its entry with it.
 */
export function wipeOnceSerialized<T extends object>(
  message: T,
  secret: Uint8Array | undefined,
  encodedToo: boolean,
): T {
  wipes.set(message, { secret, encodedToo });
  return message;
}

function serializer(schema: DescMessage): (message: object) => Buffer {
  return (message) => {
    // ServiceHandlers (server) and typed clients guarantee the shape; toBinary checks $typeName.
    const bytes = toBinary(schema, message as MessageShape<DescMessage>);
    const wipe = wipes.get(message);
    if (wipe !== undefined) {
      wipes.delete(message);
      // toBinary has copied every field into `bytes`: the source is read no more.
      wipe.secret?.fill(0);
      // grpc-js (BaseServerInterceptingCall.serializeMessage) copies what this returns into its
      // framed buffer synchronously, right after this call, and keeps no reference to it: a
      // microtask runs only after that copy. The framed copy belongs to the HTTP/2 stream.
      if (wipe.encodedToo) queueMicrotask(() => bytes.fill(0));
    }
    // grpc-js copies with Buffer#copy, which a plain Uint8Array lacks: view, don't copy.
    return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  };
}
