import type { Config } from "../config/index.js";
import {
  createCredential,
  type KeyVaultCallObserver,
  type KeyVaultWrapperOptions,
} from "../keyvault/index.js";
import type { ProxyModeSettings } from "../keyvault/proxy-mode.js";
import { KeyAllowlist } from "../kms/index.js";
import { userAgent } from "../version.js";

export interface KeyVaultSetup {
  readonly allowlist: KeyAllowlist;
  /** What createKeyVaultWrapper takes; its credential is also the one to ask for tokens. */
  readonly wrapperOptions: KeyVaultWrapperOptions;
}

/**
 * One serve configuration → the identity, allowlist and Key Vault wrapper options, for `serve`
 * and for `doctor`, so that doctor checks exactly what serve would use (TLS, proxy mode, rate
 * limit and circuit breaker included).
 */
export function keyVaultSetup(config: Config, callObserver?: KeyVaultCallObserver): KeyVaultSetup {
  const proxyMode: ProxyModeSettings | undefined = config.proxyMode
    ? { address: config.proxyAddress, port: config.proxyPort }
    : undefined;
  const transport = {
    ...(config.caPem === undefined ? {} : { caPem: config.caPem }),
    ...(proxyMode === undefined ? {} : { proxyMode }),
  };
  const observed = callObserver === undefined ? {} : { callObserver };
  const credential = createCredential({
    identity: config.identity,
    authorityHost: config.authorityHost,
    ...observed,
    ...transport,
  });
  const allowlist = new KeyAllowlist({ vaultHost: config.vaultHost, keyName: config.keyName });
  return {
    allowlist,
    wrapperOptions: {
      vaultUrl: config.vaultUrl,
      vaultHost: config.vaultHost,
      keyName: config.keyName,
      keyVersion: config.keyVersion,
      managedHsm: config.managedHsm,
      credential,
      userAgent,
      isAllowed: (ref) => allowlist.allows(ref),
      ...(config.keyVaultApiVersion === "" ? {} : { apiVersion: config.keyVaultApiVersion }),
      resilience: {
        rateLimit: config.keyVaultRateLimit,
        breakerThreshold: config.keyVaultBreakerThreshold,
        breakerCoolDownMs: Math.min(500, config.keyVaultBreakerCoolDownMs),
        breakerMaxCoolDownMs: config.keyVaultBreakerCoolDownMs,
      },
      ...observed,
      ...transport,
    },
  };
}
