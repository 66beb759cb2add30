// A trivial gRPC service with Buffer passthrough serializers, served either the stock way
// (grpc-js bindAsync on a unix socket) or through the authority listener.
import * as grpc from "@grpc/grpc-js";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  createAuthorityListener,
  type AdmissionEvent,
  type AuthorityListener,
} from "./authority-listener.js";
import type { PrepareConnectionOptions } from "../../../../src/grpc/authority-shim/authority-rewrite.js";

const id = (b: Buffer): Buffer => b;
const method = (path: string) => ({
  path,
  requestStream: false,
  responseStream: false,
  requestSerialize: id,
  requestDeserialize: id,
  responseSerialize: id,
  responseDeserialize: id,
});

export const ECHO_PATH = "/test.Echo/Echo";
export const WHOAMI_PATH = "/test.Echo/WhoAmI";

export const echoDefinition = {
  echo: method(ECHO_PATH),
  whoAmI: method(WHOAMI_PATH),
} satisfies grpc.ServiceDefinition;

/** WhoAmI answers with JSON of what the server saw: authority and metadata. */
export interface WhoAmI {
  readonly host: string;
  readonly metadata: Record<string, string>;
}

function addEchoService(server: grpc.Server): void {
  server.addService(echoDefinition, {
    echo: (call: grpc.ServerUnaryCall<Buffer, Buffer>, cb: grpc.sendUnaryData<Buffer>) => {
      cb(null, call.request);
    },
    whoAmI: (call: grpc.ServerUnaryCall<Buffer, Buffer>, cb: grpc.sendUnaryData<Buffer>) => {
      const metadata: Record<string, string> = {};
      for (const [k, v] of Object.entries(call.metadata.getMap())) metadata[k] = String(v);
      const who: WhoAmI = { host: call.getHost(), metadata };
      cb(null, Buffer.from(JSON.stringify(who)));
    },
  });
}

export const EchoClient = grpc.makeGenericClientConstructor(echoDefinition, "Echo");
export type EchoClientType = InstanceType<typeof EchoClient>;

export function tempSocketPath(): { path: string; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), "kms-authority-"));
  return {
    path: join(dir, "kms.sock"),
    cleanup: () => {
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Unary call through a grpc-js client; resolves with the error instead of throwing. */
export function unary(
  client: EchoClientType,
  name: "echo" | "whoAmI",
  payload: Buffer,
  deadlineMs = 5000,
): Promise<{ ok: true; value: Buffer } | { ok: false; error: grpc.ServiceError }> {
  return new Promise((resolve) => {
    const fn = client[name] as (
      req: Buffer,
      opts: grpc.CallOptions,
      cb: (err: grpc.ServiceError | null, res?: Buffer) => void,
    ) => void;
    fn.call(client, payload, { deadline: Date.now() + deadlineMs }, (err, res) => {
      resolve(err ? { ok: false, error: err } : { ok: true, value: res ?? Buffer.alloc(0) });
    });
  });
}

export interface StockServer {
  readonly server: grpc.Server;
  stop(): Promise<void>;
}

export async function startStockServer(socketPath: string): Promise<StockServer> {
  const server = new grpc.Server();
  addEchoService(server);
  await new Promise<void>((resolve, reject) => {
    server.bindAsync(`unix:${socketPath}`, grpc.ServerCredentials.createInsecure(), (err) => {
      if (err) reject(err);
      else resolve();
    });
  });
  return {
    server,
    stop: () =>
      new Promise((resolve) => {
        server.tryShutdown(() => {
          resolve();
        });
      }),
  };
}

export interface InjectedServer {
  readonly server: grpc.Server;
  readonly listener: AuthorityListener;
  readonly admissions: AdmissionEvent[];
  stop(): Promise<void>;
}

/** grpc-js server fed by createAuthorityListener on `socketPath`. */
export async function startInjectedServer(
  socketPath: string,
  options: PrepareConnectionOptions = {},
): Promise<InjectedServer> {
  const server = new grpc.Server();
  addEchoService(server);
  const injector = server.createConnectionInjector(grpc.ServerCredentials.createInsecure());
  const admissions: AdmissionEvent[] = [];
  const listener = createAuthorityListener(injector, {
    ...options,
    onAdmission: (e) => admissions.push(e),
  });
  await listener.listen(socketPath);
  return {
    server,
    listener,
    admissions,
    stop: async () => {
      server.forceShutdown();
      injector.destroy();
      await listener.close();
    },
  };
}
