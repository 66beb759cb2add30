import type { Emulator } from "@keyvault-kms/emulator";
import {
  createCredential,
  createKeyVaultWrapper,
  type KeyVaultWrapper,
  type KeyVaultWrapperOptions,
} from "../../src/keyvault/index.js";

/** The plugin's identity settings for an emulator; `trustCa: false` leaves its CA out. */
export function emulatorCredential(emu: Emulator, trustCa = true) {
  return createCredential({
    identity: {
      kind: "client-secret",
      tenantId: emu.tenantId,
      clientId: emu.clientId,
      clientSecret: emu.clientSecret,
    },
    authorityHost: emu.authorityHost,
    ...(trustCa ? { caPem: emu.caPem } : {}),
  });
}

/** The real Key Vault wrapper pointed at an emulator, allowing keys that `allowKey` accepts. */
export function emulatorWrapper(
  emu: Emulator,
  keyName: string,
  allowKey: (name: string) => boolean,
  overrides: Partial<KeyVaultWrapperOptions> = {},
): KeyVaultWrapper {
  const vaultHost = new URL(emu.vaultUrl).host;
  return createKeyVaultWrapper({
    vaultUrl: emu.vaultUrl,
    vaultHost,
    keyName,
    keyVersion: "",
    credential: emulatorCredential(emu),
    caPem: emu.caPem,
    userAgent: "keyvault-kms-test",
    isAllowed: (ref) => ref.vaultHost === vaultHost && allowKey(ref.keyName),
    ...overrides,
  });
}
