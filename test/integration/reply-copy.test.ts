/**
 * The plugin zeroes a Decrypt reply's serialized bytes one microtask after grpc-js took them
 * (src/grpc/bridge.ts), relying on grpc-js copying them into its own framed buffer first. If a
 * grpc-js upgrade ever queued the plugin's buffer itself, a reply held back by HTTP/2 flow control
 * would reach kube-apiserver as zeros. This holds a reply back (a client window of 0) long after
 * the zeroing, then lets it through, and checks the plaintext that arrives.
 */
import { randomBytes, randomUUID } from "node:crypto";
import { connect as http2Connect, constants } from "node:http2";
import { connect as netConnect } from "node:net";
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import {
  DecryptRequestSchema,
  DecryptResponseSchema,
  KeyManagementService as V2,
} from "../../src/gen/v2/api_pb.js";
import { createClient } from "../helpers/grpc-client.js";
import { startPluginHarness } from "../helpers/plugin-harness.js";

function grpcFrame(message: Uint8Array): Buffer {
  const frame = Buffer.alloc(5 + message.length);
  frame.writeUInt32BE(message.length, 1);
  frame.set(message, 5);
  return frame;
}

describe("a Decrypt reply held back by flow control", () => {
  it("arrives intact, though the plugin zeroed its own serialized copy long before", async () => {
    const h = await startPluginHarness();
    const client = createClient(V2, h.socketPath);
    const session = http2Connect("http://localhost", {
      createConnection: () => netConnect(h.socketPath),
      settings: { initialWindowSize: 0 },
    });
    try {
      const plaintext = randomBytes(512);
      const sealed = await client.encrypt({ plaintext, uid: randomUUID() });
      const request = toBinary(
        DecryptRequestSchema,
        create(DecryptRequestSchema, {
          ciphertext: sealed.ciphertext,
          keyId: sealed.keyId,
          uid: randomUUID(),
        }),
      );
      const stream = session.request({
        [constants.HTTP2_HEADER_METHOD]: "POST",
        [constants.HTTP2_HEADER_PATH]: "/v2.KeyManagementService/Decrypt",
        "content-type": "application/grpc",
        te: "trailers",
      });
      const chunks: Buffer[] = [];
      stream.on("data", (chunk: Buffer) => chunks.push(chunk));
      const ended = new Promise<void>((resolve, reject) => {
        stream.on("end", resolve);
        stream.on("error", reject);
      });
      stream.end(grpcFrame(request));
      // The plugin answers and zeroes its serialized bytes; the reply waits for window.
      await new Promise((r) => setTimeout(r, 300));
      expect(chunks).toHaveLength(0);
      session.settings({ initialWindowSize: 65_535 });
      await ended;
      const body = Buffer.concat(chunks);
      const length = body.readUInt32BE(1);
      const reply = fromBinary(DecryptResponseSchema, body.subarray(5, 5 + length));
      expect(Buffer.from(reply.plaintext).equals(plaintext)).toBe(true);
    } finally {
      session.close();
      client.close();
      await h.close();
    }
  });
});
