import { ClientSecretCredential } from "@azure/identity";
import { CryptographyClient, KeyClient } from "@azure/keyvault-keys";
import type { Emulator } from "@keyvault-kms/emulator";

export interface EmulatorClients {
  credential: ClientSecretCredential;
  keys: KeyClient;
  crypto: (kid: string) => CryptographyClient;
}

/** The unmodified Azure SDK clients pointed at an emulator, with only options changed. */
export function emulatorClients(
  emu: Emulator,
  options: { maxRetries?: number; retryDelayInMs?: number; secret?: string } = {},
): EmulatorClients {
  const ca = emu.caPem;
  const credential = new ClientSecretCredential(
    emu.tenantId,
    emu.clientId,
    options.secret ?? emu.clientSecret,
    {
      authorityHost: emu.authorityHost,
      disableInstanceDiscovery: true,
      tlsOptions: { ca },
      retryOptions: { maxRetries: 0 },
    },
  );
  const clientOptions = {
    disableChallengeResourceVerification: true,
    tlsOptions: { ca },
    retryOptions: {
      maxRetries: options.maxRetries ?? 0,
      retryDelayInMs: options.retryDelayInMs ?? 10,
      maxRetryDelayInMs: 100,
    },
  };
  return {
    credential,
    keys: new KeyClient(emu.vaultUrl, credential, clientOptions),
    crypto: (kid) => new CryptographyClient(kid, credential, clientOptions),
  };
}

/** Rejection details of an SDK call, for asserting on RestError fields. */
export async function failure(promise: Promise<unknown>): Promise<{
  statusCode?: number;
  code?: string;
  message: string;
  innerCode?: string;
}> {
  try {
    await promise;
  } catch (err) {
    const e = err as {
      statusCode?: number;
      code?: string;
      message: string;
      details?: { error?: { innerError?: { code?: string } } };
    };
    const out: { statusCode?: number; code?: string; message: string; innerCode?: string } = {
      message: e.message,
    };
    if (e.statusCode !== undefined) out.statusCode = e.statusCode;
    if (e.code !== undefined) out.code = e.code;
    const inner = e.details?.error?.innerError?.code;
    if (inner !== undefined) out.innerCode = inner;
    return out;
  }
  throw new Error("expected the call to fail");
}
