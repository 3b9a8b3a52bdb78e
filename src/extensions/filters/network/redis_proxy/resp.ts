/**
 * RESP framing for the redis proxy (RESP2, and the RESP3 reply types), working on byte offsets in the caller's buffer (no copies, no strings):
 * `parseRequest` reads one client request (an array of bulk strings, recording where each argument lies),
 * `scanValue` finds the end of any one RESP2 value (upstream replies, odd requests), and the `write*` helpers
 * encode replies and commands into a growable output buffer. Malformed framing is a protocol error (Envoy's
 * decoder throws ProtocolError: "downstream protocol error" and a close); well-framed values that are not an
 * array of bulk strings are "invalid request" (Envoy's splitter).
 */
import { grownTo } from "../../../../network/raw_io.ts";

/** The input ends before the value does: read more. */
export const INCOMPLETE = -1;
/** The bytes are not RESP2. */
export const PROTOCOL_ERROR = -2;

const CR = 13;
const LF = 10;
/** Redis' own limits: 512 MiB bulk strings; arrays up to 2^31 - 1 (we stop at 1M elements per request). */
const MAX_BULK = 512 * 1024 * 1024;
const MAX_ARRAY = 1024 * 1024;

/** Where the last parsed integer line ended (the byte after its LF); module state avoids a result object. */
let intEnd = 0;

/**
 * Parses the integer line starting at `pos` (after the type byte) up to CRLF. Returns the value, with `intEnd`
 * set, or NaN when incomplete (`intEnd` = INCOMPLETE) or malformed (`intEnd` = PROTOCOL_ERROR).
 */
function parseInt(buf: Uint8Array, pos: number, end: number): number {
  let neg = false;
  if (pos < end && buf[pos] === 45) {
    neg = true;
    pos++;
  }
  let v = 0;
  let digits = 0;
  while (pos < end) {
    const c = buf[pos];
    if (c >= 48 && c <= 57) {
      v = v * 10 + (c - 48);
      if (++digits > 18) break;
      pos++;
      continue;
    }
    if (c !== CR || digits === 0) break;
    if (pos + 1 >= end) {
      intEnd = INCOMPLETE;
      return NaN;
    }
    if (buf[pos + 1] !== LF) break;
    intEnd = pos + 2;
    return neg ? -v : v;
  }
  intEnd = pos >= end ? INCOMPLETE : PROTOCOL_ERROR;
  return NaN;
}

/** Finds the end of a line (the byte after CRLF) from `pos`, INCOMPLETE, or PROTOCOL_ERROR on a bare CR. */
function lineEnd(buf: Uint8Array, pos: number, end: number): number {
  const i = buf.indexOf(CR, pos);
  if (i < 0 || i >= end) return INCOMPLETE;
  if (i + 1 >= end) return INCOMPLETE;
  return buf[i + 1] === LF ? i + 2 : PROTOCOL_ERROR;
}

/** Pending-value counts of the enclosing aggregates while scanning (module state: no allocation per reply). */
const scanStack = new Int32Array(1001);

/**
 * Returns the offset just past the one RESP value starting at `pos`, INCOMPLETE or PROTOCOL_ERROR. RESP2 and the
 * RESP3 types a server sends after HELLO 3 (null, double, boolean, big number, blob error, verbatim string, map,
 * set, push, attribute; not streamed strings). Iterative: nesting from a fuzzer cannot blow the stack.
 */
