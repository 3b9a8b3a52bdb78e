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
