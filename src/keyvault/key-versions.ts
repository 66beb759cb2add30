/** Which version of the key to wrap under, from one listing of its versions. Pure: no I/O. */
import type { KeyProperties } from "@azure/keyvault-keys";
import type { RevocationReason } from "../kms/key-wrapper.js";

/** Why a version cannot wrap new seeds; only a RevocationReason also stops reading its data. */
export type UnusableReason = RevocationReason | "expired" | "not yet valid";

export interface VersionInfo {
  /** Lowercase: Key Vault identifiers are case-insensitive, envelopes may carry either. */
  readonly version: string;
  /** Milliseconds; Key Vault's `created` has one-second resolution. */
  readonly createdMs: number;
  /** Key Vault's `updated`: changes when the version's attributes do (enabled, exp, tags). */
  readonly updatedMs: number;
  /** Undefined while the version may be used now. */
  readonly reason: UnusableReason | undefined;
}

/** The part of `reason` that revokes: expiry and nbf only keep a version from becoming current. */
export function revocationOf(info: VersionInfo | undefined): RevocationReason | undefined {
  return info?.reason === "disabled" ? "disabled" : undefined;
}

/** Enabled and inside nbf/exp at `now`; otherwise the first reason that applies. */
export function reasonNotUsable(p: KeyProperties, now: Date): UnusableReason | undefined {
  if (p.enabled !== true) return "disabled";
  if (p.notBefore !== undefined && p.notBefore > now) return "not yet valid";
  if (p.expiresOn !== undefined && p.expiresOn <= now) return "expired";
  return undefined;
}

export function versionInfo(p: KeyProperties, now: Date): VersionInfo | undefined {
  if (p.version === undefined || p.version === "") return undefined;
  return {
    version: p.version.toLowerCase(),
    createdMs: p.createdOn?.getTime() ?? 0,
    updatedMs: p.updatedOn?.getTime() ?? p.createdOn?.getTime() ?? 0,
    reason: reasonNotUsable(p, now),
  };
}

/**
 * The newest usable versions: one when the choice is clear, several when they were created within
 * the same second (the caller then asks Key Vault which one it calls current), none when nothing
 * is usable. Sorted, so the same tie always looks the same.
 */
export function newestUsable(versions: Iterable<VersionInfo>): string[] {
  let newest = -Infinity;
  let tied: string[] = [];
  for (const v of versions) {
    if (v.reason !== undefined) continue;
    if (v.createdMs > newest) {
      newest = v.createdMs;
      tied = [v.version];
    } else if (v.createdMs === newest) {
      tied.push(v.version);
    }
  }
  return tied.sort();
}

/** A tie Key Vault cannot settle: the greatest version string, so every node picks the same. */
export function deterministicPick(tied: readonly string[]): string | undefined {
  return tied.at(-1);
}

/**
 * KeyState.currentEpoch: what Key Vault shows that makes `current` more than the newest version as
 * created, so that its key_id must be a derivative (kms/key-id.ts). Two things do:
 * - the version itself was updated after it was created (disabled and enabled again, exp or tags
 *   set: Key Vault's `updated` moves, as azure-sdk-for-java's updateDisabledKey recording shows);
 * - unless pinned, newer versions that are disabled or expired: this is a fall-back, A → B → A′.
 * Newer versions not yet valid were never current, so they do not count. Sorted, so every
 * instance reading the same state builds the same string.
 */
export function epochOf(
  versions: ReadonlyMap<string, VersionInfo>,
  current: string,
  pinned: boolean,
): string | undefined {
  const v = versions.get(current);
  if (v === undefined) return undefined;
  const parts: string[] = [];
  if (v.updatedMs !== v.createdMs) parts.push(`updated ${v.updatedMs}`);
  if (!pinned) {
    const fallenFrom = [...versions.values()]
      .filter(
        (o) =>
          // Strictly newer: `created` has one-second resolution, and a version of the same second
          // cannot be told to be newer (an older one expiring must not touch the key_id).
          o.createdMs > v.createdMs && (o.reason === "disabled" || o.reason === "expired"),
      )
      .sort((a, b) => (a.version < b.version ? -1 : a.version > b.version ? 1 : 0));
    for (const o of fallenFrom) parts.push(`${o.version} ${o.reason ?? ""} ${o.updatedMs}`);
  }
  return parts.length === 0 ? undefined : parts.join("\n");
}