export function scanValue(buf: Uint8Array, pos: number, end: number): number {
  let pending = 1; // values still to read at the current depth
  let depth = 0;
  while (true) {
    if (pos >= end) return INCOMPLETE;
    const t = buf[pos];
    if (t === 43 || t === 45 || t === 95 || t === 44 || t === 35 || t === 40) { // + - _ , # (
      const e = lineEnd(buf, pos + 1, end);
      if (e < 0) return e;
      pos = e;
    } else if (t === 58) { // :
      parseInt(buf, pos + 1, end);
      if (intEnd < 0) return intEnd;
      pos = intEnd;
    } else if (t === 36 || t === 33 || t === 61) { // $ ! =
      const n = parseInt(buf, pos + 1, end);
      if (intEnd < 0) return intEnd;
      if (n < -1 || n > MAX_BULK || (n === -1 && t !== 36)) return PROTOCOL_ERROR;
      pos = intEnd;
      if (n >= 0) {
        if (pos + n + 2 > end) return INCOMPLETE;
        if (buf[pos + n] !== CR || buf[pos + n + 1] !== LF) return PROTOCOL_ERROR;
        pos += n + 2;
      }
    } else if (t === 42 || t === 37 || t === 126 || t === 62 || t === 124) { // * % ~ > |
      let n = parseInt(buf, pos + 1, end);
      if (intEnd < 0) return intEnd;
      if (n < -1 || n > MAX_ARRAY || (n === -1 && t !== 42)) return PROTOCOL_ERROR;
      pos = intEnd;
      if (t === 37 || t === 124) n *= 2; // map and attribute: key and value
      if (n > 0) {
        if (depth === 1000) return PROTOCOL_ERROR;
        // an attribute is not the value itself: the value after it still counts at this depth
        scanStack[depth++] = t === 124 ? pending : pending - 1;
        pending = n;
        continue;
      }
      if (t === 124) continue; // empty attribute: the value follows
    } else {
      return PROTOCOL_ERROR;
    }
    // one value done at this depth
    pending--;
    while (pending === 0) {
      if (depth === 0) return pos;
      pending = scanStack[--depth];
    }
  }
}

/** One parsed request: argument byte ranges into the read buffer (valid until the buffer is compacted). */
export class RequestArgs {
  /** Number of arguments (0 when the request is not an array of bulk strings). */
  count = 0;
  /** Start offset of each argument's bytes. */
  starts: Int32Array = new Int32Array(16);
  /** End offset (exclusive) of each argument's bytes. */
  ends: Int32Array = new Int32Array(16);
  /** The whole request frame: [frameStart, frameEnd). */
  frameStart = 0;
  frameEnd = 0;
  /** False when the value was well framed but is not a non-empty array of bulk strings (invalid request). */
  valid = true;

  #grow(n: number): void {
    let size = this.starts.length;
    while (size < n) size *= 2;
    const s = new Int32Array(size);
    s.set(this.starts);
    const e = new Int32Array(size);
    e.set(this.ends);
    this.starts = s;
    this.ends = e;
  }

  /** Length in bytes of argument `i`. */
  len(i: number): number {
    return this.ends[i] - this.starts[i];
  }

  /**
   * Parses one request at `pos`. Returns the offset after it (with the fields set), INCOMPLETE or
   * PROTOCOL_ERROR.
   */
  parse(buf: Uint8Array, pos: number, end: number): number {
    this.frameStart = pos;
    this.count = 0;
    this.valid = true;
    if (pos >= end) return INCOMPLETE;
    if (buf[pos] !== 42) {
      const e = scanValue(buf, pos, end);
      if (e >= 0) {
        this.valid = false;
        this.frameEnd = e;
      }
      return e;
    }
    const n = parseInt(buf, pos + 1, end);
    if (intEnd < 0) return intEnd;
    if (n < -1 || n > MAX_ARRAY) return PROTOCOL_ERROR;
    let p = intEnd;
    if (n <= 0) {
      this.valid = false;
      this.frameEnd = p;
      return p;
    }
    if (n > this.starts.length) this.#grow(n);
    const starts = this.starts;
    const ends = this.ends;
    for (let i = 0; i < n; i++) {
      if (p >= end) return INCOMPLETE;
      if (buf[p] !== 36) {
        const e = scanValue(buf, p, end);
        if (e < 0) return e;
        this.valid = false;
        p = e;
        continue;
      }
      const len = parseInt(buf, p + 1, end);
      if (intEnd < 0) return intEnd;
      if (len < -1 || len > MAX_BULK) return PROTOCOL_ERROR;
      p = intEnd;
      if (len === -1) { // a null bulk string is not a command argument
        this.valid = false;
        continue;
      }
      if (p + len + 2 > end) return INCOMPLETE;
      if (buf[p + len] !== CR || buf[p + len + 1] !== LF) return PROTOCOL_ERROR;
      starts[i] = p;
      ends[i] = p + len;
      p += len + 2;
    }
    this.count = this.valid ? n : 0;
    this.frameEnd = p;
    return p;
  }
}

