#!/usr/bin/env node
/* global process, console */
/**
 * The bench's "direct" mode: what the Go plugin (Azure/kubernetes-kms) does, one Key Vault
 * request per KMS call. Encrypt is a Key Vault `encrypt` of the DEK with RSA-OAEP-256, Decrypt a
 * Key Vault `decrypt`; nothing is cached. It uses the unmodified Azure SDK (CryptographyClient,
 * ClientSecretCredential) against the emulator, as test/helpers/emulator-clients.ts does.
 * Serves v2 (Status, Encrypt, Decrypt) and v1beta1 (Version, Encrypt, Decrypt).
 *
 * The SDK would encrypt locally with a downloaded public key for RSA-OAEP, but it has no local
 * RSA-OAEP-256: every Encrypt goes to Key Vault, as in the Go plugin.
 *
 * Env: BENCH_SOCKET (path), BENCH_VAULT (JSON: vaultUrl, authorityHost, tenantId, clientId,
 * clientSecret, caFile, keyName).
 */
import { create } from "@bufbuild/protobuf";
import { ClientSecretCredential } from "@azure/identity";
import { CryptographyClient, KeyClient } from "@azure/keyvault-keys";
import { Server, ServerCredentials, status as grpcStatus } from "@grpc/grpc-js";
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import * as v1beta1 from "../dist/gen/v1beta1/api_pb.js";
import * as v2 from "../dist/gen/v2/api_pb.js";
import { addService } from "../dist/grpc/bridge.js";

const ALGORITHM = "RSA-OAEP-256";
const socketPath = process.env.BENCH_SOCKET;
const vault = JSON.parse(process.env.BENCH_VAULT ?? "{}");
const ca = readFileSync(vault.caFile, "utf8");

const credential = new ClientSecretCredential(vault.tenantId, vault.clientId, vault.clientSecret, {
  authorityHost: vault.authorityHost,
  disableInstanceDiscovery: true,
  tlsOptions: { ca },
});
const clientOptions = { disableChallengeResourceVerification: true, tlsOptions: { ca } };

// The key object (not its URL) so that the SDK does not fetch it again on the first operation.
const key = await new KeyClient(vault.vaultUrl, credential, clientOptions).getKey(vault.keyName);
const cryptoClient = new CryptographyClient(key, credential, clientOptions);
const keyId = createHash("sha256").update(key.id).digest("hex");

/** Adapts a promise-returning handler to grpc-js; a failed Key Vault call is UNAVAILABLE. */
const unary = (run) => (call, callback) => {
  run(call.request).then(
    (response) => callback(null, response),
    (error) => callback({ code: grpcStatus.UNAVAILABLE, details: String(error?.message ?? error) }),
  );
};

const encrypt = async (plaintext) =>
  (await cryptoClient.encrypt({ algorithm: ALGORITHM, plaintext })).result;
const decrypt = async (ciphertext) =>
  (await cryptoClient.decrypt({ algorithm: ALGORITHM, ciphertext })).result;

const server = new Server();
const statusResponse = create(v2.StatusResponseSchema, { version: "v2", healthz: "ok", keyId });
addService(server, v2.KeyManagementService, {
  status: (_call, callback) => callback(null, statusResponse),
  encrypt: unary(async (request) =>
    create(v2.EncryptResponseSchema, { ciphertext: await encrypt(request.plaintext), keyId }),
  ),
  decrypt: unary(async (request) =>
    create(v2.DecryptResponseSchema, { plaintext: await decrypt(request.ciphertext) }),
  ),
});
const version = create(v1beta1.VersionResponseSchema, {
  version: "v1beta1",
  runtimeName: "direct",
  runtimeVersion: "0",
});
addService(server, v1beta1.KeyManagementService, {
  version: (_call, callback) => callback(null, version),
  encrypt: unary(async (request) =>
    create(v1beta1.EncryptResponseSchema, { cipher: await encrypt(request.plain) }),
  ),
  decrypt: unary(async (request) =>
    create(v1beta1.DecryptResponseSchema, { plain: await decrypt(request.cipher) }),
  ),
});

server.bindAsync(`unix://${socketPath}`, ServerCredentials.createInsecure(), (error) => {
  if (error) {
    console.error(error);
    process.exit(1);
  }
});

process.once("SIGTERM", () => {
  server.tryShutdown(() => process.exit(0));
});
