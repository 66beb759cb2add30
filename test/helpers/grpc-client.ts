/** Test clients for the plugin's gRPC services, built from the same descriptors as the server. */
import { credentials, makeGenericClientConstructor, Metadata } from "@grpc/grpc-js";
import type { Client, ServiceError } from "@grpc/grpc-js";
import {
  createPromiseClient,
  KmsClientError,
  type AnyGenService,
  type PromiseClient,
} from "../../src/grpc/index.js";

export { KmsClientError, type PromiseClient };

export interface TestClientOptions {
  /** Sent as `grpc.default_authority` (grpc-js sends "localhost" for unix targets otherwise). */
  readonly authority?: string;
  /** Default per-call deadline in ms (a call's `timeoutMs` overrides it). */
  readonly timeoutMs?: number;
}

/** A typed promise client; close it (or pass it to `closeAll`) when done. */
export function createClient<Svc extends AnyGenService>(
  service: Svc,
  socketPath: string,
  options: TestClientOptions = {},
): PromiseClient<Svc> {
  return createPromiseClient(service, socketPath, {
    timeoutMs: options.timeoutMs ?? 5_000,
    authority: options.authority,
  });
}

/** The error a call failed with; fails the test if it succeeded. */
export async function callError(call: Promise<unknown>): Promise<KmsClientError> {
  try {
    await call;
  } catch (error) {
    if (error instanceof KmsClientError) return error;
    throw error;
  }
  throw new Error("the call succeeded but was expected to fail");
}

/** Sends `bytes` as-is as the request of `methodPath` (e.g. malformed protobuf). */
export function callRaw(
  socketPath: string,
  methodPath: string,
  bytes: Uint8Array,
  timeoutMs = 5_000,
): Promise<Buffer> {
  const RawClient = makeGenericClientConstructor({}, "raw");
  const client: Client = new RawClient(`unix://${socketPath}`, credentials.createInsecure());
  return new Promise<Buffer>((resolve, reject) => {
    client.makeUnaryRequest(
      methodPath,
      (value: Uint8Array) => Buffer.from(value),
      (value: Buffer) => value,
      bytes,
      new Metadata(),
      { deadline: Date.now() + timeoutMs },
      (error: ServiceError | null, response?: Buffer) => {
        client.close();
        if (error !== null) reject(new KmsClientError(error));
        else resolve(response ?? Buffer.alloc(0));
      },
    );
  });
}
