import type { CallObserver } from "../grpc/index.js";
import type { KmsObserver } from "../kms/index.js";
import type { Logger } from "../log/index.js";

/** Logs the key lifecycle events an operator acts on: promotions, revocations, failed reads. */
export function keyEventLogger(logger: Logger): KmsObserver {
  return {
    onPromote(from, to) {
      logger.info(
        { from: from?.keyVersion ?? null, to: to.keyVersion, keyName: to.keyName },
        "key version promoted: new seeds are wrapped under it",
      );
    },
    onRevoke(keyVersion, reason) {
      logger.warn(
        { keyVersion, reason },
        "key version revoked by Key Vault: its seeds are dropped and its data is unreadable until it is usable again",
      );
    },
    onRestore(keyVersion) {
      logger.info({ keyVersion }, "key version usable again");
    },
    onSeedCreated(key, cause) {
      logger.info({ keyVersion: key.keyVersion, cause }, "new current seed");
    },
    onRefreshFailed(error) {
      logger.warn(
        { code: error.code, err: error },
        "could not read the key's versions; keeping the current state",
      );
    },
    onKeyViewLimited(limitation) {
      if (limitation === undefined) logger.info({}, "Key Vault lists the key's versions again");
      else logger.warn({}, limitation);
    },
    onUnwrapRefused(error) {
      if (error === undefined) logger.info({}, "Key Vault unwraps the current seed again");
      else logger.error({ code: error.code, err: error }, error.message);
    },
  };
}

/** Calls every observer's handler in turn; one observer's failure does not stop the others. */
export function fanOut(...observers: KmsObserver[]): KmsObserver {
  const each =
    <K extends keyof KmsObserver>(name: K) =>
    (...args: Parameters<NonNullable<KmsObserver[K]>>) => {
      for (const o of observers) {
        try {
          (o[name] as ((...a: typeof args) => void) | undefined)?.(...args);
        } catch {
          // Observers only report; a reporting bug must not change what the plugin does.
        }
      }
    };
  return {
    onDecrypt: each("onDecrypt"),
    onCurrentKey: each("onCurrentKey"),
    onPromote: each("onPromote"),
    onRevoke: each("onRevoke"),
    onRestore: each("onRestore"),
    onSeedCreated: each("onSeedCreated"),
    onRefreshFailed: each("onRefreshFailed"),
    onKeyViewLimited: each("onKeyViewLimited"),
    onUnwrapRefused: each("onUnwrapRefused"),
  };
}

/** Both sinks for every call, without a rest array per call (Encrypt is hot). */
export function fanOutCalls(first: CallObserver, second: CallObserver): CallObserver {
  return {
    onCall(api, method, code, durationSeconds, uid, error) {
      try {
        first.onCall(api, method, code, durationSeconds, uid, error);
      } finally {
        second.onCall(api, method, code, durationSeconds, uid, error);
      }
    },
  };
}
