/**
 * The key permissions of a vault access policy (learn.microsoft.com/azure/key-vault/general/
 * security-features, "Key Vault access policies"; the permission names of `az keyvault
 * set-policy --key-permissions`). Every identity the emulator knows shares one policy; default:
 * all permissions. A refusal is Key Vault's 403 for an access-policy vault (seen in
 * turbot/steampipe-plugin-azure#127: "The user, group or application '…' does not have secrets
 * list permission on key vault '…'", innererror AccessDenied; the keys variant says "keys").
 */
import { KeyVaultError } from "./http-io.js";
import type { Operation } from "./counters.js";

export const KEY_PERMISSIONS = [
  "get",
  "list",
  "update",
  "create",
  "import",
  "delete",
  "recover",
  "backup",
  "restore",
  "decrypt",
  "encrypt",
  "unwrapKey",
  "wrapKey",
  "verify",
  "sign",
  "purge",
  "release",
  "rotate",
  "getrotationpolicy",
  "setrotationpolicy",
] as const;

export type KeyPermission = (typeof KEY_PERMISSIONS)[number];

/** The permission each keys-API operation needs. */
const NEEDS: Partial<Record<Operation, KeyPermission>> = {
  get: "get",
  list: "list",
  create: "create",
  rotate: "rotate",
  update: "update",
  delete: "delete",
  getdeleted: "get",
  purge: "purge",
  recover: "recover",
  wrapkey: "wrapKey",
  unwrapkey: "unwrapKey",
  encrypt: "encrypt",
  decrypt: "decrypt",
};

/** Case-insensitive names, as `az` takes them; throws on an unknown one. */
export function parseKeyPermissions(names: readonly string[]): Set<KeyPermission> {
  const out = new Set<KeyPermission>();
  for (const raw of names) {
    const name = raw.trim();
    if (name === "") continue;
    if (name.toLowerCase() === "all") return new Set(KEY_PERMISSIONS);
    const found = KEY_PERMISSIONS.find((p) => p.toLowerCase() === name.toLowerCase());
    if (found === undefined) {
      throw new TypeError(`unknown key permission "${name}": ${KEY_PERMISSIONS.join(", ")}, all`);
    }
    out.add(found);
  }
  return out;
}

export interface Caller {
  readonly clientId: string;
  readonly tenantId: string;
}

/** Throws the real 403 when the policy lacks what `operation` needs. */
export function checkPermission(
  granted: ReadonlySet<KeyPermission>,
  operation: Operation,
  caller: Caller,
  vaultName: string,
): void {
  const needed = NEEDS[operation];
  if (needed === undefined || granted.has(needed)) return;
  throw new KeyVaultError(
    403,
    "Forbidden",
    `The user, group or application 'appid=${caller.clientId};oid=${caller.clientId};iss=https://sts.windows.net/${caller.tenantId}/' does not have keys ${needed} permission on key vault '${vaultName};location=emulator'. For help resolving this issue, please see https://go.microsoft.com/fwlink/?linkid=2125287`,
    "AccessDenied",
  );
}
