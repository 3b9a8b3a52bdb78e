/**
 * A JSON text writer straight into bytes for span reports: ASCII strings without characters JSON escapes are
 * copied byte by byte, anything else goes through JSON.stringify and TextEncoder. Reports serialize thousands of
 * spans per second; this costs about a third of JSON.stringify over objects plus TextEncoder. Hot writers
 * (a tracer's span encoder) use the plain functions `putRaw`/`putStr` with the position in a local and room
 * reserved once per span (`reserve`); the methods are the convenient form of the same.
 */
const enc = new TextEncoder();

/** Bytes `putStr` may write for a string of `n` UTF-16 units, at most (\uXXXX escapes, plus the quotes). */
export function strBound(n: number): number {
  return 6 * n + 2;
}

/** Writes ASCII `s` (JSON syntax or values that need no escaping) at `p`; returns the end. No bounds growth. */
export function putRaw(b: Uint8Array, p: number, s: string): number {
  const n = s.length;
  for (let i = 0; i < n; i++) b[p++] = s.charCodeAt(i);
  return p;
}

/** Writes the JSON string literal of `s` at `p` (room: `strBound(s.length)`); returns the end. */
export function putStr(b: Uint8Array, p: number, s: string): number {
  const start = p;
  b[p++] = 34;
  const n = s.length;
  for (let i = 0; i < n; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x20 || c === 34 || c === 92 || c > 0x7e) return start + putGeneral(b, start, s);
    b[p++] = c;
  }
  b[p++] = 34;
  return p;
}

/** ASCII `s` as bytes: a constant fragment for `putBytes` (copying bytes costs half of reading a string's). */
export function asciiBytes(s: string): Uint8Array {
  const b = new Uint8Array(s.length);
  putRaw(b, 0, s);
  return b;
}

/** Writes `f` at `p`; returns the end. */
export function putBytes(b: Uint8Array, p: number, f: Uint8Array): number {
  const n = f.length;
  for (let i = 0; i < n; i++) b[p++] = f[i];
  return p;
}

/**
 * The strings an encoder wrote at each position of the last object (a span's tag names and values: the same
 * code path sets them in the same order, mostly to the same strings), with their JSON bytes once a string
 * repeated: a string equal to the last one at its position is copied as bytes, one that changes every time
 * costs a comparison and allocates nothing.
 */
export class RepeatCache {
  readonly #strs: string[] = [];
  readonly #bytes: (Uint8Array | null)[] = [];
  readonly #max: number;

  /** A cache of the first `max` positions. */
  constructor(max = 64) {
    this.#max = max;
  }

  /** Writes the JSON string literal of `s` at `p` as position `i` (room as `putStr`); returns the end. */
  put(b: Uint8Array, p: number, i: number, s: string): number {
    const strs = this.#strs;
    if (i < strs.length) {
      if (strs[i] === s) {
        const f = this.#bytes[i];
        if (f !== null) return putBytes(b, p, f);
        const end = putStr(b, p, s);
        this.#bytes[i] = b.slice(p, end);
        return end;
      }
      strs[i] = s;
      this.#bytes[i] = null;
    } else if (i === strs.length && i < this.#max) {
      strs.push(s);
      this.#bytes.push(null);
    }
    return putStr(b, p, s);
  }
}

/** Rare: escapes or non-ASCII, the general path. */
function putGeneral(b: Uint8Array, start: number, s: string): number {
  return enc.encodeInto(JSON.stringify(s), b.subarray(start)).written;
}

/** Appends JSON pieces to a growing byte buffer. */
export class JsonBytes {
  #buf: Uint8Array;
  #pos: number;
  readonly #start: number;
  readonly #initial: number;

  /**
   * A writer whose buffer starts at `initial` bytes (it grows by doubling); the first `headRoom` bytes are left
   * free for whoever sends the text (a request head written in front of it).
   */
  constructor(initial = 16 * 1024, headRoom = 0) {
    this.#initial = Math.max(initial, headRoom + 16);
    this.#buf = new Uint8Array(this.#initial);
    this.#pos = this.#start = headRoom;
  }

  /** Bytes written so far. */
  get length(): number {
    return this.#pos - this.#start;
  }

  /** The buffer with at least `n` free bytes after `pos` (write there, then set `pos`). */
  reserve(n: number): Uint8Array {
    if (this.#pos + n <= this.#buf.length) return this.#buf;
    let size = this.#buf.length * 2;
    while (size < this.#pos + n) size *= 2;
    const b = new Uint8Array(size);
    b.set(this.#buf.subarray(0, this.#pos));
    return this.#buf = b;
  }

  /** The write position in the buffer `reserve` returns. */
  get pos(): number {
    return this.#pos;
  }

  set pos(p: number) {
    this.#pos = p;
  }

  /** Appends `s` as is: JSON syntax or values known to need no escaping (ASCII only). */
  raw(s: string): void {
    this.#pos = putRaw(this.reserve(s.length), this.#pos, s);
  }

  /** Appends a JSON string literal of `s`. */
  str(s: string): void {
    this.#pos = putStr(this.reserve(strBound(s.length)), this.#pos, s);
  }

  /** Appends a finite number. */
  num(n: number): void {
    this.raw(String(n));
  }

  /** The bytes written so far (a view: valid until the next write or `reset`). */
  bytes(): Uint8Array {
    return this.#buf.subarray(this.#start, this.#pos);
  }

  /** Empties the writer, keeping its buffer unless it grew past 2 MiB (a burst: back to the initial size). */
  reset(): void {
    if (this.#buf.length > 2 * 1024 * 1024) this.#buf = new Uint8Array(this.#initial);
    this.#pos = this.#start;
  }
}
