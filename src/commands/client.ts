import { randomUUID } from "node:crypto";
import { text } from "node:stream/consumers";
import {
  flagUsage,
  parseDuration,
  parseFlags,
  UsageError,
  type FlagSpec,
  type ParsedFlags,
} from "../config/index.js";
import {
  createKmsClient,
  KmsClientError,
  ListenAddressError,
  type ClientApi,
} from "../grpc/index.js";
import { exitCodes, type CommandIo } from "./io.js";

export const clientFlags: readonly FlagSpec[] = [
  {
    name: "listen-addr",
    kind: "string",
    default: "unix:///opt/azurekms.socket",
    help: "the plugin's socket",
  },
  { name: "api", kind: "string", default: "v2", help: "v2, v2alpha1 or v1beta1" },
  {
    name: "timeout",
    kind: "duration",
    default: "3s",
    help: "deadline of each call (kube-apiserver's default)",
  },
  { name: "authority", kind: "string", default: "localhost", help: "HTTP/2 :authority to send" },
  { name: "plaintext", kind: "string", default: "", help: "encrypt: UTF-8 text to encrypt" },
  {
    name: "plaintext-base64",
    kind: "string",
    default: "",
    help: "encrypt: bytes to encrypt, base64",
  },
  {
    name: "ciphertext",
    kind: "string",
    default: "",
    help: "decrypt: base64 ciphertext (else the JSON of `client encrypt` on stdin)",
  },
  { name: "key-id", kind: "string", default: "", help: "decrypt: key_id returned by Encrypt" },
];

export function clientUsage(): string {
  return `Usage: keyvault-kms client status|encrypt|decrypt [flags]

Calls a running plugin over its socket, as kube-apiserver does. Exit code 0 when the call
succeeds (status: and the plugin is healthy), 1 when it fails, 2 for a bad command line.

  status    calls Status (v2, v2alpha1) or Version (v1beta1) and prints the answer as JSON
  encrypt   encrypts --plaintext or --plaintext-base64 and prints {"ciphertext","keyId","annotations"}
  decrypt   decrypts --ciphertext (+ --key-id), or the JSON printed by encrypt read from stdin

Flags:
${flagUsage(clientFlags)}
`;
}

interface EncryptOutput {
  ciphertext?: unknown;
  keyId?: unknown;
  annotations?: unknown;
}

function toBase64Map(m: ReadonlyMap<string, Uint8Array>): Record<string, string> {
  return Object.fromEntries([...m].map(([k, v]) => [k, Buffer.from(v).toString("base64")]));
}

async function decryptInput(
  flags: ParsedFlags,
  io: CommandIo,
): Promise<{ ciphertext: Uint8Array; keyId: string; annotations: Map<string, Uint8Array> }> {
  const given = flags.get("ciphertext");
  if (given !== "") {
    return {
      ciphertext: Buffer.from(given, "base64"),
      keyId: flags.get("key-id"),
      annotations: new Map(),
    };
  }
  if (io.stdin === undefined || io.stdin.isTTY === true) {
    throw new UsageError("decrypt needs --ciphertext, or the output of `client encrypt` on stdin");
  }
  let parsed: EncryptOutput;
  try {
    parsed = JSON.parse(await text(io.stdin)) as EncryptOutput;
  } catch {
    throw new UsageError("stdin is not the JSON printed by `client encrypt`");
  }
  if (typeof parsed.ciphertext !== "string") throw new UsageError("stdin JSON has no ciphertext");
  const annotations = new Map<string, Uint8Array>();
  if (typeof parsed.annotations === "object" && parsed.annotations !== null) {
    for (const [k, v] of Object.entries(parsed.annotations as Record<string, unknown>)) {
      if (typeof v === "string") annotations.set(k, Buffer.from(v, "base64"));
    }
  }
  return {
    ciphertext: Buffer.from(parsed.ciphertext, "base64"),
    keyId: flags.values.get("key-id") ?? (typeof parsed.keyId === "string" ? parsed.keyId : ""),
    annotations,
  };
}

export async function clientCommand(argv: readonly string[], io: CommandIo): Promise<number> {
  const [action, ...rest] = argv;
  if (action === undefined) {
    io.err(clientUsage());
    return exitCodes.usage;
  }
  let client;
  let api: ClientApi;
  let flags: ParsedFlags;
  try {
    if (action !== "status" && action !== "encrypt" && action !== "decrypt") {
      throw new UsageError(`unknown client action "${action}": status, encrypt or decrypt`);
    }
    flags = parseFlags(rest, clientFlags);
    if (flags.rest.length > 0) throw new UsageError(`unexpected argument: ${flags.rest[0] ?? ""}`);
    const apiRaw = flags.get("api");
    if (apiRaw !== "v2" && apiRaw !== "v2alpha1" && apiRaw !== "v1beta1") {
      throw new UsageError(`invalid --api "${apiRaw}": v2, v2alpha1 or v1beta1`);
    }
    api = apiRaw;
    client = createKmsClient({
      listenAddr: flags.get("listen-addr"),
      timeoutMs: parseDuration("timeout", flags.get("timeout")),
      authority: flags.get("authority"),
    });
  } catch (err) {
    if (err instanceof UsageError || err instanceof ListenAddressError) {
      io.err(`keyvault-kms client: ${err.message}`);
      return exitCodes.usage;
    }
    throw err;
  }
  try {
    if (action === "status") {
      const status = await client.status(api);
      io.out(JSON.stringify(status));
      // What kube-apiserver requires of Status before it uses the plugin: a smoke test must fail too.
      if ("healthz" in status && (status.healthz !== "ok" || status.keyId === "")) {
        io.err(
          `keyvault-kms client: status: the plugin answers but is not healthy (healthz ${JSON.stringify(status.healthz)}${status.keyId === "" ? ", no key_id" : ""}): kube-apiserver will not use it; see its log or /readyz`,
        );
        return exitCodes.failed;
      }
    } else if (action === "encrypt") {
      const b64 = flags.get("plaintext-base64");
      const plaintext =
        b64 !== "" ? Buffer.from(b64, "base64") : Buffer.from(flags.get("plaintext"), "utf8");
      const res = await client.encrypt(api, plaintext, randomUUID());
      io.out(
        JSON.stringify({
          ciphertext: Buffer.from(res.ciphertext).toString("base64"),
          keyId: res.keyId,
          annotations: toBase64Map(res.annotations),
        }),
      );
    } else {
      const input = await decryptInput(flags, io);
      const plaintext = Buffer.from(await client.decrypt(api, { ...input, uid: randomUUID() }));
      io.out(
        JSON.stringify({
          plaintext: plaintext.toString("utf8"),
          plaintextBase64: plaintext.toString("base64"),
        }),
      );
    }
    return exitCodes.ok;
  } catch (err) {
    if (err instanceof UsageError) {
      io.err(`keyvault-kms client: ${err.message}`);
      return exitCodes.usage;
    }
    if (err instanceof KmsClientError) {
      io.err(`keyvault-kms client: ${action} failed: ${err.codeName}: ${err.details}`);
      return exitCodes.failed;
    }
    throw err;
  } finally {
    client.close();
  }
}
