/**
 * Identical concurrent Key Vault requests share one call. The shared call runs under its own
 * signal, aborted only when every caller waiting on it has given up (or at its own bound), so one
 * caller's short deadline never fails the others.
 */
import { KmsError } from "../kms/errors.js";

interface Flight<T> {
  readonly promise: Promise<T>;
  readonly controller: AbortController;
  waiters: number;
}

export class SingleFlight<T> {
  readonly #flights = new Map<string, Flight<T>>();

  /** Calls in flight (for tests and metrics). */
  get size(): number {
    return this.#flights.size;
  }

  /**
   * Joins the call for `key`, or starts `work` with a signal of its own. `copy` gives each caller
   * its own result (e.g. a plaintext buffer the caller may zero).
   */
  async run(
    key: string,
    signal: AbortSignal | undefined,
    work: (signal: AbortSignal) => Promise<T>,
    copy: (value: T) => T = (value) => value,
  ): Promise<T> {
    if (signal?.aborted) throw abortReason(signal);
    let flight = this.#flights.get(key);
    if (flight === undefined) {
      const controller = new AbortController();
      const promise = Promise.resolve()
        .then(() => work(controller.signal))
        .finally(() => {
          if (this.#flights.get(key) === created) this.#flights.delete(key);
        });
      const created: Flight<T> = { promise, controller, waiters: 0 };
      flight = created;
      this.#flights.set(key, flight);
    }
    const joined = flight;
    joined.waiters++;
    let left = false;
    const leave = (): void => {
      if (left) return;
      left = true;
      joined.waiters--;
      if (joined.waiters === 0) {
        // Nobody waits any more: stop the call, and let the next caller start afresh.
        if (this.#flights.get(key) === joined) this.#flights.delete(key);
        joined.controller.abort(signal?.reason);
      }
    };
    try {
      const value = await raceSignal(joined.promise, signal, leave);
      return copy(value);
    } finally {
      left = true;
    }
  }
}

function abortReason(signal: AbortSignal): Error {
  const reason: unknown = signal.reason;
  if (reason instanceof Error) return reason;
  return new KmsError("CANCELLED", "request cancelled by the caller");
}

function raceSignal<T>(
  work: Promise<T>,
  signal: AbortSignal | undefined,
  onAbort: () => void,
): Promise<T> {
  if (signal === undefined) return work;
  return new Promise<T>((resolve, reject) => {
    const abort = (): void => {
      onAbort();
      reject(abortReason(signal));
    };
    signal.addEventListener("abort", abort, { once: true });
    work.then(
      (value) => {
        signal.removeEventListener("abort", abort);
        resolve(value);
      },
      (error: unknown) => {
        signal.removeEventListener("abort", abort);
        reject(error instanceof Error ? error : new Error(String(error)));
      },
    );
  });
}
