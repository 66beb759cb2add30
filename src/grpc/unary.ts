import type { handleUnaryCall, sendUnaryData } from "@grpc/grpc-js";
import { isHandedOver, isKmsError, KmsError } from "../kms/index.js";
import type { CallContext, KmsApi, KmsErrorCode } from "../kms/index.js";
import { MalformedRequest } from "./bridge.js";
import { abortReasonOf, GrpcCallContext } from "./call-context.js";
import type { ServerCall } from "./call-context.js";
import { grpcStatusFromKmsCode } from "./status-codes.js";
import type { CallCode } from "./status-codes.js";

export type KmsMethod = "Status" | "Encrypt" | "Decrypt" | "Version";

/** Sees every finished call; metrics and request logs hang here. Must not throw. */
export interface CallObserver {
  onCall(
    api: KmsApi,
    method: KmsMethod,
    code: CallCode,
    durationSeconds: number,
    uid: string,
    /** The error behind a non-OK code (its `cause` may hold details meant for logs only). */
    error?: unknown,
  ): void;
}

/** The slice of a pino logger this layer uses. */
export interface GrpcLogger {
  info(fields: object, message: string): void;
  warn(fields: object, message: string): void;
  error(fields: object, message: string): void;
}

export interface UnaryOptions {
  readonly observer?: CallObserver | undefined;
  readonly logger?: GrpcLogger | undefined;
}

/** Sent instead of an unexpected exception's text, which stays in the log. */
export const internalErrorMessage = "internal error in the KMS plugin; details are in its log";

/**
 * Adapter for a synchronous domain call (Status, Encrypt): no promise, no AbortSignal (nothing
 * can cancel a call that finishes before returning), one small context object.
 */
export function unarySync<Req extends object, Res>(
  api: KmsApi,
  method: KmsMethod,
  run: (request: Req, ctx: CallContext) => Res,
  options: UnaryOptions,
): handleUnaryCall<Req | MalformedRequest, Res> {
  const { observer } = options;
  // Status and v1beta1 requests carry no uid: they share one context instead of making one.
  const noUid: CallContext = Object.freeze({ api, uid: "" });
  return (call, callback) => {
    const started = observer === undefined ? 0 : performance.now();
    const request = call.request;
    if (request instanceof MalformedRequest) {
      fail(callback, api, method, "", started, malformed(request), options);
      return;
    }
    const uid = uidOf(request);
    let response: Res;
    try {
      response = run(request, uid === "" ? noUid : { api, uid });
    } catch (error) {
      fail(callback, api, method, uid, started, error, options);
      return;
    }
    callback(null, response);
    if (observer !== undefined) observe(options, api, method, "OK", started, uid, undefined);
  };
}

/**
 * Adapter for an async domain call (Decrypt): the context carries the call's AbortSignal.
 * `respond` maps the domain result inside the one `then`, so no second promise is made.
 */
export function unaryAsync<Req extends object, Out, Res>(
  api: KmsApi,
  method: KmsMethod,
  run: (request: Req, ctx: CallContext) => Promise<Out>,
  respond: (result: Out) => Res,
  options: UnaryOptions,
): handleUnaryCall<Req | MalformedRequest, Res> {
  const { observer } = options;
  return (call, callback) => {
    const started = observer === undefined ? 0 : performance.now();
    const request = call.request;
    if (request instanceof MalformedRequest) {
      fail(callback, api, method, "", started, malformed(request), options);
      return;
    }
    const uid = uidOf(request);
    const ctx = new GrpcCallContext(api, uid, call);
    let pending: Promise<Out>;
    try {
      pending = run(request, ctx);
    } catch (error) {
      ctx.settle();
      fail(callback, api, method, uid, started, error, options);
      return;
    }
    pending.then(
      (result) => {
        ctx.settle();
        if (call.cancelled) {
          // Nobody will receive it: a plaintext the service handed over is zeroed now, not left
          // to the garbage collector.
          if (result instanceof Uint8Array && isHandedOver(result)) result.fill(0);
          aborted(call, api, method, uid, started, options);
          return;
        }
        let response: Res;
        try {
          response = respond(result);
        } catch (error) {
          fail(callback, api, method, uid, started, error, options);
          return;
        }
        callback(null, response);
        if (observer !== undefined) observe(options, api, method, "OK", started, uid, undefined);
      },
      (error: unknown) => {
        ctx.settle();
        if (call.cancelled) {
          aborted(call, api, method, uid, started, options);
          return;
        }
        fail(callback, api, method, uid, started, error, options);
      },
    );
  };
}

function fail<Res>(
  callback: sendUnaryData<Res>,
  api: KmsApi,
  method: KmsMethod,
  uid: string,
  started: number,
  error: unknown,
  options: UnaryOptions,
): void {
  let code: KmsErrorCode;
  let details: string;
  if (isKmsError(error)) {
    code = error.code;
    details = error.message;
  } else {
    code = "INTERNAL";
    details = internalErrorMessage;
    options.logger?.error({ err: error, api, method, uid }, "unexpected error in a KMS call");
  }
  callback({ code: grpcStatusFromKmsCode(code), details });
  if (options.observer !== undefined) observe(options, api, method, code, started, uid, error);
}

/** grpc-js already ended the call (deadline or client gone): only record how it ended. */
function aborted(
  call: ServerCall,
  api: KmsApi,
  method: KmsMethod,
  uid: string,
  started: number,
  options: UnaryOptions,
): void {
  if (options.observer === undefined) return;
  const reason = abortReasonOf(call);
  observe(options, api, method, reason.code, started, uid, reason);
}

function observe(
  options: UnaryOptions,
  api: KmsApi,
  method: KmsMethod,
  code: CallCode,
  started: number,
  uid: string,
  error: unknown,
): void {
  try {
    options.observer?.onCall(api, method, code, (performance.now() - started) / 1000, uid, error);
  } catch (err) {
    // An observer bug must not fail a call that has already been answered.
    options.logger?.error({ err, api, method }, "call observer failed");
  }
}

function malformed(request: MalformedRequest): KmsError {
  return new KmsError("INVALID_ARGUMENT", `request is not a valid ${request.typeName} message`, {
    cause: request.cause,
  });
}

function uidOf(request: object): string {
  return "uid" in request && typeof request.uid === "string" ? request.uid : "";
}
