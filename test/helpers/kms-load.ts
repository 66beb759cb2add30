/**
 * Load for lifecycle tests: N clients, each on its own connection (grpc-js would otherwise share
 * one subchannel between identical channels), looping Encrypt → Decrypt over the v2 API and
 * checking every round trip.
 */
import { create } from "@bufbuild/protobuf";
import { credentials, makeGenericClientConstructor, Metadata, status } from "@grpc/grpc-js";
import type { Client, ServiceError } from "@grpc/grpc-js";
import { randomBytes } from "node:crypto";
import * as v2 from "../../src/gen/v2/api_pb.js";
import { serviceDefinition } from "../../src/grpc/bridge.js";

type Method = "encrypt" | "decrypt" | "status";

/** One v2 client on a connection of its own. */
export class OwnConnectionClient {
  readonly #client: Client;

  constructor(socketPath: string) {
    const Ctor = makeGenericClientConstructor(
      serviceDefinition(v2.KeyManagementService),
      "v2.KeyManagementService",
    );
    this.#client = new Ctor(`unix://${socketPath}`, credentials.createInsecure(), {
      "grpc.use_local_subchannel_pool": 1,
    });
  }

  #call<T>(method: Method, request: object, timeoutMs: number): Promise<T> {
    const def = serviceDefinition(v2.KeyManagementService)[method];
    return new Promise<T>((resolve, reject) => {
      this.#client.makeUnaryRequest(
        def.path,
        def.requestSerialize,
        def.responseDeserialize,
        request,
        new Metadata(),
        { deadline: Date.now() + timeoutMs },
        (error: ServiceError | null, response?: unknown) => {
          if (error === null) resolve(response as T);
          else reject(error);
        },
      );
    });
  }

  encrypt(plaintext: Uint8Array, timeoutMs = 5_000): Promise<v2.EncryptResponse> {
    const request = create(v2.EncryptRequestSchema, { plaintext, uid: "lifecycle-enc" });
    return this.#call("encrypt", request, timeoutMs);
  }

  decrypt(ciphertext: Uint8Array, keyId: string, timeoutMs = 5_000): Promise<v2.DecryptResponse> {
    const request = create(v2.DecryptRequestSchema, { ciphertext, keyId, uid: "lifecycle-dec" });
    return this.#call("decrypt", request, timeoutMs);
  }

  status(timeoutMs = 5_000): Promise<v2.StatusResponse> {
    return this.#call("status", create(v2.StatusRequestSchema, {}), timeoutMs);
  }

  close(): void {
    this.#client.close();
  }
}

export function codeName(error: unknown): string {
  const code = (error as Partial<ServiceError>).code;
  return code === undefined ? `not a gRPC error: ${String(error)}` : status[code];
}

export interface LoadReport {
  /** Round trips (Encrypt then Decrypt) that returned the plaintext. */
  ok: number;
  /** Round trips that returned a different plaintext: must stay 0. */
  wrong: number;
  /** Failures before `stopping()` was true, by code: must stay empty under normal service. */
  failedBefore: Record<string, number>;
  /** Failures once `stopping()` was true, by code (the server went away: UNAVAILABLE). */
  failedAfter: Record<string, number>;
  /** Calls in flight when stopping began (issued before, ended after), and how they ended. */
  inFlightAtStop: { ok: number; failed: Record<string, number> };
}

export interface Load {
  readonly report: LoadReport;
  /** Marks the moment the server is told to stop; loops end at their first failure after it. */
  markStopping(): void;
  /** Resolves when every loop has ended. */
  done: Promise<void>;
}

function bump(record: Record<string, number>, key: string): void {
  record[key] = (record[key] ?? 0) + 1;
}

/** Starts `clients` loops; each ends on its first failure after markStopping(), or at `deadline`. */
export function startLoad(clients: readonly OwnConnectionClient[], deadline: number): Load {
  let stopping = false;
  const report: LoadReport = {
    ok: 0,
    wrong: 0,
    failedBefore: {},
    failedAfter: {},
    inFlightAtStop: { ok: 0, failed: {} },
  };
  /** One call; counted as in flight at stop if issued before markStopping() and ended after. */
  const tracked = async <T>(run: () => Promise<T>): Promise<T> => {
    const issuedBeforeStop = !stopping;
    try {
      const result = await run();
      if (issuedBeforeStop && stopping) report.inFlightAtStop.ok++;
      return result;
    } catch (error) {
      if (issuedBeforeStop && stopping) bump(report.inFlightAtStop.failed, codeName(error));
      throw error;
    }
  };
  const loop = async (client: OwnConnectionClient): Promise<void> => {
    while (Date.now() < deadline) {
      const plaintext = randomBytes(32);
      try {
        const enc = await tracked(() => client.encrypt(plaintext));
        const dec = await tracked(() => client.decrypt(enc.ciphertext, enc.keyId));
        if (Buffer.from(dec.plaintext).equals(plaintext)) report.ok++;
        else report.wrong++;
      } catch (error) {
        const code = codeName(error);
        if (stopping) {
          bump(report.failedAfter, code);
          return;
        }
        bump(report.failedBefore, code);
      }
    }
  };
  return {
    report,
    markStopping: () => {
      stopping = true;
    },
    done: Promise.all(clients.map(loop)).then(() => undefined),
  };
}
