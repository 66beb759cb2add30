/**
 * Ciphertexts made exactly as Azure/kubernetes-kms makes them (docs/architecture.md, "Legacy
 * ciphertexts"): Key Vault `encrypt` through the real Azure SDK against the emulator, then the Go
 * plugin's encoding. Its ciphertext is the ASCII bytes of the base64url string Key Vault returns (taken
 * from the raw HTTP response, as the Go SDK hands it over), not the RSA bytes.
 */
import { createHash, randomUUID } from "node:crypto";
import type { PipelinePolicy, PipelineResponse } from "@azure/core-rest-pipeline";
import { CryptographyClient, type KeyVaultKey } from "@azure/keyvault-keys";
import type { Emulator } from "@keyvault-kms/emulator";
import { emulatorClients } from "./emulator-clients.js";

export interface GoPluginCiphertext {
  /** What the Go plugin returned to kube-apiserver and etcd holds. */
  readonly ciphertext: Buffer;
  /** v2: SHA-256 of the versioned key URL; v1 has none (""). */
  readonly keyId: string;
  /** v2: its five annotations; v1: none. */
  readonly annotations: Record<string, Uint8Array>;
  /** The REST `value` Key Vault answered, as a string (= ciphertext as text). */
  readonly wireValue: string;
}

/**
 * The Go plugin's getKeyIDHash: `keys/<name>/<version>` resolved against the vault URL (with its
 * trailing slash), hashed as the resulting URL string, lowercase hex.
 */
export function goPluginKeyId(vaultUrl: string, keyName: string, keyVersion: string): string {
  const base = vaultUrl.endsWith("/") ? vaultUrl : `${vaultUrl}/`;
  const url = new URL(`keys/${keyName}/${keyVersion}`, base).toString();
  return createHash("sha256").update(url, "utf8").digest("hex");
}

/** A CryptographyClient for one versioned kid that also records each raw HTTP response. */
function recordingClient(
  emu: Emulator,
  kid: string,
): { client: CryptographyClient; responses: PipelineResponse[] } {
  const responses: PipelineResponse[] = [];
  const record: PipelinePolicy = {
    name: "go-plugin-record-response",
    async sendRequest(request, next) {
      const response = await next(request);
      responses.push(response);
      return response;
    },
  };
  const { credential } = emulatorClients(emu);
  // Given a bare kid the SDK would GET the key and do RSA1_5 encrypt locally; the Go plugin always
  // asked Key Vault. A key object without material keeps every operation remote.
  const parsed = /^(https:\/\/[^/]+)\/keys\/([^/]+)\/([^/]+)$/.exec(kid);
  if (parsed === null) throw new Error(`not a versioned kid: ${kid}`);
  const [, vaultUrl = "", name = "", version = ""] = parsed;
  const key: KeyVaultKey = { id: kid, name, properties: { id: kid, name, vaultUrl, version } };
  const client = new CryptographyClient(key, credential, {
    disableChallengeResourceVerification: true,
    tlsOptions: { ca: emu.caPem },
    retryOptions: { maxRetries: 0 },
    additionalPolicies: [{ policy: record, position: "perCall" }],
  });
  return { client, responses };
}

async function keyVaultEncrypt(
  emu: Emulator,
  keyName: string,
  keyVersion: string,
  algorithm: "RSA-OAEP-256" | "RSA1_5",
  plaintext: Uint8Array,
): Promise<{ value: string; kid: string; response: PipelineResponse }> {
  // The Go plugin pins --key-version: always a versioned key URL.
  const kid = `${emu.vaultUrl}/keys/${keyName}/${keyVersion}`;
  const { client, responses } = recordingClient(emu, kid);
  const result = await client.encrypt({ algorithm, plaintext });
  const response = responses.findLast((r) => r.request.url.includes("/encrypt"));
  if (response?.bodyAsText === undefined) throw new Error("no encrypt response was recorded");
  const body = JSON.parse(response.bodyAsText ?? "{}") as { kid?: string; value?: string };
  if (typeof body.value !== "string" || typeof body.kid !== "string") {
    throw new Error("Key Vault's encrypt answer has no value or kid");
  }
  // The SDK's decoded bytes and the raw string are the same ciphertext.
  if (Buffer.from(result.result).toString("base64url") !== body.value.replace(/=+$/, "")) {
    throw new Error("the SDK's encrypt result differs from the wire value");
  }
  return { value: body.value, kid: body.kid, response };
}

/** KMS v2 Encrypt of the Go plugin (kms_v2_server.go): RSA-OAEP-256, key_id, five annotations. */
export async function goPluginEncryptV2(
  emu: Emulator,
  keyName: string,
  keyVersion: string,
  plaintext: Uint8Array,
): Promise<GoPluginCiphertext> {
  const { value, kid, response } = await keyVaultEncrypt(
    emu,
    keyName,
    keyVersion,
    "RSA-OAEP-256",
    plaintext,
  );
  const keyId = goPluginKeyId(emu.vaultUrl, keyName, keyVersion);
  // Its Encrypt fails unless the returned kid hashes to the key_id computed at startup.
  if (createHash("sha256").update(kid, "utf8").digest("hex") !== keyId) {
    throw new Error(`key id initialized does not match the kid ${kid} Key Vault returned`);
  }
  const header = (name: string, fallback: string): string => response.headers.get(name) ?? fallback;
  // The emulator sends Date but not the request id or region headers: realistic stand-ins.
  const annotations: Record<string, Uint8Array> = {
    "date.azure.akv.io": Buffer.from(header("date", new Date().toUTCString())),
    "x-ms-request-id.azure.akv.io": Buffer.from(header("x-ms-request-id", randomUUID())),
    "x-ms-keyvault-region.azure.akv.io": Buffer.from(header("x-ms-keyvault-region", "eastus")),
    "version.azure.akv.io": Buffer.from("1"),
    "algorithm.azure.akv.io": Buffer.from("RSA-OAEP-256"),
  };
  return { ciphertext: Buffer.from(value, "ascii"), keyId, annotations, wireValue: value };
}

/** KMS v1 Encrypt of the Go plugin (server.go): RSA1_5 under the configured version, cipher only. */
export async function goPluginEncryptV1(
  emu: Emulator,
  keyName: string,
  keyVersion: string,
  plaintext: Uint8Array,
): Promise<GoPluginCiphertext> {
  const { value } = await keyVaultEncrypt(emu, keyName, keyVersion, "RSA1_5", plaintext);
  return { ciphertext: Buffer.from(value, "ascii"), keyId: "", annotations: {}, wireValue: value };
}