/** A growable byte buffer that replies and commands are encoded into. */
export class OutBuf {
  buf: Uint8Array;
  len = 0;
  constructor(size = 16 * 1024) {
    this.buf = new Uint8Array(size);
  }

  /** Makes room for `n` more bytes. */
  reserve(n: number): void {
    const need = this.len + n;
    if (need > this.buf.length) this.buf = grownTo(this.buf, this.len, need);
  }

  /** Appends bytes [s, e) of `src`. */
  bytes(src: Uint8Array, s: number, e: number): void {
    const n = e - s;
    this.reserve(n);
    if (n < 64) {
      const b = this.buf;
      let o = this.len;
      for (let i = s; i < e; i++) b[o++] = src[i];
    } else {
      this.buf.set(src.subarray(s, e), this.len);
    }
    this.len += n;
  }

  /** Appends an ASCII string (command names, error texts, numbers). */
  ascii(s: string): void {
    const n = s.length;
    this.reserve(n);
    const b = this.buf;
    let o = this.len;
    for (let i = 0; i < n; i++) b[o++] = s.charCodeAt(i) & 0xff;
    this.len = o;
  }

  /** Appends a UTF-8 string. */
  text(s: string): void {
    this.reserve(s.length * 3);
    const r = encoder.encodeInto(s, this.buf.subarray(this.len));
    this.len += r.written;
  }

  /** `<type><n>\r\n`. */
  header(type: number, n: number): void {
    this.reserve(24);
    this.buf[this.len++] = type;
    this.ascii(String(n));
    this.buf[this.len++] = CR;
    this.buf[this.len++] = LF;
  }

  /** A bulk string of bytes [s, e) of `src`. */
  bulk(src: Uint8Array, s: number, e: number): void {
    this.header(36, e - s);
    this.bytes(src, s, e);
    this.crlf();
  }

  /** A bulk string of an ASCII string. */
  bulkAscii(s: string): void {
    this.header(36, s.length);
    this.ascii(s);
    this.crlf();
  }

  /** CRLF. */
  crlf(): void {
    this.reserve(2);
    this.buf[this.len++] = CR;
    this.buf[this.len++] = LF;
  }

  /** `-<message>\r\n` (CR/LF in the message become spaces). */
  error(message: string): void {
    this.reserve(1);
    this.buf[this.len++] = 45;
    this.line(message);
  }

  /** `+<message>\r\n`. */
  simple(message: string): void {
    this.reserve(1);
    this.buf[this.len++] = 43;
    this.line(message);
  }

  /** `:<n>\r\n`. */
  integer(n: number): void {
    this.header(58, n);
  }

  /** `<message>\r\n`, CR and LF in the message replaced by spaces. */
  line(message: string): void {
    const start = this.len;
    this.text(message);
    const b = this.buf;
    for (let i = start; i < this.len; i++) if (b[i] === CR || b[i] === LF) b[i] = 32;
    this.crlf();
  }
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** Decodes bytes [s, e) as text (error messages, logs; never on the hot path). */
export function text(buf: Uint8Array, s: number, e: number): string {
  return decoder.decode(buf.subarray(s, e));
}

/** Parses the integer reply `:<n>\r\n` at `pos` (the type byte); NaN when it is not one. */
export function integerReply(buf: Uint8Array, pos: number, end: number): number {
  if (buf[pos] !== 58) return NaN;
  const v = parseInt(buf, pos + 1, end);
  return intEnd > 0 ? v : NaN;
}

/** True when the reply at [s, e) is exactly `+OK\r\n`. */
export function isOk(buf: Uint8Array, s: number, e: number): boolean {
  return e - s === 5 && buf[s] === 43 && buf[s + 1] === 79 && buf[s + 2] === 75;
}
