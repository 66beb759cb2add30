import { HuffmanError, huffmanDecode } from "./hpack-huffman.js";
import { STATIC_TABLE_LENGTH, staticEntry } from "./hpack-static-table.js";

export interface HeaderField {
  readonly name: Buffer;
  readonly value: Buffer;
  /** Sent as "never indexed" (RFC 7541 §6.2.3): a re-encoder must keep that representation. */
  readonly neverIndex: boolean;
}

export class HpackError extends Error {
  override name = "HpackError";
}

export interface HpackDecoderOptions {
  /** Largest dynamic table size the encoder may switch to (the SETTINGS_HEADER_TABLE_SIZE bound). */
  readonly maxTableSize?: number;
  /** Bound on the decoded list, sum of name + value + 32 per field (RFC 7540 §6.5.2). */
  readonly maxHeaderListSize?: number;
}

/** RFC 7541 §4.1: entry size is name + value + 32 octets. */
const ENTRY_OVERHEAD = 32;
const DEFAULT_TABLE_SIZE = 4096;
/** Integers beyond this are never legitimate here and could overflow the arithmetic. */
const MAX_INTEGER = 2 ** 31 - 1;

/**
 * Stateful HPACK decoder (RFC 7541): one instance per direction of a connection,
 * fed every header block in order so its dynamic table mirrors the peer encoder's.
 */
export class HpackDecoder {
  private readonly maxTableSize: number;
  private readonly maxHeaderListSize: number;
  /** Dynamic table, oldest first: dynamic index 1 is the last element. */
  private readonly entries: { name: Buffer; value: Buffer }[] = [];
  private tableBytes = 0;
  private tableLimit = DEFAULT_TABLE_SIZE;

  constructor(options: HpackDecoderOptions = {}) {
    this.maxTableSize = options.maxTableSize ?? DEFAULT_TABLE_SIZE;
    this.maxHeaderListSize = options.maxHeaderListSize ?? 64 * 1024;
    this.tableLimit = Math.min(DEFAULT_TABLE_SIZE, this.maxTableSize);
  }

  /** Current dynamic table size in octets (RFC 7541 §4.1). */
  get dynamicTableSize(): number {
    return this.tableBytes;
  }

  /** Current dynamic table entries, newest first (index 62 onwards). */
  get dynamicTable(): readonly { name: string; value: string }[] {
    return this.entries
      .map((e) => ({ name: e.name.toString("latin1"), value: e.value.toString("latin1") }))
      .reverse();
  }

  /** Decodes one complete header block; throws HpackError on any malformation. */
  decode(block: Uint8Array): HeaderField[] {
    const fields: HeaderField[] = [];
    const cursor = { buf: block, pos: 0 };
    let listSize = 0;
    let fieldSeen = false;
    while (cursor.pos < block.length) {
      const first = block[cursor.pos] ?? 0;
      if (first & 0x80) {
        // §6.1 indexed header field
        const index = readInteger(cursor, 7);
        const entry = this.lookup(index);
        fields.push({ name: entry.name, value: entry.value, neverIndex: false });
        listSize += entry.name.length + entry.value.length + ENTRY_OVERHEAD;
        fieldSeen = true;
      } else if ((first & 0xe0) === 0x20) {
        // §6.3 dynamic table size update: only before the first field of a block (§4.2)
        if (fieldSeen) throw new HpackError("table size update after a header field");
        const size = readInteger(cursor, 5);
        if (size > this.maxTableSize) throw new HpackError(`table size ${size} over limit`);
        this.tableLimit = size;
        this.evict(0);
      } else {
        // §6.2: 01 incremental indexing (6-bit prefix); 0000 without, 0001 never indexed (4-bit)
        const incremental = (first & 0xc0) === 0x40;
        const neverIndex = !incremental && (first & 0xf0) === 0x10;
        const nameIndex = readInteger(cursor, incremental ? 6 : 4);
        const name = nameIndex === 0 ? readString(cursor) : this.lookup(nameIndex).name;
        const value = readString(cursor);
        fields.push({ name, value, neverIndex });
        listSize += name.length + value.length + ENTRY_OVERHEAD;
        if (incremental) this.insert(name, value);
        fieldSeen = true;
      }
      if (listSize > this.maxHeaderListSize) {
        throw new HpackError(`header list exceeds ${this.maxHeaderListSize} bytes`);
      }
    }
    return fields;
  }

  private lookup(index: number): { name: Buffer; value: Buffer } {
    if (index === 0) throw new HpackError("index 0");
    const fromStatic = staticEntry(index);
    if (fromStatic) return fromStatic;
    const entry = this.entries[this.entries.length - (index - STATIC_TABLE_LENGTH)];
    if (!entry) throw new HpackError(`index ${index} out of range`);
    return entry;
  }

  private insert(name: Buffer, value: Buffer): void {
    const size = name.length + value.length + ENTRY_OVERHEAD;
    // §4.4: an entry larger than the table empties it and is not added.
    this.evict(Math.min(size, this.tableLimit + 1));
    if (size <= this.tableLimit) {
      this.entries.push({ name, value });
      this.tableBytes += size;
    }
  }

  /** Evicts oldest entries until `room` more octets fit under the limit. */
  private evict(room: number): void {
    while (this.tableBytes + room > this.tableLimit) {
      const oldest = this.entries.shift();
      if (!oldest) break;
      this.tableBytes -= oldest.name.length + oldest.value.length + ENTRY_OVERHEAD;
    }
  }
}

interface Cursor {
  readonly buf: Uint8Array;
  pos: number;
}

/** §5.1 integer with an N-bit prefix; the caller guarantees pos < buf.length. */
function readInteger(c: Cursor, prefixBits: number): number {
  const max = (1 << prefixBits) - 1;
  let value = (c.buf[c.pos++] ?? 0) & max;
  if (value < max) return value;
  let shift = 0;
  for (;;) {
    const byte = c.buf[c.pos++];
    if (byte === undefined) throw new HpackError("truncated integer");
    value += (byte & 0x7f) * 2 ** shift;
    if (value > MAX_INTEGER) throw new HpackError("integer overflow");
    if ((byte & 0x80) === 0) return value;
    shift += 7;
    if (shift > 28) throw new HpackError("integer too long");
  }
}

/** §5.2 string literal, optionally Huffman-coded. */
function readString(c: Cursor): Buffer {
  if (c.pos >= c.buf.length) throw new HpackError("truncated string");
  const huffman = ((c.buf[c.pos] ?? 0) & 0x80) !== 0;
  const length = readInteger(c, 7);
  if (length > c.buf.length - c.pos) throw new HpackError("string exceeds block");
  const raw = c.buf.subarray(c.pos, c.pos + length);
  c.pos += length;
  if (!huffman) return Buffer.from(raw); // copy: the block buffer is transient
  try {
    return huffmanDecode(raw);
  } catch (err) {
    if (err instanceof HuffmanError) throw new HpackError(err.message);
    throw err;
  }
}
