/**
 * Plaintexts the domain hands over for good (Decrypt results): a fresh buffer nothing else holds,
 * which the receiver may zero once it has sent it (grpc/ does, after serializing the response).
 * Buffers not marked (e.g. a test double's view into its input) are never zeroed by the receiver.
 */
const handedOver = new WeakSet<Uint8Array>();

export function handOver<T extends Uint8Array>(bytes: T): T {
  handedOver.add(bytes);
  return bytes;
}

export function isHandedOver(bytes: Uint8Array): boolean {
  return handedOver.has(bytes);
}
