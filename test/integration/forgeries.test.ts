/**
 * Forged envelopes from anyone with access to the socket: well-formed, for the configured key,
 * with a wrapped seed Key Vault cannot unwrap (the check value is unkeyed, by design), or naming a
 * version that does not exist. They must cost at most one Key Vault call each, never mark Key
 * Vault unhealthy in /readyz, and never open the circuit.
 */
import { randomBytes, randomUUID } from "node:crypto";
import { KeyManagementService as V2 } from "../../src/gen/v2/api_pb.js";
import { encodeEnvelope, parseEnvelope } from "../../src/kms/envelope.js";
import { goPluginKeyId } from "../helpers/go-plugin-ciphertext.js";
import { callError, createClient } from "../helpers/grpc-client.js";
import { startPluginHarness } from "../helpers/plugin-harness.js";
import { scrapeText } from "../helpers/scrape.js";
import { report } from "../helpers/report.js";

interface Readiness {
  ready: boolean;
  keyVault: { healthy: boolean | null; consecutiveFailures: number };
}

describe("forged envelopes", () => {
  it("20 identical forgeries make at most one unwrapKey, and /readyz stays ready", async () => {
    const h = await startPluginHarness();
    const client = createClient(V2, h.socketPath, { timeoutMs: 3_000 });
    try {
      const real = await client.encrypt({ plaintext: randomBytes(32), uid: randomUUID() });
      const envelope = parseEnvelope(real.ciphertext);
      const forge = (keyVersion: string) =>
        encodeEnvelope({
          seed: {
            ...envelope.seed,
            key: { ...envelope.seed.key, keyVersion },
            wrapped: randomBytes(envelope.seed.wrapped.length),
          },
          salt: envelope.salt,
          nonce: envelope.nonce,
          ciphertext: envelope.ciphertext,
          tag: envelope.tag,
        });
      const missing = "0123456789abcdef0123456789abcdef";
      // key_id is public (SHA-256 of the versioned key URL): a forger computes it too.
      const missingKeyId = goPluginKeyId(h.emu.vaultUrl, envelope.seed.key.keyName, missing);
      const cases = [
        ["a wrong wrapped seed", forge(envelope.seed.key.keyVersion), real.keyId],
        ["a version that does not exist", forge(missing), missingKeyId],
      ] as const;
      for (const [what, ciphertext, keyId] of cases) {
        h.emu.resetCounters();
        const codes = new Set<string>();
        for (let i = 0; i < 20; i++) {
          const err = await callError(client.decrypt({ ciphertext, keyId, uid: randomUUID() }));
          codes.add(err.codeName);
        }
        const unwraps = h.emu.counters()["unwrapkey"] ?? 0;
        const ready = await fetch(`${h.plugin.healthUrl!}/readyz`);
        const body = (await ready.json()) as Readiness;
        report(
          `forgeries: ${what}: 20 Decrypts → ${[...codes].join(",")}, ${unwraps} unwrapKey, /readyz ${ready.status} keyVault.healthy ${String(body.keyVault.healthy)}`,
        );
        expect(unwraps).toBeLessThanOrEqual(1);
        expect([...codes]).toHaveLength(1);
        expect(["INVALID_ARGUMENT", "FAILED_PRECONDITION"]).toContain([...codes][0]);
        expect(ready.status).toBe(200);
        expect(body.ready).toBe(true);
        expect(body.keyVault.healthy).toBe(true);
      }
      const metrics = await scrapeText(h.plugin.metricsUrl);
      expect(metrics).toMatch(/azurekms_keyvault_circuit_state 0/);
      // Real data still decrypts.
      const back = await client.decrypt({
        ciphertext: real.ciphertext,
        keyId: real.keyId,
        uid: randomUUID(),
      });
      expect(back.plaintext.length).toBe(32);
    } finally {
      client.close();
      await h.close();
    }
  });
});
