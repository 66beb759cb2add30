/**
 * Runs `produce` at most once at a time: concurrent callers share the call in flight, and its
 * result is reused for `reuseMs` after it settles (a failure is never reused).
 */
export function sharedResult<T>(produce: () => Promise<T>, reuseMs: number): () => Promise<T> {
  let inFlight: Promise<T> | undefined;
  let last: { value: T; at: number } | undefined;
  return () => {
    if (last !== undefined && performance.now() - last.at < reuseMs) {
      return Promise.resolve(last.value);
    }
    inFlight ??= produce()
      .then((value) => {
        last = { value, at: performance.now() };
        return value;
      })
      .finally(() => {
        inFlight = undefined;
      });
    return inFlight;
  };
}
