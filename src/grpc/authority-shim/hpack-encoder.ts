import type { HeaderField } from "./hpack-decoder.js";
import { staticNameIndex } from "./hpack-static-table.js";

/** RFC 7541 §5.1: appends an integer with an N-bit prefix, OR-ing `flags` into the first octet. */
export function encodeInteger(
  out: number[],
  value: number,
  prefixBits: number,
  flags: number,
): void {
  const max = (1 << prefixBits) - 1;
  if (value < max) {
    out.push(flags | value);
    return;
  }
  out.push(flags | max);
  let rest = value - max;
  while (rest >= 128) {
    out.push((rest % 128) + 128);
    rest = Math.floor(rest / 128);
  }
  out.push(rest);
}

/**
 * Encodes fields as literals that never touch a dynamic table (RFC 7541 §6.2.2/§6.2.3), with
 * raw (non-Huffman) strings and static-table name references, so the receiving decoder needs
 * no state from earlier blocks. "Never indexed" fields stay never indexed, as §6.2.3 requires.
 */
export function encodeLiteralBlock(fields: readonly HeaderField[]): Buffer {
  let size = 0;
  for (const f of fields) size += f.name.length + f.value.length + 16;
  const out = Buffer.allocUnsafe(size);
  let pos = 0;
  const prefix: number[] = [];
  for (const f of fields) {
    prefix.length = 0;
    const nameIndex = staticNameIndex(f.name);
    encodeInteger(prefix, nameIndex ?? 0, 4, f.neverIndex ? 0x10 : 0x00);
    if (nameIndex === undefined) encodeInteger(prefix, f.name.length, 7, 0);
    for (const b of prefix) out[pos++] = b;
    if (nameIndex === undefined) pos += f.name.copy(out, pos);
    prefix.length = 0;
    encodeInteger(prefix, f.value.length, 7, 0);
    for (const b of prefix) out[pos++] = b;
    pos += f.value.copy(out, pos);
  }
  return out.subarray(0, pos);
}
