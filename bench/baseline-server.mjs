#!/usr/bin/env node
/* global process, Buffer, console */
/**
 * The baseline of `npm run bench`: what gRPC itself costs on this machine. A plain grpc-js
 * Server bound to a unix socket, serving the same three services as the plugin (v2, v2alpha1,
 * v1beta1 KeyManagementService) through the same ServiceDefinition bridge (the same
 * @bufbuild messages, toBinary/fromBinary), with handlers that do nothing but answer fixed
 * messages. The answers are the plugin's own sizes: the orchestrator passes one of the
 * plugin's Encrypt answers (ciphertext, key_id) and its plaintext.
 *
 * Env: BENCH_SOCKET (path), BENCH_ANSWERS (JSON: keyId, ciphertext and plaintext in base64).
 */
import { create } from "@bufbuild/protobuf";
import { Server, ServerCredentials } from "@grpc/grpc-js";
import * as v1beta1 from "../dist/gen/v1beta1/api_pb.js";
import * as v2 from "../dist/gen/v2/api_pb.js";
import * as v2alpha1 from "../dist/gen/v2alpha1/api_pb.js";
import { addService } from "../dist/grpc/bridge.js";

const socketPath = process.env.BENCH_SOCKET;
const answers = JSON.parse(process.env.BENCH_ANSWERS ?? "{}");
const ciphertext = Buffer.from(answers.ciphertext, "base64");
const plaintext = Buffer.from(answers.plaintext, "base64");

/** Status, Encrypt and Decrypt of a v2-shaped package, each answering one prebuilt message. */
function v2Family(pkg, version) {
  const status = create(pkg.StatusResponseSchema, { version, healthz: "ok", keyId: answers.keyId });
  const encrypt = create(pkg.EncryptResponseSchema, { ciphertext, keyId: answers.keyId });
  const decrypt = create(pkg.DecryptResponseSchema, { plaintext });
  return {
    status: (_call, callback) => callback(null, status),
    encrypt: (_call, callback) => callback(null, encrypt),
    decrypt: (_call, callback) => callback(null, decrypt),
  };
}

const version = create(v1beta1.VersionResponseSchema, {
  version: "v1beta1",
  runtimeName: "baseline",
  runtimeVersion: "0",
});
const v1Encrypt = create(v1beta1.EncryptResponseSchema, { cipher: ciphertext });
const v1Decrypt = create(v1beta1.DecryptResponseSchema, { plain: plaintext });

const server = new Server();
addService(server, v2.KeyManagementService, v2Family(v2, "v2"));
addService(server, v2alpha1.KeyManagementService, v2Family(v2alpha1, "v2alpha1"));
addService(server, v1beta1.KeyManagementService, {
  version: (_call, callback) => callback(null, version),
  encrypt: (_call, callback) => callback(null, v1Encrypt),
  decrypt: (_call, callback) => callback(null, v1Decrypt),
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
