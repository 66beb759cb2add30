import type { ServerUnaryCall } from "@grpc/grpc-js";
import { cancelledReason, deadlineExceededReason } from "../kms/index.js";
import type { CallContext, KmsApi, KmsError } from "../kms/index.js";

// grpc-js arms its deadline timer from Date.now(), but libuv timers start from the loop's cached
// clock, so the timer can fire a few ms before Date.now() reaches the deadline.
const deadlineSlackMs = 20;
/** The domain gives up this much before the call's deadline, so the answer is the plugin's own. */
const earlyAbortMaxMs = 250;
const earlyAbortFraction = 0.1;

/** What this file needs of a grpc-js server call. */
export type ServerCall = Pick<
  ServerUnaryCall<unknown, unknown>,
  "cancelled" | "getDeadline" | "once"
>;

/**
 * Why a call that grpc-js reports as cancelled ended, as the domain's abort reasons (kms/abort.ts).
 * grpc-js emits "cancelled" both when the client goes away and after it answers
 * DEADLINE_EXCEEDED itself; only the clock tells them apart.
 */
export function abortReasonOf(call: ServerCall): KmsError {
  const deadline = call.getDeadline();
  const ms = typeof deadline === "number" ? deadline : deadline.getTime();
  return Date.now() + deadlineSlackMs >= ms ? deadlineExceededReason() : cancelledReason();
}

/**
 * The CallContext an async handler hands the domain. The AbortSignal is made on first read, so a
 * call that never looks at it (a cache hit) pays for no controller and no listener. Its reason is
 * a KmsError (DEADLINE_EXCEEDED or CANCELLED): `signal.throwIfAborted()` raises the right status.
 */
export class GrpcCallContext implements CallContext {
  readonly api: KmsApi;
  readonly uid: string;
  readonly #call: ServerCall;
  #controller: AbortController | undefined;
  #timer: NodeJS.Timeout | undefined;
  #settled = false;

  constructor(api: KmsApi, uid: string, call: ServerCall) {
    this.api = api;
    this.uid = uid;
    this.#call = call;
  }

  get signal(): AbortSignal {
    let controller = this.#controller;
    if (controller === undefined) {
      const created = new AbortController();
      controller = this.#controller = created;
      const call = this.#call;
      if (call.cancelled) {
        created.abort(abortReasonOf(call));
      } else {
        // grpc-js also emits "cancelled" after a normal finish; settle() silences that.
        call.once("cancelled", () => {
          if (!this.#settled) created.abort(abortReasonOf(call));
        });
        // Abort a little before the deadline (min(250 ms, 10% of what is left)): the plugin then
        // answers DEADLINE_EXCEEDED itself while kube-apiserver still listens.
        const deadline = call.getDeadline();
        const remaining =
          (typeof deadline === "number" ? deadline : deadline.getTime()) - Date.now();
        if (Number.isFinite(remaining)) {
          const early = Math.min(earlyAbortMaxMs, Math.max(0, remaining) * earlyAbortFraction);
          this.#timer = setTimeout(
            () => {
              if (!this.#settled) {
                created.abort(
                  deadlineExceededReason(
                    "the plugin gave up just before the call's deadline: Key Vault did not answer in time",
                  ),
                );
              }
            },
            Math.max(0, remaining - early),
          );
          this.#timer.unref();
        }
      }
    }
    return controller.signal;
  }

  /** The call's deadline (epoch ms), or undefined when it has none. */
  get deadline(): number | undefined {
    const deadline = this.#call.getDeadline();
    const ms = typeof deadline === "number" ? deadline : deadline.getTime();
    return Number.isFinite(ms) ? ms : undefined;
  }

  /** The call has an outcome: later "cancelled" events no longer abort the signal. */
  settle(): void {
    this.#settled = true;
    clearTimeout(this.#timer);
  }
}
