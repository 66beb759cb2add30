import { raceAbort } from "../kms/index.js";

/**
 * Key Vault clients learn the vault's authentication challenge from their first request (an
 * unauthenticated try answered 401). Requests sent on a new client before that one completes
 * would each pay the 401 round trip, so they wait for it; once any request on the client has
 * completed, successfully or not, every request goes straight through.
 */
const pending = new WeakMap<object, Promise<void>>();
const opened = new WeakSet<object>();

export function throughFirstRequestGate<T>(
  client: object,
  request: () => Promise<T>,
  signal?: AbortSignal,
): Promise<T> {
  if (opened.has(client)) return request();
  const first = pending.get(client);
  if (first !== undefined) {
    const wait = signal === undefined ? first : raceAbort(first, signal);
    return wait.then(request);
  }
  const sent = request();
  const open = (): void => {
    opened.add(client);
    pending.delete(client);
  };
  pending.set(client, sent.then(open, open));
  return sent;
}
