import { randomBytes } from "node:crypto";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseConfig, type Config } from "../../src/config/index.js";
import { createEmulator, type Emulator } from "@keyvault-kms/emulator";
import { createCredential } from "../../src/keyvault/index.js";
import { KmsError } from "../../src/kms/errors.js";
import { emulatorWrapper } from "./emulator-wrapper.js";

export const KEY = "kek";

export interface IdentityBench {
  readonly emu: Emulator;
  /** Scratch directory: azure.json files, certificates, token files. */
  readonly dir: string;
  close(): Promise<void>;
}

/** An emulator with one RSA key and a state dir (ca.pem, certificates) under a scratch dir. */
export async function startIdentityBench(
  options: Parameters<typeof createEmulator>[0] = {},
): Promise<IdentityBench> {
  const dir = await mkdtemp(join(tmpdir(), "kvkms-identity-"));
  const emu = await createEmulator({
    stateDir: join(dir, "emulator"),
    keys: [{ name: KEY, kty: "RSA" }],
    ...options,
  });
  return {
    emu,
    dir,
    async close() {
      await emu.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/**
 * The plugin's Config for this emulator, as `serve` builds it: azure.json written to the scratch
 * dir (or none at all when `azureJson` is undefined) and the given environment.
 */
export async function identityConfig(
  bench: IdentityBench,
  azureJson: Record<string, unknown> | undefined,
  env: NodeJS.ProcessEnv = {},
): Promise<Config> {
  const path = join(bench.dir, `azure-${randomBytes(4).toString("hex")}.json`);
  if (azureJson !== undefined) await writeFile(path, JSON.stringify(azureJson), { mode: 0o600 });
  return parseConfig(
    [
      "--keyvault-url",
      bench.emu.vaultUrl,
      "--key-name",
      KEY,
      "--config-file-path",
      path,
      "--ca-file",
      bench.emu.caFile ?? "",
    ],
    { AZURE_AUTHORITY_HOST: bench.emu.authorityHost, ...env },
  );
}

/**
 * Logs in with the configured identity through the real credential and the real Key Vault
 * wrapper, then wraps and unwraps a seed. Resolves to the seed that came back.
 */
export async function wrapRoundTrip(bench: IdentityBench, config: Config): Promise<Buffer> {
  const credential = createCredential({
    identity: config.identity,
    authorityHost: config.authorityHost,
    ...(config.caPem === undefined ? {} : { caPem: config.caPem }),
  });
  const wrapper = emulatorWrapper(bench.emu, KEY, (name) => name === KEY, { credential });
  const state = await wrapper.refresh();
  if (state.current === undefined) throw new Error("no current key version");
  const seed = randomBytes(32);
  const wrapped = await wrapper.wrap(seed, state.current);
  // RSA wraps are local; the unwrap is the Key Vault call that needs the token.
  const back = Buffer.from(await wrapper.unwrap(wrapped));
  if (!back.equals(seed)) throw new Error("unwrapped seed differs");
  return back;
}

/** The KmsError code a promise rejects with. */
export async function kmsCode(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
  } catch (err) {
    if (err instanceof KmsError) return err.code;
    throw err;
  }
  throw new Error("expected a KmsError");
}
