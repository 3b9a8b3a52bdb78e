/**
 * Minimal protobuf wire-format primitives (varint, length-delimited, skipping unknown fields) for the
 * hand-written RLS codec. Messages are encoded size-first into one exact-size buffer.
 */

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** Wire type of varint fields (int32, uint32, uint64, bool, enum). */
export const WIRE_VARINT = 0;
/** Wire type of fixed64 fields. */
export const WIRE_FIXED64 = 1;
/** Wire type of length-delimited fields (string, bytes, messages, packed). */
export const WIRE_LEN = 2;
/** Wire type of fixed32 fields. */
export const WIRE_FIXED32 = 5;

/** Bytes a varint of the non-negative integer `n` takes (n up to 2^53). */
export function varintSize(n: number): number {
  if (n < 0x80) return 1;
  if (n < 0x4000) return 2;
  if (n < 0x200000) return 3;
  if (n < 0x10000000) return 4;
  let size = 4;
  n = Math.floor(n / 0x10000000);
  while (n > 0) {
    size++;
    n = Math.floor(n / 0x80);
  }
  return size;
}

/** UTF-8 byte length of `s` without encoding it. */
export function utf8Length(s: string): number {
  let len = s.length;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x80) continue;
    if (c < 0x800) len += 1;
    else if (c >= 0xd800 && c <= 0xdbff && i + 1 < s.length) {
      len += 2; // surrogate pair: 4 bytes for 2 UTF-16 units
      i++;
    } else len += 2;
  }
  return len;
}

/** Bytes of a length-delimited field with a one-byte tag carrying `len` payload bytes. */
export function lenFieldSize(len: number): number {
  return 1 + varintSize(len) + len;
}

/** Writes fields into an exact-size buffer; the caller computes the size first. */
export class ProtoWriter {
  readonly buf: Uint8Array;
  pos = 0;
  /** A writer over a new buffer of `size` bytes. */
  constructor(size: number) {
    this.buf = new Uint8Array(size);
  }
  /** Writes a raw varint. */
  varint(n: number): void {
    const b = this.buf;
    while (n >= 0x80) {
      b[this.pos++] = (n & 0x7f) | 0x80;
      n = n >= 0x100000000 ? Math.floor(n / 0x80) : n >>> 7;
    }
    b[this.pos++] = n;
  }
  /** Writes a field tag. */
  tag(field: number, wire: number): void {
    this.varint((field << 3) | wire);
  }
  /** Writes a varint field (skipped by the caller when 0, as proto3 does). */
  uintField(field: number, n: number): void {
    this.tag(field, WIRE_VARINT);
    this.varint(n);
  }
  /** Writes a string field whose UTF-8 length `len` the caller computed. */
  stringField(field: number, s: string, len: number): void {
    this.tag(field, WIRE_LEN);
    this.varint(len);
    if (len === s.length && len < 64) {
      for (let i = 0; i < len; i++) this.buf[this.pos++] = s.charCodeAt(i);
    } else {
      this.pos += encoder.encodeInto(s, this.buf.subarray(this.pos)).written;
    }
  }
  /** Writes a bytes field. */
  bytesField(field: number, v: Uint8Array): void {
    this.tag(field, WIRE_LEN);
    this.varint(v.length);
    this.buf.set(v, this.pos);
    this.pos += v.length;
  }
  /** Starts a nested message field of `len` bytes (the caller then writes exactly that much). */
  beginMessage(field: number, len: number): void {
    this.tag(field, WIRE_LEN);
    this.varint(len);
  }
}

/** Reads fields from a buffer; throws on truncated or malformed input. */
export class ProtoReader {
  pos: number;
  /** A reader over `buf[start, end)`. */
  constructor(readonly buf: Uint8Array, start = 0, readonly end: number = buf.length) {
    this.pos = start;
  }
  /** Reads a varint (values above 2^53 lose precision). */
  varint(): number {
    const b = this.buf;
    let result = 0;
    let mul = 1;
    for (let i = 0; i < 10; i++) {
      if (this.pos >= this.end) throw new RangeError("Truncated varint");
      const byte = b[this.pos++];
      result += (byte & 0x7f) * mul;
      if (byte < 0x80) return result;
      mul *= 128;
    }
    throw new RangeError("Varint too long");
  }
  /** Reads a length prefix and returns the end offset of the payload it announces. */
  lenEnd(): number {
    const len = this.varint();
    const end = this.pos + len;
    if (end > this.end) throw new RangeError("Truncated length-delimited field");
    return end;
  }
  /** Reads a length-delimited UTF-8 string. */
  string(): string {
    const end = this.lenEnd();
    const s = decoder.decode(this.buf.subarray(this.pos, end));
    this.pos = end;
    return s;
  }
  /** Reads length-delimited bytes (a copy). */
  bytes(): Uint8Array {
    const end = this.lenEnd();
    const v = this.buf.slice(this.pos, end);
    this.pos = end;
    return v;
  }
  /** Skips a field's payload of wire type `wire`. */
  skip(wire: number): void {
    switch (wire) {
      case WIRE_VARINT:
        this.varint();
        return;
      case WIRE_FIXED64:
        this.pos += 8;
        break;
      case WIRE_LEN:
        this.pos = this.lenEnd();
        return;
      case WIRE_FIXED32:
        this.pos += 4;
        break;
      default:
        throw new RangeError(`Unsupported wire type ${wire}`);
    }
    if (this.pos > this.end) throw new RangeError("Truncated fixed-size field");
  }
}
