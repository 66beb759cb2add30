/**
 * Public per-request randomness (HKDF salt, GCM nonce) served from a pooled CSPRNG buffer: one
 * randomFillSync per 4 KiB instead of one per Encrypt (each sync call costs microseconds).
 * Never used for seeds, which come straight from randomBytes.
 */
import { randomFillSync } from "node:crypto";

const POOL_SIZE = 4096;
let pool = Buffer.alloc(0);
let offset = 0;

/** Fills `target` with fresh random bytes; no byte of the pool is handed out twice. */
export function fillRandom(target: Uint8Array): void {
  const length = target.length;
  if (length > POOL_SIZE) {
    randomFillSync(target);
    return;
  }
  if (offset + length > pool.length) {
    pool = randomFillSync(Buffer.allocUnsafeSlow(POOL_SIZE));
    offset = 0;
  }
  target.set(pool.subarray(offset, offset + length));
  offset += length;
}
