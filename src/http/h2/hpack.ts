/**
 * HPACK (RFC 7541): a decoder that fills a HeaderMap from a complete header block (bounded list size and
 * count, keeping the dynamic table in step even when the list is dropped) and an encoder writing straight
 * into the frame output buffer. Strings are byte strings (one char per octet, Latin-1).
 */
import { decodeBytes } from "../h1/chars.ts";
import type { HeaderMap } from "../headers.ts";
import type { OutBuf } from "./frame.ts";
import { huffmanDecode, huffmanEncode, huffmanLength } from "./huffman.ts";
import {
  DynamicTable,
  entrySize,
  STATIC_COUNT,
  STATIC_NAME_INDEX,
  STATIC_NAMES,
  STATIC_PAIR_INDEX,
  STATIC_VALUES,
} from "./hpack_table.ts";

/** Outcome of `HpackDecoder.decode`. */
export const HpackResult = {
  /** Decoded; every field is in the output map. */
  OK: 0,
  /** Malformed block: a connection error of type COMPRESSION_ERROR. */
  ERROR: 1,
  /** Decoded (table in step) but the list passed the size or count limit: fields were dropped. */
  OVERFLOW: 2,
} as const;

/** Outcome of `HpackDecoder.decode`. */
export type HpackResult = typeof HpackResult[keyof typeof HpackResult];

const BAD = -1;

/** Decodes header blocks of one connection direction. */
export class HpackDecoder {
  readonly #table: DynamicTable;
  readonly #settingsMax: number;
  #scratch = new Uint8Array(1024);
  #pos = 0;
  /** HPACK size (name + value + 32 per field) of the last decoded list. */
  listSize = 0;

  /** Makes a decoder whose table may grow to `maxTableSize` (our SETTINGS_HEADER_TABLE_SIZE). */
  constructor(maxTableSize = 4096) {
    this.#settingsMax = maxTableSize;
    this.#table = new DynamicTable(maxTableSize);
  }

  /** Current dynamic table size in octets (for tests). */
  get tableSize(): number {
    return this.#table.size;
  }

