/**
 * Default client-side allowance per 10-second window, from what Key Vault and Managed HSM allow
 * for the key's type. Vaults: learn.microsoft.com/azure/key-vault/general/service-limits ("all
 * other transactions" per key type, per vault, per 10 s; throttled beyond with 429). Managed HSM
 * does not throttle cryptographic operations; its scaling guidance gives the unwraps per second
 * one partition sustains (managed-hsm/scaling-guidance), used here as the capacity not to exceed.
 *
 * One instance takes a third: a control plane of three nodes shares one vault (and the vault may
 * serve others too), and the limiter adapts further when Key Vault throttles anyway.
 */
import { KEY_VAULT_WINDOW_MS } from "./rate-limiter.js";

const SHARE = 3;

/** Vault limits per 10 s: [HSM-protected, software-protected], by RSA modulus bits. */
const VAULT_RSA: ReadonlyMap<number, readonly [number, number]> = new Map([
  [2048, [2000, 4000]],
  [3072, [500, 1000]],
  [4096, [250, 500]],
]);
/** Managed HSM unwraps per second (one partition), by RSA modulus bits; AES key wrap below. */
const MHSM_RSA_UNWRAP: ReadonlyMap<number, number> = new Map([
  [2048, 1100],
  [3072, 360],
  [4096, 160],
]);
const MHSM_AES_UNWRAP = 1800;

/** Before the key is read: the smallest vault figure (RSA-4096, HSM). */
export const UNKNOWN_KEY_ALLOWANCE = Math.floor(250 / SHARE);

export interface KeyKind {
  readonly managedHsm: boolean;
  /** Key Vault's kty: RSA, RSA-HSM, oct-HSM. */
  readonly keyType: string;
  /** RSA modulus size; undefined for AES. */
  readonly rsaBits?: number | undefined;
}

/** Requests per 10 s this instance may send for a key of this kind. */
export function defaultAllowance(kind: KeyKind): number {
  const perWindow = kind.managedHsm ? managedHsmPerWindow(kind) : vaultPerWindow(kind);
  return Math.max(1, Math.floor(perWindow / SHARE));
}

function vaultPerWindow(kind: KeyKind): number {
  // A size between the listed ones costs like the next larger (limits are weighted by cost).
  const row = VAULT_RSA.get(roundUp(kind.rsaBits ?? 4096, [...VAULT_RSA.keys()]));
  if (row === undefined) return 250;
  // Only a key Key Vault calls software ("RSA") gets the software figure; anything else the HSM's.
  return kind.keyType === "RSA" ? row[1] : row[0];
}

function managedHsmPerWindow(kind: KeyKind): number {
  const perSecond =
    kind.keyType === "oct-HSM"
      ? MHSM_AES_UNWRAP
      : (MHSM_RSA_UNWRAP.get(roundUp(kind.rsaBits ?? 4096, [...MHSM_RSA_UNWRAP.keys()])) ?? 160);
  return (perSecond * KEY_VAULT_WINDOW_MS) / 1000;
}

function roundUp(bits: number, sizes: number[]): number {
  return sizes.find((s) => bits <= s) ?? Math.max(...sizes);
}
