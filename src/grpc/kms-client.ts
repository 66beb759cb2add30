import * as v1beta1 from "../gen/v1beta1/api_pb.js";
import * as v2 from "../gen/v2/api_pb.js";
import * as v2alpha1 from "../gen/v2alpha1/api_pb.js";
import type { KmsApi } from "../kms/index.js";
import { parseListenAddress } from "./listen-address.js";
import { createPromiseClient } from "./promise-client.js";
import type { PromiseClient, PromiseClientOptions } from "./promise-client.js";

export type ClientApi = KmsApi;

export interface KmsClientOptions {
  /** Same form as the plugin's `--listen-addr`. */
  readonly listenAddr: string;
  /** Deadline of each call, in ms. */
  readonly timeoutMs?: number | undefined;
  /** HTTP/2 `:authority` to send. */
  readonly authority?: string | undefined;
}

/** Status (v2, v2alpha1) or Version (v1beta1), as plain JSON-able fields. */
export type StatusAnswer =
  | { readonly version: string; readonly healthz: string; readonly keyId: string }
  | { readonly version: string; readonly runtimeName: string; readonly runtimeVersion: string };

export interface EncryptAnswer {
  readonly ciphertext: Uint8Array;
  /** Empty on v1beta1. */
  readonly keyId: string;
  readonly annotations: ReadonlyMap<string, Uint8Array>;
}

export interface DecryptRequestFields {
  readonly ciphertext: Uint8Array;
  readonly keyId: string;
  readonly annotations: ReadonlyMap<string, Uint8Array>;
  readonly uid: string;
}

/** What `keyvault-kms client` uses: one call per API, failures as KmsClientError. */
export interface KmsClient {
  status(api: ClientApi): Promise<StatusAnswer>;
  encrypt(api: ClientApi, plaintext: Uint8Array, uid: string): Promise<EncryptAnswer>;
  decrypt(api: ClientApi, request: DecryptRequestFields): Promise<Uint8Array>;
  close(): void;
}

type V2Client = PromiseClient<typeof v2.KeyManagementService>;
type V1beta1Client = PromiseClient<typeof v1beta1.KeyManagementService>;

export function createKmsClient(options: KmsClientOptions): KmsClient {
  const socketPath = parseListenAddress(options.listenAddr);
  const clientOptions: PromiseClientOptions = {
    authority: options.authority,
    timeoutMs: options.timeoutMs,
  };
  const clients: { v2?: V2Client; v2alpha1?: V2Client; v1beta1?: V1beta1Client } = {};

  function v2Family(api: "v2" | "v2alpha1"): V2Client {
    // v2alpha1's messages match v2's field for field; only the service path differs.
    return (clients[api] ??=
      api === "v2"
        ? createPromiseClient(v2.KeyManagementService, socketPath, clientOptions)
        : (createPromiseClient(
            v2alpha1.KeyManagementService,
            socketPath,
            clientOptions,
          ) as unknown as V2Client));
  }
  function v1(): V1beta1Client {
    return (clients.v1beta1 ??= createPromiseClient(
      v1beta1.KeyManagementService,
      socketPath,
      clientOptions,
    ));
  }

  return {
    async status(api) {
      if (api === "v1beta1") {
        const r = await v1().version({ version: "v1beta1" });
        return { version: r.version, runtimeName: r.runtimeName, runtimeVersion: r.runtimeVersion };
      }
      const r = await v2Family(api).status({});
      return { version: r.version, healthz: r.healthz, keyId: r.keyId };
    },
    async encrypt(api, plaintext, uid) {
      if (api === "v1beta1") {
        const r = await v1().encrypt({ version: "v1beta1", plain: plaintext });
        return { ciphertext: r.cipher, keyId: "", annotations: new Map() };
      }
      const r = await v2Family(api).encrypt({ plaintext, uid });
      return {
        ciphertext: r.ciphertext,
        keyId: r.keyId,
        annotations: new Map(Object.entries(r.annotations)),
      };
    },
    async decrypt(api, request) {
      if (api === "v1beta1") {
        const r = await v1().decrypt({ version: "v1beta1", cipher: request.ciphertext });
        return r.plain;
      }
      const r = await v2Family(api).decrypt({
        ciphertext: request.ciphertext,
        keyId: request.keyId,
        uid: request.uid,
        annotations: Object.fromEntries(request.annotations),
      });
      return r.plaintext;
    },
    close() {
      clients.v2?.close();
      clients.v2alpha1?.close();
      clients.v1beta1?.close();
    },
  };
}