  /**
   * Decodes the block `src[start, end)` into `out` (names as sent; pseudo-headers included, in order).
   * Stops adding fields once the list passes `maxListSize` octets or `maxCount` fields but decodes to the end.
   */
  decode(
    src: Uint8Array,
    start: number,
    end: number,
    out: HeaderMap,
    maxListSize: number,
    maxCount: number,
  ): HpackResult {
    const t = this.#table;
    let size = 0;
    let count = 0;
    let overflow = false;
    let fields = false;
    this.#pos = start;
    while (this.#pos < end) {
      const b = src[this.#pos];
      let name: string;
      let value: string;
      if (b & 0x80) {
        const idx = this.#int(src, end, 7);
        if (idx <= 0) return HpackResult.ERROR;
        if (idx <= STATIC_COUNT) {
          name = STATIC_NAMES[idx];
          value = STATIC_VALUES[idx];
        } else {
          if (idx - STATIC_COUNT > t.count) return HpackResult.ERROR;
          name = t.name(idx - STATIC_COUNT);
          value = t.value(idx - STATIC_COUNT);
        }
      } else if ((b & 0xe0) === 0x20) {
        if (fields) return HpackResult.ERROR;
        const v = this.#int(src, end, 5);
        if (v < 0 || v > this.#settingsMax) return HpackResult.ERROR;
        t.resize(v);
        continue;
      } else {
        const incremental = (b & 0x40) !== 0;
        const idx = this.#int(src, end, incremental ? 6 : 4);
        if (idx < 0) return HpackResult.ERROR;
        if (idx === 0) {
          const n = this.#str(src, end);
          if (n === null) return HpackResult.ERROR;
          name = n;
        } else if (idx <= STATIC_COUNT) name = STATIC_NAMES[idx];
        else if (idx - STATIC_COUNT <= t.count) name = t.name(idx - STATIC_COUNT);
        else return HpackResult.ERROR;
        const v = this.#str(src, end);
        if (v === null) return HpackResult.ERROR;
        value = v;
        if (incremental) t.add(name, value);
      }
      fields = true;
      size += entrySize(name, value);
      count++;
      if (overflow) continue;
      if (size > maxListSize || count > maxCount) overflow = true;
      else out.addLower(name, value);
    }
    this.listSize = size;
    return overflow ? HpackResult.OVERFLOW : HpackResult.OK;
  }

  /** Reads an integer with an N-bit prefix at #pos; -1 when truncated or too large. */
  #int(src: Uint8Array, end: number, bits: number): number {
    const max = (1 << bits) - 1;
    let v = src[this.#pos++] & max;
    if (v < max) return v;
    let shift = 0;
    for (;;) {
      if (this.#pos >= end || shift > 21) return BAD;
      const b = src[this.#pos++];
      v += (b & 0x7f) * 2 ** shift;
      shift += 7;
      if ((b & 0x80) === 0) return v;
    }
  }

  /** Reads a string literal at #pos; null when truncated or badly Huffman-coded. */
  #str(src: Uint8Array, end: number): string | null {
    if (this.#pos >= end) return null;
    const huff = (src[this.#pos] & 0x80) !== 0;
    const len = this.#int(src, end, 7);
    if (len < 0 || this.#pos + len > end) return null;
    const s = this.#pos;
    this.#pos += len;
    if (!huff) return decodeBytes(src, s, s + len);
    const need = Math.ceil((len * 8) / 5);
    if (this.#scratch.length < need) this.#scratch = new Uint8Array(Math.max(need, this.#scratch.length * 2));
    const n = huffmanDecode(src, s, s + len, this.#scratch);
    return n < 0 ? null : decodeBytes(this.#scratch, 0, n);
  }
}

/**
 * Names never put in the dynamic table: they change on nearly every message (nghttp2's list plus
 * x-request-id). `date` is indexed, as nghttp2 does: it repeats for every response within a second.
 */
const NO_INDEX = new Set([
  ":path",
  "content-length",
  "etag",
  "last-modified",
  "if-modified-since",
  "if-none-match",
  "location",
  "set-cookie",
  "x-request-id",
  "age",
  "expires",
]);

/** Names sent as never-indexed literals (RFC 7541 §7.1.3). */
const SENSITIVE = new Set(["authorization", "proxy-authorization"]);

const INDEXED = 0;
const NOT_INDEXED = 1;
const NEVER_INDEXED = 2;

/** What the encoder needs to know about a name, found with one lookup per field. */
interface NameInfo {
  /** Static-table entries of this name, by value. */
  readonly pairs: ReadonlyMap<string, number> | undefined;
  /** Static-table index of the name, 0 when absent. */
  readonly index: number;
  /** INDEXED, NOT_INDEXED or NEVER_INDEXED. */
  readonly mode: number;
}

/** Per-name facts; bounded, since request header names come from clients. */
const NAME_INFO = new Map<string, NameInfo>();
const NAME_INFO_MAX = 1024;

function nameInfo(name: string): NameInfo {
  let info = NAME_INFO.get(name);
  if (info === undefined) {
    info = {
      pairs: STATIC_PAIR_INDEX.get(name),
      index: STATIC_NAME_INDEX.get(name) ?? 0,
      mode: SENSITIVE.has(name) ? NEVER_INDEXED : NO_INDEX.has(name) ? NOT_INDEXED : INDEXED,
    };
    if (NAME_INFO.size < NAME_INFO_MAX) NAME_INFO.set(name, info);
  }
  return info;
}

class EncoderTable extends DynamicTable {
  /** name -> value -> insertion sequence number. */
  readonly index = new Map<string, Map<string, number>>();
  inserted = 0;

  override add(name: string, value: string): void {
    super.add(name, value);
    if (entrySize(name, value) > this.maxSize) return;
    let m = this.index.get(name);
    if (!m) this.index.set(name, m = new Map());
    m.set(value, this.inserted++);
  }

  protected override evicted(name: string, value: string): void {
    const m = this.index.get(name);
    if (!m) return;
    const seq = m.get(value);
    // the oldest entry has sequence inserted - count - 1 after the decrement in #evict
    if (seq !== undefined && seq === this.inserted - this.count - 1) {
      m.delete(value);
      if (m.size === 0) this.index.delete(name);
    }
  }
}

/** Encodes header blocks of one connection direction. */
export class HpackEncoder {
  readonly #table: EncoderTable;
  readonly #limit: number;
  #pendingMin = -1;
  #pendingFinal = -1;

  /** Makes an encoder that uses at most `limit` octets of dynamic table (default 4096). */
  constructor(limit = 4096) {
    this.#limit = limit;
    this.#table = new EncoderTable(Math.min(limit, 4096));
  }

  /** Applies the peer's SETTINGS_HEADER_TABLE_SIZE; a size update is sent at the start of the next block. */
  setPeerMaxTableSize(size: number): void {
    const next = Math.min(size, this.#limit);
    if (next === this.#table.maxSize && this.#pendingFinal < 0) return;
    this.#pendingMin = this.#pendingMin < 0 ? next : Math.min(this.#pendingMin, next);
    this.#pendingFinal = next;
    this.#table.resize(next);
  }

  /** Writes any pending dynamic table size update; call once at the start of each block. */
  begin(out: OutBuf): void {
    if (this.#pendingFinal < 0) return;
    out.ensure(12);
    if (this.#pendingMin < this.#pendingFinal) writeInt(out, 0x20, 5, this.#pendingMin);
    writeInt(out, 0x20, 5, this.#pendingFinal);
    this.#pendingMin = this.#pendingFinal = -1;
  }

  /** Appends one field (`name` lowercase) to the block being written in `out`. */
  field(out: OutBuf, name: string, value: string): void {
    out.ensure(name.length + value.length + 16);
    const info = nameInfo(name);
    const pairs = info.pairs;
    if (pairs !== undefined) {
      const si = pairs.get(value);
      if (si !== undefined) return writeInt(out, 0x80, 7, si);
    }
    const t = this.#table;
    const mode = info.mode;
    if (mode === INDEXED) {
      const dyn = t.index.get(name);
      if (dyn !== undefined) {
        const seq = dyn.get(value);
        if (seq !== undefined) return writeInt(out, 0x80, 7, STATIC_COUNT + t.inserted - seq);
      }
    }
    const nameIdx = info.index;
    if (mode === NEVER_INDEXED) writeInt(out, 0x10, 4, nameIdx);
    else if (mode === NOT_INDEXED || entrySize(name, value) > t.maxSize >> 1) writeInt(out, 0x00, 4, nameIdx);
    else {
      writeInt(out, 0x40, 6, nameIdx);
      t.add(name, value);
    }
    if (nameIdx === 0) writeString(out, name);
    writeString(out, value);
  }
}

/** Writes an HPACK integer with an N-bit prefix and the given high bits. */
export function writeInt(out: OutBuf, high: number, bits: number, v: number): void {
  const b = out.buf;
  const max = (1 << bits) - 1;
  if (v < max) {
    b[out.len++] = high | v;
    return;
  }
  b[out.len++] = high | max;
  v -= max;
  while (v >= 128) {
    b[out.len++] = (v & 0x7f) | 0x80;
    v = Math.floor(v / 128);
  }
  b[out.len++] = v;
}

/** Writes a string literal, Huffman-coded when that is shorter. */
export function writeString(out: OutBuf, s: string): void {
  const hl = huffmanLength(s);
  if (hl < s.length) {
    writeInt(out, 0x80, 7, hl);
    out.len = huffmanEncode(s, out.buf, out.len);
    return;
  }
  writeInt(out, 0, 7, s.length);
  const b = out.buf;
  let p = out.len;
  for (let i = 0; i < s.length; i++) b[p++] = s.charCodeAt(i);
  out.len = p;
}
