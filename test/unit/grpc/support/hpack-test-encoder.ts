// A full HPACK encoder (indexing + Huffman) for tests: it plays the client's encoder the way
// grpc-go's (x/net/http2/hpack) does, indexing every field so later blocks lean on the table.
import { encodeInteger } from "../../../../src/grpc/authority-shim/hpack-encoder.js";
import {
  huffmanEncode,
  huffmanEncodedLength,
} from "../../../../src/grpc/authority-shim/hpack-huffman.js";
import {
  STATIC_TABLE_LENGTH,
  staticEntry,
} from "../../../../src/grpc/authority-shim/hpack-static-table.js";

export type TestField = readonly [name: string, value: string, mode?: "no-index" | "never-index"];

export interface HpackTestEncoderOptions {
  /** "auto" picks Huffman when shorter (like grpc-go); "never"/"always" force it. */
  readonly huffman?: "auto" | "never" | "always";
}

export class HpackTestEncoder {
  private readonly entries: { name: string; value: string }[] = []; // oldest first
  private size = 0;
  private limit = 4096;
  private pendingUpdates: number[] = [];

  constructor(private readonly options: HpackTestEncoderOptions = {}) {}

  get dynamicTableSize(): number {
    return this.size;
  }

  /** Emits a dynamic table size update at the start of the next block. */
  setTableSize(size: number): void {
    this.pendingUpdates.push(size);
  }

  encode(fields: readonly TestField[]): Buffer {
    const out: number[] = [];
    for (const size of this.pendingUpdates) {
      encodeInteger(out, size, 5, 0x20);
      this.limit = size;
      this.evict(0);
    }
    this.pendingUpdates = [];
    for (const [name, value, mode] of fields) {
      const exact = this.find(name, value);
      if (exact.full !== undefined && mode === undefined) {
        encodeInteger(out, exact.full, 7, 0x80);
        continue;
      }
      const nameIndex = exact.name ?? 0;
      if (mode === undefined) encodeInteger(out, nameIndex, 6, 0x40);
      else encodeInteger(out, nameIndex, 4, mode === "never-index" ? 0x10 : 0x00);
      if (nameIndex === 0) this.string(out, name);
      this.string(out, value);
      if (mode === undefined) this.insert(name, value);
    }
    return Buffer.from(out);
  }

  private find(name: string, value: string): { full?: number; name?: number } {
    let nameMatch: number | undefined;
    for (let i = 1; i <= STATIC_TABLE_LENGTH; i++) {
      const e = staticEntry(i)!;
      if (e.name.toString("latin1") !== name) continue;
      if (e.value.toString("latin1") === value) return { full: i };
      nameMatch ??= i;
    }
    for (let j = this.entries.length - 1; j >= 0; j--) {
      const e = this.entries[j]!;
      const index = STATIC_TABLE_LENGTH + (this.entries.length - j);
      if (e.name !== name) continue;
      if (e.value === value) return { full: index };
      nameMatch ??= index;
    }
    return nameMatch === undefined ? {} : { name: nameMatch };
  }

  private string(out: number[], s: string): void {
    const raw = Buffer.from(s, "latin1");
    const mode = this.options.huffman ?? "auto";
    const useHuffman =
      mode === "always" || (mode === "auto" && huffmanEncodedLength(raw) < raw.length);
    const bytes = useHuffman ? huffmanEncode(raw) : raw;
    encodeInteger(out, bytes.length, 7, useHuffman ? 0x80 : 0);
    for (const b of bytes) out.push(b);
  }

  private insert(name: string, value: string): void {
    const size = name.length + value.length + 32;
    this.evict(size);
    if (size <= this.limit) {
      this.entries.push({ name, value });
      this.size += size;
    }
  }

  private evict(room: number): void {
    while (this.entries.length > 0 && this.size + room > this.limit) {
      const e = this.entries.shift()!;
      this.size -= e.name.length + e.value.length + 32;
    }
  }
}
