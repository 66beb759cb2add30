import type { Server } from "@grpc/grpc-js";
import * as v1beta1 from "../gen/v1beta1/api_pb.js";
import * as v2 from "../gen/v2/api_pb.js";
import * as v2alpha1 from "../gen/v2alpha1/api_pb.js";
import { isHandedOver, KmsError } from "../kms/index.js";
import type { KmsService } from "../kms/index.js";
import { addService, wipeOnceSerialized } from "./bridge.js";
import type { ServiceHandlers } from "./bridge.js";
import { unaryAsync, unarySync } from "./unary.js";
import type { UnaryOptions } from "./unary.js";

export const runtimeName = "keyvault-kms";

export interface KmsHandlersOptions extends UnaryOptions {
  readonly service: KmsService;
  /** VersionResponse.runtime_version on v1beta1 (the plugin's version). */
  readonly runtimeVersion: string;
}

export type V2Service = typeof v2.KeyManagementService;
export type V2alpha1Service = typeof v2alpha1.KeyManagementService;
export type V1beta1Service = typeof v1beta1.KeyManagementService;

export interface KmsHandlers {
  readonly v2: ServiceHandlers<V2Service>;
  readonly v2alpha1: ServiceHandlers<V2alpha1Service>;
  readonly v1beta1: ServiceHandlers<V1beta1Service>;
}

/** The handlers of the three services kube-apiserver may call, over one KmsService. */
export function createKmsHandlers(options: KmsHandlersOptions): KmsHandlers {
  return {
    v2: v2FamilyHandlers(v2.KeyManagementService, "v2", options),
    // Same shapes as v2's but for $typeName, which v2FamilyHandlers takes from the descriptor.
    v2alpha1: v2FamilyHandlers(
      v2alpha1.KeyManagementService,
      "v2alpha1",
      options,
    ) as unknown as ServiceHandlers<V2alpha1Service>,
    v1beta1: v1beta1Handlers(options),
  };
}

/** Registers v2, v2alpha1 and v1beta1 KeyManagementService on a grpc-js server. */
export function addKmsServices(server: Server, options: KmsHandlersOptions): void {
  const handlers = createKmsHandlers(options);
  addService(server, v2.KeyManagementService, handlers.v2);
  addService(server, v2alpha1.KeyManagementService, handlers.v2alpha1);
  addService(server, v1beta1.KeyManagementService, handlers.v1beta1);
}

/**
 * v2 and v2alpha1 have the same messages (fields, numbers, types) in different packages; the
 * handlers are written once against v2's types and stamped with the descriptor's type names.
 */
function v2FamilyHandlers(
  service: V2Service | V2alpha1Service,
  api: "v2" | "v2alpha1",
  options: KmsHandlersOptions,
): ServiceHandlers<V2Service> {
  const kms = options.service;
  // For v2alpha1 these hold its own names; typed as v2's so one set of handlers serves both.
  const types = {
    status: service.method.status.output.typeName,
    encrypt: service.method.encrypt.output.typeName,
    decrypt: service.method.decrypt.output.typeName,
  } as {
    status: "v2.StatusResponse";
    encrypt: "v2.EncryptResponse";
    decrypt: "v2.DecryptResponse";
  };
  // kube-apiserver 1.25/1.26 require exactly "v2alpha1" on the v2alpha1 service.
  const fixedVersion = api === "v2alpha1" ? "v2alpha1" : undefined;

  return {
    status: unarySync(
      api,
      "Status",
      (): v2.StatusResponse => {
        const status = kms.status();
        return {
          $typeName: types.status,
          version: fixedVersion ?? status.version,
          healthz: status.healthz,
          keyId: status.keyId,
        };
      },
      options,
    ),
    encrypt: unarySync(
      api,
      "Encrypt",
      (request: v2.EncryptRequest, ctx): v2.EncryptResponse => {
        const result = sealing(request.plaintext, () => kms.encrypt(request.plaintext, ctx));
        const response: v2.EncryptResponse = {
          $typeName: types.encrypt,
          ciphertext: result.ciphertext,
          keyId: result.keyId,
          annotations: recordFromMap(result.annotations),
        };
        return wipeOnceSerialized(response, request.plaintext, false);
      },
      options,
    ),
    decrypt: unaryAsync(
      api,
      "Decrypt",
      (request: v2.DecryptRequest, ctx) =>
        kms.decrypt(
          {
            ciphertext: request.ciphertext,
            keyId: request.keyId,
            annotations: mapFromRecord(request.annotations),
          },
          ctx,
        ),
      (plaintext): v2.DecryptResponse =>
        wipeOnceSerialized({ $typeName: types.decrypt, plaintext }, owned(plaintext), true),
      options,
    ),
  };
}

function v1beta1Handlers(options: KmsHandlersOptions): ServiceHandlers<V1beta1Service> {
  const kms = options.service;
  const version: v1beta1.VersionResponse = {
    $typeName: "v1beta1.VersionResponse",
    version: "v1beta1",
    runtimeName,
    runtimeVersion: options.runtimeVersion,
  };
  return {
    version: unarySync(
      "v1beta1",
      "Version",
      (request: v1beta1.VersionRequest) => {
        if (request.version !== "v1beta1") {
          throw new KmsError(
            "INVALID_ARGUMENT",
            'unsupported KMS API version: this endpoint serves "v1beta1" only',
          );
        }
        return version;
      },
      options,
    ),
    encrypt: unarySync(
      "v1beta1",
      "Encrypt",
      (request: v1beta1.EncryptRequest, ctx): v1beta1.EncryptResponse =>
        wipeOnceSerialized(
          {
            $typeName: "v1beta1.EncryptResponse",
            cipher: sealing(request.plain, () => kms.encrypt(request.plain, ctx)).ciphertext,
          },
          request.plain,
          false,
        ),
      options,
    ),
    decrypt: unaryAsync(
      "v1beta1",
      "Decrypt",
      (request: v1beta1.DecryptRequest, ctx) =>
        kms.decrypt({ ciphertext: request.cipher, keyId: "", annotations: noAnnotations }, ctx),
      (plain): v1beta1.DecryptResponse =>
        wipeOnceSerialized({ $typeName: "v1beta1.DecryptResponse", plain }, owned(plain), true),
      options,
    ),
  };
}

const noAnnotations: ReadonlyMap<string, Uint8Array> = new Map();

/** A Decrypt result the service handed over (kms/handoff.ts): ours to zero once it is sent. */
function owned(plaintext: Uint8Array): Uint8Array | undefined {
  return isHandedOver(plaintext) ? plaintext : undefined;
}

/**
 * Runs an Encrypt; if it fails, zeroes the request's plaintext now (on success the response
 * zeroes it once serialized: a service may hand back a view of it, as test doubles do). The
 * plaintext is a view into grpc-js's copy of the received message, which nothing reads again.
 */
function sealing<T>(plaintext: Uint8Array, run: () => T): T {
  try {
    return run();
  } catch (error) {
    plaintext.fill(0);
    throw error;
  }
}

function mapFromRecord(record: { [key: string]: Uint8Array }): ReadonlyMap<string, Uint8Array> {
  const entries = Object.entries(record);
  return entries.length === 0 ? noAnnotations : new Map(entries);
}

function recordFromMap(map: ReadonlyMap<string, Uint8Array>): { [key: string]: Uint8Array } {
  const record: { [key: string]: Uint8Array } = {};
  if (map.size === 0) return record;
  for (const [key, value] of map) record[key] = value;
  return record;
}
