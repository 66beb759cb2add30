/* global Buffer */
/**
 * Envelopes under many seeds, to fill the plugin's seed cache before the memory figures.
 *
 * Making 1000 seeds the plugin's way would take 1000 plugin starts (or 1000 s at the shortest
 * --seed-max-age). Instead this makes them as the plugin does, with its own code: 32 random
 * bytes wrapped locally with the key's public RSA key (RSA-OAEP-256, as the plugin's wrapper does
 * for RSA keys), sealed by the plugin's Seed class. Decrypting one envelope per seed makes the
 * plugin unwrap each seed through Key Vault and cache it, exactly as for data it wrote itself.
 */
import { ClientSecretCredential } from "@azure/identity";
import { KeyClient } from "@azure/keyvault-keys";
import { constants, createPublicKey, publicEncrypt, randomBytes } from "node:crypto";
import { parseEnvelope } from "../../dist/kms/envelope.js";
import { Seed, SEED_LENGTH } from "../../dist/kms/seed.js";

const b64url = (bytes) => Buffer.from(bytes).toString("base64url");

/** The emulator key's public half, via the Azure SDK like any Key Vault client. */
async function publicKey(emu, keyName) {
  const credential = new ClientSecretCredential(emu.tenantId, emu.clientId, emu.clientSecret, {
    authorityHost: emu.authorityHost,
    disableInstanceDiscovery: true,
    tlsOptions: { ca: emu.caPem },
  });
  const client = new KeyClient(emu.vaultUrl, credential, {
    disableChallengeResourceVerification: true,
    tlsOptions: { ca: emu.caPem },
  });
  const key = await client.getKey(keyName);
  return {
    kid: key.id,
    key: createPublicKey({
      key: { kty: "RSA", n: b64url(key.key.n), e: b64url(key.key.e) },
      format: "jwk",
    }),
  };
}

/**
 * `count` envelopes, each under its own new seed, wrapped under the same key version as
 * `sampleCiphertext` (one of the plugin's own). Items: { ciphertext, keyId, plaintext }.
 */
export async function envelopesUnderNewSeeds(emu, sampleCiphertext, count) {
  const ref = parseEnvelope(sampleCiphertext).seed.key;
  const { kid, key } = await publicKey(emu, ref.keyName);
  if (!kid.endsWith(`/${ref.keyVersion}`)) {
    throw new Error(`the plugin's key version ${ref.keyVersion} is not the current one (${kid})`);
  }
  const items = [];
  for (let i = 0; i < count; i++) {
    const bytes = randomBytes(SEED_LENGTH);
    const wrapped = publicEncrypt(
      { key, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: "sha256" },
      bytes,
    );
    const seed = new Seed(bytes, { key: ref, algorithm: "RSA-OAEP-256", wrapped });
    const plaintext = randomBytes(32);
    items.push({ ciphertext: seed.seal(plaintext), keyId: seed.keyId, plaintext });
    seed.destroy();
  }
  return items;
}
