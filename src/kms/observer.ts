/** What the service tells the metrics and log layers about rotation. */
import type { KmsError } from "./errors.js";
import type { KeyReference, RevocationReason } from "./key-wrapper.js";

/** Why a seed was made: the first one, a new key version, or the old seed's age. */
export type SeedCause = "start" | "promotion" | "max-age";

/** Every method is optional and called synchronously; what it throws or rejects is ignored. */
export interface KmsObserver {
  /** Every successful Decrypt, with the key version the envelope names. */
  onDecrypt?(key: KeyReference): void;
  /** The current seed's key version changed (the first one too); undefined, "" when none is usable. */
  onCurrentKey?(key: KeyReference | undefined, keyId: string): void;
  /** New seeds now go under `to`; `from` is undefined when no seed was usable before. */
  onPromote?(from: KeyReference | undefined, to: KeyReference): void;
  /** A version of the configured key became unusable (or its reason changed). */
  onRevoke?(keyVersion: string, reason: RevocationReason): void;
  /** A revoked version became usable again. */
  onRestore?(keyVersion: string): void;
  onSeedCreated?(key: KeyReference, cause: SeedCause): void;
  /** A refresh or a seed wrap failed; nothing was changed because of it. */
  onRefreshFailed?(error: KmsError): void;
  /** What Key Vault's view of the key cannot show changed (KeyState.limitation; undefined: none). */
  onKeyViewLimited?(limitation: string | undefined): void;
  /**
   * The poll's unwrap of the current seed was refused (a permission or key_ops lost), or works
   * again (undefined). Called on changes only.
   */
  onUnwrapRefused?(error: KmsError | undefined): void;
}

type Event = keyof KmsObserver;
type Args<E extends Event> = Parameters<NonNullable<KmsObserver[E]>>;

/** Calls `observer[event]`, if any, so that it can never fail the caller. */
export function notify<E extends Event>(
  observer: KmsObserver | undefined,
  event: E,
  ...args: Args<E>
): void {
  const method = observer?.[event] as ((...a: Args<E>) => unknown) | undefined;
  if (method === undefined) return;
  try {
    const result = method.apply(observer, args);
    // An async observer's rejection would otherwise be an unhandled rejection (a crash).
    if (result instanceof Promise) result.catch(() => undefined);
  } catch {
    // A broken observer must not break Status, Encrypt or Decrypt.
  }
}
