import type { Logger } from "./logger.js";

/** Same shape as grpc/'s CallObserver, with plain strings (src/log depends on nothing). */
export interface RequestLog {
  onCall(
    api: string,
    method: string,
    code: string,
    durationSeconds: number,
    uid: string,
    error?: unknown,
  ): void;
}

/**
 * One line per finished KMS call: OK at debug (skipped without building anything when debug is
 * off, since Encrypt runs per Secret write), failures at warn, INTERNAL at error. Fields: uid,
 * service (v2 | v2alpha1 | v1beta1), method, code, durationMs; failures add the error's short
 * message and its cause's. Never the request or response bytes.
 */
export function createRequestLog(logger: Logger): RequestLog {
  return {
    onCall(api, method, code, durationSeconds, uid, error) {
      const durationMs = Math.round(durationSeconds * 1e6) / 1e3;
      if (code === "OK") {
        if (!logger.isLevelEnabled("debug")) return;
        logger.debug({ uid, service: api, method, code, durationMs }, "kms request ok");
        return;
      }
      const fields = {
        uid,
        service: api,
        method,
        code,
        durationMs,
        error: messageOf(error),
        cause: causeOf(error),
      };
      if (code === "INTERNAL") logger.error(fields, "kms request failed");
      else logger.warn(fields, "kms request failed");
    },
  };
}

function messageOf(error: unknown): string | undefined {
  return error instanceof Error ? error.message : undefined;
}

/** The cause's class and message (e.g. a RestError's status text), for operators; no stack. */
function causeOf(error: unknown): string | undefined {
  const cause = error instanceof Error ? error.cause : undefined;
  if (!(cause instanceof Error)) return undefined;
  const code = (cause as { code?: unknown }).code;
  return `${cause.name}${typeof code === "string" ? ` ${code}` : ""}: ${cause.message}`;
}
